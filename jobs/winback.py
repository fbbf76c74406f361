"""Win-back job: rank dormant and lost owners as of a date by p(return) x expected value with
the `champion` win-back model (or a given version) and write gold/winback, one partition per
as-of date, replaced as a whole.

    cdp run winback [--as-of DATE] [--model-version champion|N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import dataclass

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from activation.winback import build_warranty_status, score_winback
from cdp.config import AppConfig
from cdp.lake import read_table, replace_partition
from cdp.tracking import ModelRegistryError, get_model_version, use_experiment
from jobs.activation_common import ActivationError, features_of, home_dealers, lake_of, mentions_with_customers, owned_vehicles
from jobs.train_winback import EXPERIMENT

__all__ = ["WinbackReport", "main", "run"]


@dataclass
class WinbackReport:
    as_of: dt.date
    model_version: str
    by_stage: dict[str, int]
    seconds: float


def run(spark: SparkSession, config: AppConfig, as_of: dt.date | None = None, reference: str = "champion") -> WinbackReport:
    import mlflow.sklearn

    started = time.perf_counter()
    settings = config.activation.winback
    use_experiment(config, EXPERIMENT)
    try:
        version = get_model_version(config, settings.model_name, reference).version
    except ModelRegistryError as exc:
        raise ActivationError(f"{exc}: run `cdp run train_winback` first") from exc
    classifier = mlflow.sklearn.load_model(f"models:/{settings.model_name}/{version}")
    lake = lake_of(config)
    features, as_of = features_of(spark, lake, as_of)
    owners, vehicles = owned_vehicles(spark, lake, mentions_with_customers(spark, lake), as_of)
    warranty = build_warranty_status(owners, vehicles, as_of, config.activation.reminders.default_rules.warranty_years)
    candidates = (
        features.join(home_dealers(spark, lake, as_of), "customer_id", "left")
        .join(warranty, "customer_id", "left")
        .withColumn("warranty_ended", F.coalesce("warranty_ended", F.lit(False)))
    )
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    ranked = score_winback(candidates, classifier, version, now, as_of, settings)
    path = lake.table("gold", "winback")
    replace_partition(spark, ranked, path, "as_of_date", as_of)
    written = read_table(spark, path).filter(F.col("as_of_date") == F.lit(as_of))
    by_stage = {r["lifecycle_stage"]: int(r["count"]) for r in written.groupBy("lifecycle_stage").count().collect()}
    return WinbackReport(as_of, version, by_stage, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp run winback", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="features of this date (default: the latest)")
    parser.add_argument("--model-version", default="champion", help="alias or version number (default champion)")
    args = parser.parse_args(argv)
    config = config_from_args(args)
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    try:
        report = run(spark, config, args.as_of, args.model_version)
    except ActivationError as exc:
        print(f"cdp run winback: {exc}", file=sys.stderr)
        return 2
    mix = ", ".join(f"{stage} {n}" for stage, n in sorted(report.by_stage.items()))
    print(f"as of {report.as_of}: ranked {sum(report.by_stage.values())} owners ({mix}) with winback version {report.model_version} in {report.seconds:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
