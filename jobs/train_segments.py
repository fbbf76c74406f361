"""Train the segmentation model on one as-of date's features, log it to MLflow's
`segmentation` experiment and register it as a new version.

The first version of a model becomes `champion` by itself; later versions are promoted by
a model owner (`cdp model promote VERSION`, or `--promote` here).

    cdp run train_segments [--as-of DATE] [--promote]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.config import AppConfig
from cdp.lake import Lake, read_table, table_exists
from cdp.tracking import promote_new_version, use_experiment
from features.catalog import segmentation_features
from segmentation import build_population_filter, log_segmentation_run, train_segmentation
from segmentation.naming import SegmentSummary

__all__ = ["SegmentationError", "TrainReport", "latest_features", "main", "run"]

log = logging.getLogger(__name__)

EXPERIMENT = "segmentation"


class SegmentationError(RuntimeError):
    """Nothing to train on or score."""


@dataclass
class TrainReport:
    as_of: dt.date
    rows: int
    chosen: str
    metrics: dict[str, float]
    reason: str
    segments: list[SegmentSummary]
    run_id: str
    version: str
    champion: bool
    seconds: float


def latest_features(spark: SparkSession, config: AppConfig, as_of: dt.date | None) -> tuple[DataFrame, dt.date]:
    """The feature rows of `as_of` (default: the latest as-of date built)."""
    path = Lake(config.resolve(config.lake.root)).table("gold", "customer_features")
    if not table_exists(spark, path):
        raise SegmentationError(f"no features at {path}: run `cdp run features` first")
    table = read_table(spark, path)
    if as_of is None:
        as_of = table.agg(F.max("as_of_date")).first()[0]
        if as_of is None:
            raise SegmentationError(f"{path} is empty: run `cdp run features` first")
    rows = table.filter(F.col("as_of_date") == F.lit(as_of))
    if rows.limit(1).count() == 0:
        raise SegmentationError(f"no features as of {as_of} in {path}")
    return rows, as_of


def run(spark: SparkSession, config: AppConfig, as_of: dt.date | None = None, promote: bool = False) -> TrainReport:
    started = time.perf_counter()
    settings = config.segmentation
    table, as_of = latest_features(spark, config, as_of)
    features, money = segmentation_features()
    # A fixed-size sample ranked by a hash of the ID: the same customers whatever the
    # partitioning, so the same data and seed give the same model.
    sample = (
        table.filter(build_population_filter(settings.population))
        .select("customer_id", *features)
        .withColumn("_rank", F.xxhash64("customer_id", F.lit(settings.seed)))
        .orderBy("_rank", "customer_id")
        .limit(settings.train_sample_rows)
        .toPandas()
        .sort_values("customer_id")
        .reset_index(drop=True)
    )
    if len(sample) < 2 * settings.k_range[0]:
        raise SegmentationError(f"only {len(sample)} customers to segment as of {as_of}")
    trained = train_segmentation(sample, features, money, settings)
    use_experiment(config, EXPERIMENT)
    params = {
        "as_of_date": as_of.isoformat(), "population": settings.population, "train_rows": len(sample),
        "algorithms": ",".join(settings.algorithms), "k_range": f"{settings.k_range[0]}-{settings.k_range[1]}",
        "bootstrap_rounds": settings.bootstrap_rounds, "min_stability": settings.min_stability,
        "selection_metric": settings.selection_metric, "seed": settings.seed, "features": ",".join(features),
        "money_features": ",".join(money),
    }
    run_id, version = log_segmentation_run(
        trained.selection, trained.summaries, trained.profile, features, params, settings.model_name,
        sample[features].head(20).astype("float64"),
    )
    champion = promote_new_version(config, settings.model_name, version, promote)
    chosen = trained.selection.chosen
    return TrainReport(
        as_of, len(sample), chosen.key, chosen.metrics(), trained.selection.reason, trained.summaries, run_id, version,
        champion, time.perf_counter() - started,
    )


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp run train_segments", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="features of this date (default: the latest)")
    parser.add_argument("--promote", action="store_true", help="make the new version champion")
    args = parser.parse_args(argv)
    config = config_from_args(args)
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    try:
        report = run(spark, config, args.as_of, args.promote)
    except SegmentationError as exc:
        print(f"cdp run train_segments: {exc}", file=sys.stderr)
        return 2
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in report.metrics.items())
    print(f"as of {report.as_of}: {report.rows} customers, chose {report.chosen} ({metrics}); {report.reason}")
    for s in report.segments:
        print(f"  {s.segment_id:>2} {s.name:<28} {s.size:>8} {s.share:6.1%}  {s.rule}")
    status = "champion" if report.champion else "not promoted (cdp model promote " + report.version + ")"
    print(f"registered {config.segmentation.model_name} version {report.version}, {status}; MLflow run {report.run_id}; {report.seconds:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
