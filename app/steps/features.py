"""Step `features`: one feature row per customer per as-of date, gated by its suite."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import fields, replace
from functools import reduce
from typing import Any

import click
from pyspark.sql import DataFrame, SparkSession

from app.context import RunContext
from app.registry import Step, StepReport, register
from cdp import catalog
from cdp.errors import DataRejectedError
from cdp.lake import Lake, read_feed, read_table, remove_path, replace_partitions, require_tables, table_exists
from cdp.spark import small_lake_bytes
from expectations import validate_batch
from features.build import FEATURE_TABLE_COLUMNS, build_customer_features
from features.catalog import FEATURES
from features.sources import FeatureSources
from operations.complaints import calendar_for

__all__ = ["DATES_PER_PASS", "FEATURE_SOURCES", "build_features", "build_features_on", "describe", "load_sources", "missing_dates"]

_FEEDS = ("sales_orders", "leads", "service_orders", "warranty_claims", "complaints", "surveys")
# What a feature build reads (`load_sources`).
FEATURE_SOURCES = (catalog.CUSTOMERS, catalog.CUSTOMER_XREF, catalog.PERSON_MENTIONS, *(catalog.silver(f) for f in _FEEDS))


def load_sources(spark: SparkSession, lake: Lake, calendar: DataFrame) -> FeatureSources:
    """The gold and silver tables features read; a missing gold table is an error, a missing
    feed is empty (a dealer group may not send every feed)."""
    require_tables(spark, lake, catalog.CUSTOMERS, catalog.CUSTOMER_XREF, catalog.PERSON_MENTIONS)
    feeds: dict[str, DataFrame] = {f: read_feed(spark, lake, f) for f in _FEEDS}
    return FeatureSources(
        customers=read_table(spark, lake.path(catalog.CUSTOMERS)),
        xref=read_table(spark, lake.path(catalog.CUSTOMER_XREF)),
        mentions=read_table(spark, lake.path(catalog.PERSON_MENTIONS)).select("mention_id", "seen_at"),
        calendar=calendar,
        **feeds,
    )


# Dates built in one pass on a small lake (`cdp.spark.small_lake_bytes`): one plan over sources
# read once, one staging write, one gate and one commit for all of them. A date's build is a
# few dozen small jobs whose fixed costs dominate a small lake; a pass shares them. A larger
# lake builds one date per pass: at 100,000 customers four dates in one plan ran the driver
# out of memory building its broadcast tables.
DATES_PER_PASS = 6


def build_features(context: RunContext, dates: Sequence[dt.date]) -> dict[dt.date, dict[str, int]]:
    """Build, gate and write the features as of each of `dates` in one pass (one plan over
    sources read once, one staging write, one gate, one commit replacing those dates).
    Per date: customers by lifecycle stage."""
    spark, lake = context.spark, context.lake
    operations = context.config.operations
    chosen = sorted(set(dates))
    # The calendar up to the latest date covers every earlier date's deadlines too.
    sources = load_sources(spark, lake, calendar_for(spark, chosen[-1], operations.calendar))
    shared = len(chosen) > 1
    if shared:
        # Read once for every date of the pass (each date's plan reads each table several
        # times): 4 win-back snapshot dates took 29 s without, 18 s with, at 2,000 customers.
        sources = replace(sources, **{f.name: getattr(sources, f.name).cache() for f in fields(sources)})
    try:
        return _build_pass(context, sources, chosen)
    finally:
        if shared:
            for f in fields(sources):
                getattr(sources, f.name).unpersist()


def _build_pass(context: RunContext, sources: FeatureSources, chosen: list[dt.date]) -> dict[dt.date, dict[str, int]]:
    spark, lake = context.spark, context.lake
    operations = context.config.operations
    built = [build_customer_features(sources, as_of, context.config.features, operations.complaints) for as_of in chosen]
    features = reduce(DataFrame.unionByName, built)
    key = hashlib.sha256(",".join(d.isoformat() for d in chosen).encode()).hexdigest()[:12]
    staging = lake.path(catalog.work(f"customer_features_{chosen[0].isoformat()}_{len(chosen)}_{key}"))
    features.write.mode("overwrite").parquet(staging)
    staged = spark.read.parquet(staging)
    gate = validate_batch(staged, str(catalog.CUSTOMER_FEATURES.suite), on_driver=context.small_lake)
    if not gate.success:
        named = ", ".join(d.isoformat() for d in chosen)
        raise DataRejectedError(f"customer_features as of {named} failed its expectations: {', '.join(gate.failed)}")
    replace_partitions(spark, staged.select(*FEATURE_TABLE_COLUMNS), lake.path(catalog.CUSTOMER_FEATURES), "as_of_date", chosen)
    stages: dict[dt.date, dict[str, int]] = {as_of: {} for as_of in chosen}
    for row in staged.groupBy("as_of_date", "lifecycle_stage").count().collect():
        stages[row["as_of_date"]][row["lifecycle_stage"]] = int(row["count"])
    remove_path(spark, staging)
    return stages


def build_features_on(context: RunContext, dates: Sequence[dt.date]) -> dict[dt.date, tuple[dict[str, int], float]]:
    """`build_features` for any number of as-of dates, oldest first: in passes of
    `DATES_PER_PASS` on a small lake, one date at a time otherwise. Per date: customers by
    lifecycle stage, and the seconds its pass took."""
    chosen = sorted(set(dates))
    per_pass = DATES_PER_PASS if len(chosen) > 1 and small_lake_bytes(context.config) is not None else 1
    done: dict[dt.date, tuple[dict[str, int], float]] = {}
    for first in range(0, len(chosen), per_pass):
        started = time.perf_counter()
        stages = build_features(context, chosen[first:first + per_pass])
        seconds = time.perf_counter() - started
        done.update({as_of: (by_stage, seconds) for as_of, by_stage in stages.items()})
    return done


def missing_dates(context: RunContext, dates: Iterable[dt.date]) -> list[dt.date]:
    """Those of `dates` that `gold/customer_features` does not hold yet, oldest first."""
    wanted = set(dates)
    path = context.lake.path(catalog.CUSTOMER_FEATURES)
    if wanted and table_exists(context.spark, path):
        wanted -= {r[0] for r in read_table(context.spark, path).select("as_of_date").distinct().collect()}
    return sorted(wanted)


def describe() -> str:
    lines = [f"{'feature':<32} {'family':<13} {'kind':<9} definition"]
    for f in FEATURES:
        marks = " [drives segments]" if f.drives_segments else ""
        lines.append(f"{f.name:<32} {f.family:<13} {f.kind:<9} {f.definition}{marks}")
    return "\n".join(lines)


def _run(context: RunContext, options: dict[str, Any]) -> StepReport:
    # In a pipeline, earlier dates a later step will read (win-back's training snapshots) are
    # built in the same pass: at 2,000 customers a pass costs seconds whatever its dates.
    backfill = missing_dates(context, context.backfill_dates.get(catalog.CUSTOMER_FEATURES, ()))
    dates = sorted(set(options.get("as_of") or [context.today()]) | set(backfill))
    lines, data, total = [], {}, 0
    for as_of, (stages, seconds) in build_features_on(context, dates).items():
        total += sum(stages.values())
        mix = ", ".join(f"{stage} {n}" for stage, n in sorted(stages.items()))
        lines.append(f"as of {as_of}: {sum(stages.values())} customers in {seconds:.1f}s ({mix})")
        data[as_of.isoformat()] = stages
    return StepReport("features", lines, {"by_date": data}, rows_written=total)


def _describe(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(describe())
        ctx.exit(0)


register(Step(
    "features", "Build one feature row per customer per as-of date (--describe lists every feature).", _run,
    params=(
        click.Option(["--as-of"], type=click.DateTime(["%Y-%m-%d"]), multiple=True, help="YYYY-MM-DD; repeatable (default: today)",
                     callback=lambda _c, _p, v: [d.date() for d in v]),
        click.Option(["--describe"], is_flag=True, expose_value=False, is_eager=True, callback=_describe,
                     help="print every feature's definition and exit"),
    ),
    reads=FEATURE_SOURCES, writes=(catalog.CUSTOMER_FEATURES,), preload=("great_expectations",),
))
