"""Resolve job: silver feeds -> person mentions -> Splink linkage -> customer crosswalk."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from pyspark.sql import SparkSession

from cdp.config import AppConfig
from cdp.lake import Lake, read_table, table_exists
from entity_resolution.crosswalk import build_customer_xref
from entity_resolution.engines import LinkageResult, choose_engine
from entity_resolution.mentions import MENTION_SOURCES, build_person_mentions
from entity_resolution.model import LinkageParams

__all__ = ["main", "run"]

log = logging.getLogger(__name__)


def run(spark: SparkSession, config: AppConfig) -> tuple[LinkageResult, dict[str, float]]:
    """Full resolution run: rebuilds `gold/person_mentions` and `gold/customer_xref`."""
    lake = Lake(config.resolve(config.lake.root))
    feeds = {s.feed for s in MENTION_SOURCES}
    silver = {f: read_table(spark, lake.silver(f)) for f in feeds if table_exists(spark, lake.silver(f))}
    started = time.perf_counter()
    build_person_mentions(silver).write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
        lake.table("gold", "person_mentions")
    )
    mentions = read_table(spark, lake.table("gold", "person_mentions"))
    count = mentions.count()
    timings = {"mentions": time.perf_counter() - started}
    engine = choose_engine(spark, config.resolution, count, lake.table("_work", "resolution"))
    result = engine.run(mentions, LinkageParams(match_threshold=config.resolution.match_threshold), config.resolution)
    timings.update(result.timings)
    started = time.perf_counter()
    xref = build_customer_xref(mentions, result.clusters, result.pairs, config.resolution.match_threshold)
    xref.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(lake.table("gold", "customer_xref"))
    timings["crosswalk"] = time.perf_counter() - started
    model_dir = lake.table("_models", "resolution")
    spark.createDataFrame([(json.dumps(result.model),)], "model string").coalesce(1).write.mode("overwrite").text(model_dir)
    log.info("resolution (%s): %d mentions, timings %s", engine.name, count, {k: round(v, 1) for k, v in timings.items()})
    return result, timings


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp run resolve", description=__doc__)
    add_common_options(parser)
    parser.add_argument("--engine", choices=["auto", "duckdb", "spark"], help="override resolution.engine")
    args = parser.parse_args(argv)
    config = config_from_args(args)
    if args.engine:
        config = config.model_copy(update={"resolution": config.resolution.model_copy(update={"engine": args.engine})})
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    _, timings = run(spark, config)
    for stage, seconds in timings.items():
        print(f"{stage:<16} {seconds:8.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
