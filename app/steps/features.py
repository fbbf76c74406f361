"""Step `features`: one feature row per customer per as-of date, gated by its suite."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import click
from pyspark.sql import DataFrame, SparkSession

from app.context import RunContext
from app.registry import Step, StepReport, register
from cdp import catalog
from cdp.errors import DataRejectedError
from cdp.lake import Lake, read_feed, read_table, replace_partition, require_tables, table_exists
from expectations import validate_batch
from features.build import FEATURE_TABLE_COLUMNS, build_customer_features
from features.catalog import FEATURES
from features.sources import FeatureSources
from operations.complaints import calendar_for

__all__ = ["FEATURE_SOURCES", "build_features", "build_features_on", "describe", "load_sources"]

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


def build_features(context: RunContext, as_of: dt.date) -> dict[str, int]:
    """Build, gate and write the features as of one date; customers by lifecycle stage."""
    spark, lake = context.spark, context.lake
    operations = context.config.operations
    sources = load_sources(spark, lake, calendar_for(spark, as_of, operations.calendar))
    features = build_customer_features(sources, as_of, context.config.features, operations.complaints)
    staging = lake.path(catalog.work(f"customer_features_{as_of.isoformat()}"))
    features.write.mode("overwrite").parquet(staging)
    staged = spark.read.parquet(staging)
    gate = validate_batch(staged, str(catalog.CUSTOMER_FEATURES.suite))
    if not gate.success:
        raise DataRejectedError(f"customer_features as of {as_of} failed its expectations: {', '.join(gate.failed)}")
    replace_partition(spark, staged.select(*FEATURE_TABLE_COLUMNS), lake.path(catalog.CUSTOMER_FEATURES), "as_of_date", as_of)
    return {row["lifecycle_stage"]: int(row["count"]) for row in staged.groupBy("lifecycle_stage").count().collect()}


def build_features_on(context: RunContext, dates: list[dt.date], workers: int = 2) -> dict[dt.date, tuple[dict[str, int], float]]:
    """`build_features` for several as-of dates, `workers` at a time in the one Spark
    application (each date writes its own partition; a date's many small jobs leave cores
    idle). Per date: customers by lifecycle stage, and seconds taken."""

    def one(as_of: dt.date) -> tuple[dict[str, int], float]:
        started = time.perf_counter()
        stages = build_features(context, as_of)
        return stages, time.perf_counter() - started

    done: dict[dt.date, tuple[dict[str, int], float]] = {}
    rest = list(dates)
    if rest and not table_exists(context.spark, context.lake.path(catalog.CUSTOMER_FEATURES)):
        # The first write creates the table: alone, so that two creations never race.
        first = rest.pop(0)
        done[first] = one(first)
    if len(rest) < 2 or workers < 2:
        return {**done, **{as_of: one(as_of) for as_of in rest}}
    with ThreadPoolExecutor(max_workers=min(workers, len(rest)), thread_name_prefix="features") as pool:
        return {**done, **dict(zip(rest, pool.map(one, rest)))}


def describe() -> str:
    lines = [f"{'feature':<32} {'family':<13} {'kind':<9} definition"]
    for f in FEATURES:
        marks = " [drives segments]" if f.drives_segments else ""
        lines.append(f"{f.name:<32} {f.family:<13} {f.kind:<9} {f.definition}{marks}")
    return "\n".join(lines)


def _run(context: RunContext, options: dict[str, Any]) -> StepReport:
    dates = sorted(set(options.get("as_of") or [context.today()]))
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
    reads=FEATURE_SOURCES, writes=(catalog.CUSTOMER_FEATURES,),
))
