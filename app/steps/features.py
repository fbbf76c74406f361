"""Step `features`: one feature row per customer per as-of date, gated by its suite."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from functools import reduce
from typing import Any

import click
from pyspark.sql import DataFrame, SparkSession

from app.context import RunContext
from app.registry import Step, StepReport, register
from cdp import catalog
from cdp.errors import DataRejectedError
from cdp.lake import Lake, read_feed, read_table, remove_path, replace_partitions, require_tables, side_by_side, table_exists
from cdp.spark import small_lake_bytes
from expectations import validate_batch
from features.build import FEATURE_TABLE_COLUMNS, build_customer_features
from features.catalog import FEATURES
from features.sources import FEEDS, CustomerRecords, FeatureSources, customer_records
from operations.complaints import calendar_for

__all__ = ["DATES_PER_PASS", "FEATURE_SOURCES", "build_features", "build_features_on", "describe", "load_sources", "missing_dates"]

# What a feature build reads (`load_sources`).
FEATURE_SOURCES = (catalog.CUSTOMERS, catalog.CUSTOMER_XREF, catalog.PERSON_MENTIONS, *(catalog.silver(f) for f in FEEDS))


def load_sources(spark: SparkSession, lake: Lake, calendar: DataFrame) -> FeatureSources:
    """The gold and silver tables features read; a missing gold table is an error, a missing
    feed is empty (a dealer group may not send every feed)."""
    require_tables(spark, lake, catalog.CUSTOMERS, catalog.CUSTOMER_XREF, catalog.PERSON_MENTIONS)
    feeds: dict[str, DataFrame] = {f: read_feed(spark, lake, f) for f in FEEDS}
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
# out of memory building its broadcast tables, and five dates from kept records took 224 s in
# one pass against 203 s in five.
DATES_PER_PASS = 6

# The tables of `CustomerRecords` kept for a build's passes (`records_for`).
_KEPT = ("seen", *FEEDS)


@contextmanager
def records_for(context: RunContext, dates: Sequence[dt.date], keep: bool = False) -> Iterator[CustomerRecords]:
    """The sources of a build of `dates` tied to their customers (`customer_records`). With
    `keep`, for a build of several passes, written once to the lake's scratch space and read
    from there by every pass (removed on exit): at 100,000 customers a date's pass took 48 to
    50 s joining them in its own plan, 26 to 30 s reading them kept. A build of one pass joins
    them in its own plan: keeping them first, a lone date took 89.7 s against 81.9 s."""
    spark, lake = context.spark, context.lake
    chosen = sorted(set(dates))
    # The calendar up to the latest date covers every earlier date's deadlines too.
    sources = load_sources(spark, lake, calendar_for(spark, chosen[-1], context.config.operations.calendar))
    records = customer_records(sources)
    if not keep:
        yield records
        return
    key = hashlib.sha256(",".join(d.isoformat() for d in chosen).encode()).hexdigest()[:12]
    paths = {name: lake.path(catalog.work(f"feature_records_{key}_{name}")) for name in _KEPT}
    try:
        side_by_side(*[lambda frame=getattr(records, name), path=path: frame.write.mode("overwrite").parquet(path) for name, path in paths.items()])
        yield replace(records, **{name: spark.read.parquet(path) for name, path in paths.items()})
    finally:
        for path in paths.values():
            remove_path(spark, path)


def build_features(
    context: RunContext, dates: Sequence[dt.date], records: CustomerRecords | None = None
) -> dict[dt.date, dict[str, int]]:
    """Build, gate and write the features as of each of `dates` in one pass (one plan over
    sources read once, one staging write, one gate, one commit replacing those dates), from
    `records` when given (`records_for` these dates or more). Per date: customers by
    lifecycle stage."""
    chosen = sorted(set(dates))
    if records is None:
        with records_for(context, chosen) as own:
            return build_features(context, chosen, own)
    shared = len(chosen) > 1
    if shared:
        # Read once for every date of the pass (each date's plan reads each table several
        # times): 4 win-back snapshot dates took 29 s without, 18 s with, at 2,000 customers.
        records = replace(records, **{f.name: getattr(records, f.name).cache() for f in fields(records)})
    try:
        return _build_pass(context, records, chosen)
    finally:
        if shared:
            for f in fields(records):
                getattr(records, f.name).unpersist()


def _build_pass(context: RunContext, records: CustomerRecords, chosen: list[dt.date]) -> dict[dt.date, dict[str, int]]:
    spark, lake = context.spark, context.lake
    operations = context.config.operations
    built = [build_customer_features(records, as_of, context.config.features, operations.complaints) for as_of in chosen]
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
    `DATES_PER_PASS` on a small lake, one date at a time otherwise, the records tied to their
    customers once for all passes (`records_for`, kept when there are several). Per date:
    customers by lifecycle stage, and the seconds its pass took; the pass of the latest date
    counts the keeping of the records too (the work a build of that date alone does in its
    own plan)."""
    chosen = sorted(set(dates))
    per_pass = DATES_PER_PASS if len(chosen) > 1 and small_lake_bytes(context.config) is not None else 1
    passes = [chosen[first:first + per_pass] for first in range(0, len(chosen), per_pass)]
    done: dict[dt.date, tuple[dict[str, int], float]] = {}
    if not passes:
        return done
    started = time.perf_counter()
    with records_for(context, chosen, keep=len(passes) > 1) as records:
        keeping = time.perf_counter() - started
        for one in passes:
            started = time.perf_counter()
            stages = build_features(context, one, records)
            seconds = time.perf_counter() - started + (keeping if chosen[-1] in stages else 0.0)
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
