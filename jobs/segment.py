"""Segment job: score every customer in the segmentation population with the `champion`
(or a given version) on the Spark executors and write gold/customer_segments, one partition
per as-of date, replaced as a whole.

    cdp run segment [--as-of DATE] [--model-version champion|N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import dataclass

from pyspark.sql import SparkSession

from cdp.config import AppConfig
from cdp.lake import Lake, read_table, replace_partition
from cdp.tracking import ModelRegistryError, get_model_version, use_experiment
from jobs.train_segments import EXPERIMENT, SegmentationError, latest_features
from segmentation import build_population_filter, load_segmentation_model, score_customers

__all__ = ["SegmentReport", "main", "run"]


@dataclass
class SegmentReport:
    as_of: dt.date
    model_version: str
    customers: int
    sizes: dict[str, int]
    seconds: float


def run(spark: SparkSession, config: AppConfig, as_of: dt.date | None = None, reference: str = "champion") -> SegmentReport:
    started = time.perf_counter()
    settings = config.segmentation
    use_experiment(config, EXPERIMENT)
    try:
        get_model_version(config, settings.model_name, reference)
    except ModelRegistryError as exc:
        raise SegmentationError(f"{exc}: run `cdp run train_segments` (and `cdp model promote`) first") from exc
    model = load_segmentation_model(settings.model_name, reference)
    table, as_of = latest_features(spark, config, as_of)
    scored = score_customers(table.filter(build_population_filter(settings.population)), model, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    path = Lake(config.resolve(config.lake.root)).table("gold", "customer_segments")
    replace_partition(spark, scored, path, "as_of_date", as_of)
    written = read_table(spark, path).filter(f"as_of_date = '{as_of}'")
    sizes = {row["segment_name"]: int(row["count"]) for row in written.groupBy("segment_name").count().collect()}
    return SegmentReport(as_of, model.version, sum(sizes.values()), sizes, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp run segment", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="features of this date (default: the latest)")
    parser.add_argument("--model-version", default="champion", help="alias or version number (default champion)")
    args = parser.parse_args(argv)
    config = config_from_args(args)
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    try:
        report = run(spark, config, args.as_of, args.model_version)
    except SegmentationError as exc:
        print(f"cdp run segment: {exc}", file=sys.stderr)
        return 2
    print(f"as of {report.as_of}: {report.customers} customers scored with version {report.model_version} in {report.seconds:.1f}s")
    for name, n in sorted(report.sizes.items(), key=lambda item: -item[1]):
        print(f"  {name:<28} {n:>8} {n / max(report.customers, 1):6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
