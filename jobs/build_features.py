"""Features job: golden customers + crosswalk + silver feeds -> gold/customer_features.

One row per customer per as-of date, using only events before that date (see
`features.catalog`). Each as-of date is its own partition, replaced as a whole, so a re-run
gives the same table and history built for earlier dates stays.

    cdp run features --as-of 2026-06-30 [--as-of 2025-06-30 ...]
    cdp run features --describe
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from cdp.config import AppConfig
from cdp.lake import Lake, read_table, replace_partition, table_exists
from expectations import validate_batch
from features.build import FEATURE_TABLE_COLUMNS, build_customer_features
from features.catalog import FEATURES
from features.sources import FeatureSources

__all__ = ["FeaturesError", "FeaturesReport", "main", "run"]

log = logging.getLogger(__name__)

_FEEDS = ("sales_orders", "leads", "service_orders", "warranty_claims", "complaints", "surveys")


class FeaturesError(RuntimeError):
    """The lake lacks what features are built from, or the result failed its gate."""


@dataclass
class FeaturesReport:
    as_of: dt.date
    customers: int
    seconds: float
    stages: dict[str, int]


def _empty_feed(spark: SparkSession, feed: str) -> DataFrame:
    from cdp.contract import CONTRACTS

    contract = CONTRACTS[feed]
    columns = ["record_id", *contract.columns]
    return spark.createDataFrame([], ", ".join(f"`{c}` string" for c in columns))


def load_sources(spark: SparkSession, lake: Lake) -> FeatureSources:
    """The gold and silver tables features read; a missing gold table is an error, a missing
    feed is empty (a dealer group may not send every feed)."""
    gold = {name: lake.table("gold", name) for name in ("customers", "customer_xref", "person_mentions")}
    missing = [path for path in gold.values() if not table_exists(spark, path)]
    if missing:
        raise FeaturesError(f"no golden customers yet ({', '.join(missing)} missing): run `cdp run resolve` first")
    feeds = {
        feed: read_table(spark, lake.silver(feed)) if table_exists(spark, lake.silver(feed)) else _empty_feed(spark, feed)
        for feed in _FEEDS
    }
    return FeatureSources(
        customers=read_table(spark, gold["customers"]),
        xref=read_table(spark, gold["customer_xref"]),
        mentions=read_table(spark, gold["person_mentions"]).select("mention_id", "seen_at"),
        **feeds,
    )


def run(spark: SparkSession, config: AppConfig, as_of: dt.date) -> FeaturesReport:
    """Build, gate and write the features as of one date."""
    started = time.perf_counter()
    lake = Lake(config.resolve(config.lake.root))
    features = build_customer_features(load_sources(spark, lake), as_of, config.features)
    staging = lake.table("_work", f"customer_features_{as_of.isoformat()}")
    features.write.mode("overwrite").parquet(staging)
    staged = spark.read.parquet(staging)
    gate = validate_batch(staged, "customer_features")
    if not gate.success:
        raise FeaturesError(f"customer_features as of {as_of} failed its expectations: {', '.join(gate.failed)}")
    replace_partition(spark, staged.select(*FEATURE_TABLE_COLUMNS), lake.table("gold", "customer_features"), "as_of_date", as_of)
    stages = {row["lifecycle_stage"]: int(row["count"]) for row in staged.groupBy("lifecycle_stage").count().collect()}
    return FeaturesReport(as_of, sum(stages.values()), time.perf_counter() - started, stages)


def describe() -> str:
    lines = [f"{'feature':<32} {'family':<13} {'kind':<9} definition"]
    for f in FEATURES:
        marks = " [drives segments]" if f.drives_segments else ""
        lines.append(f"{f.name:<32} {f.family:<13} {f.kind:<9} {f.definition}{marks}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp run features", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, action="append", help="YYYY-MM-DD; repeatable (default: today)")
    parser.add_argument("--describe", action="store_true", help="print every feature's definition and exit")
    args = parser.parse_args(argv)
    if args.describe:
        print(describe())
        return 0
    config = config_from_args(args)
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    for as_of in sorted(set(args.as_of or [dt.datetime.now(dt.timezone.utc).date()])):
        try:
            report = run(spark, config, as_of)
        except FeaturesError as exc:
            print(f"cdp run features: {exc}", file=sys.stderr)
            return 2
        mix = ", ".join(f"{stage} {n}" for stage, n in sorted(report.stages.items()))
        print(f"as of {report.as_of}: {report.customers} customers in {report.seconds:.1f}s ({mix})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
