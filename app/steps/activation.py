"""Activation steps: `consent`, `reminders`, `audiences`."""

from __future__ import annotations

from typing import Any

import click
from pyspark.sql import functions as F

from activation.history import build_visits
from activation.inputs import CONSENT_READS, CONSENT_SOURCES, build_consent_table, build_ownership, ownership_of
from activation.reminders import build_reminders
from activation.versions import build, campaign_inputs, load_campaigns, utc_now
from app.context import RunContext
from app.options import as_of_option
from app.registry import Step, StepReport, closest, register
from cdp import catalog
from cdp.errors import UsageError
from cdp.lake import read_feed, read_table, replace_partition

__all__: list[str] = []

_AS_OF = as_of_option("YYYY-MM-DD (default: the run's date, or the latest features)")


def _consent(context: RunContext, options: dict[str, Any]) -> StepReport:
    rows = build_consent_table(context.spark, context.lake)
    return StepReport("consent", [f"customer consent: {rows} customer x channel statements"], {"rows": rows}, rows_written=rows)


def _ownership(context: RunContext, options: dict[str, Any]) -> StepReport:
    as_of = options.get("as_of") or context.today()
    rows = build_ownership(context.spark, context.lake, as_of)
    lines = [f"as of {as_of}:", *(f"  {table:<20} {n:>8}" for table, n in rows.items())]
    return StepReport("ownership", lines, {"as_of": as_of, "rows": rows}, rows_written=sum(rows.values()))


def _reminders(context: RunContext, options: dict[str, Any]) -> StepReport:
    spark, lake = context.spark, context.lake
    as_of = options.get("as_of") or context.today()
    owners, vehicles, dealers = ownership_of(spark, lake, as_of)
    customers = read_table(spark, lake.path(catalog.CUSTOMERS)).select("customer_id", "birth_date")
    reminders = build_reminders(
        owners, vehicles, build_visits(read_feed(spark, lake, "service_orders"), as_of), customers,
        dealers, as_of, context.config.activation.reminders,
    )
    path = lake.path(catalog.REMINDERS)
    replace_partition(spark, reminders, path, "as_of_date", as_of)
    written = read_table(spark, path).filter(F.col("as_of_date") == F.lit(as_of))
    by_kind = {row["kind"]: int(row["count"]) for row in written.groupBy("kind").count().collect()}
    lines = [f"as of {as_of}: {sum(by_kind.values())} reminders", *(f"  {k:<20} {n:>8}" for k, n in sorted(by_kind.items()))]
    return StepReport("reminders", lines, {"as_of": as_of, "by_kind": by_kind}, rows_written=sum(by_kind.values()))


def _validate_campaigns(context: RunContext, options: dict[str, Any]) -> None:
    known = sorted(load_campaigns(context.config).campaigns)
    for name in options.get("campaign") or []:
        if name not in known:
            raise UsageError(f"no campaign {name!r} in the campaigns file: {closest(name, known)}")


def build_campaigns(context: RunContext, names: list[str], as_of: Any = None) -> StepReport:
    """Build the named campaigns' lists (all of them when `names` is empty) in one context."""
    _validate_campaigns(context, {"campaign": names})
    chosen = names or sorted(load_campaigns(context.config).campaigns)
    if not chosen:
        return StepReport("audiences", ["no campaigns defined"], {"built": []})
    spark = context.spark
    # Several campaigns share one set of inputs; each still sees the lists built before it.
    shared = campaign_inputs(spark, context.config, as_of, utc_now(), cache=True) if len(chosen) > 1 else None
    lines, built, listed = [], [], 0
    for name in chosen:
        report = build(spark, context.config, name, as_of, shared=shared)
        state = "rebuilt" if report.rebuilt else "new"
        lines.append(f"{name}: version {report.version} ({state}), {report.preview.listed} listed + "
                     f"{report.preview.holdout} control, {report.seconds:.1f}s")
        lines += [f"  warning: {note}" for note in report.preview.warnings]
        built.append({"campaign": name, "version": report.version, "rebuilt": report.rebuilt, "preview": report.preview})
        listed += report.preview.listed + report.preview.holdout
    return StepReport("audiences", lines, {"built": built}, rows_written=listed)


def _audiences(context: RunContext, options: dict[str, Any]) -> StepReport:
    return build_campaigns(context, list(options.get("campaign") or []), options.get("as_of") or context.as_of)


register(Step(
    "consent", "Consent per customer and channel from the contact preferences (gold/customer_consent).", _consent,
    reads=CONSENT_SOURCES, writes=(catalog.CUSTOMER_CONSENT,),
))
register(Step(
    "ownership", "Who owns which vehicle and each customer's dealer as of a date (read by lists and models).", _ownership,
    params=(_AS_OF,), reads=(catalog.PERSON_MENTIONS, catalog.CUSTOMER_XREF, catalog.silver("sales_orders"), catalog.silver("service_orders")),
    writes=(catalog.VEHICLE_OWNERS, catalog.HOME_DEALERS),
))
register(Step(
    "reminders", "Service, warranty, insurance, inspection and birthday reminders with due dates.", _reminders,
    params=(_AS_OF,), reads=(catalog.VEHICLE_OWNERS, catalog.HOME_DEALERS, catalog.CUSTOMERS, catalog.silver("service_orders")),
    writes=(catalog.REMINDERS,),
))
register(Step(
    "audiences", "Build every campaign's list (or the ones named) as a new version.", _audiences,
    params=(click.Option(["--campaign"], multiple=True, help="only this campaign; repeatable"), _AS_OF),
    reads=(
        catalog.CUSTOMER_FEATURES, *CONSENT_READS, catalog.CUSTOMER_SEGMENTS, catalog.REMINDERS, catalog.CUSTOMERS,
        catalog.VEHICLE_OWNERS, catalog.HOME_DEALERS,
    ),
    writes=(catalog.AUDIENCES, catalog.AUDIENCE_VERSIONS), validate=_validate_campaigns,
))
