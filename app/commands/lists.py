"""`cdp audience`, `cdp winback`, `cdp reminders`: campaign lists and call lists.

Exports leave out anyone who opted out of the channel, mask personal data unless the
operating-system user is listed as privileged (and states a purpose), and are recorded in
gold/export_audit. `audience list|versions` and `winback show` start no JVM."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from activation.exports import REMINDER_FIELDS, WINBACK_FIELDS
from activation.reminders import REMINDER_KINDS
from app.context import RunContext
from app.options import common_options, context_from
from app.registry import closest
from cdp import catalog
from cdp.activation_config import CHANNELS
from cdp.errors import MissingInputError, UsageError
from cdp.privacy import current_user, mask_text
from cdp.reader import LakeReader

__all__ = ["COMMANDS"]

_DATE = click.DateTime(["%Y-%m-%d"])


def export_options(func: Any) -> Any:
    for option in reversed((
        click.option("--format", "fmt", type=click.Choice(["csv", "parquet", "xlsx"]), default="csv", show_default=True),
        click.option("--out", required=True, help="file to write (local path or any Hadoop file system URI)"),
        click.option("--fields", help="comma-separated fields (default: the list's own)"),
        click.option("--privileged", is_flag=True, help="full contact details (needs --purpose and a privileged OS user)"),
        click.option("--purpose", help="why the export is needed; recorded in the audit table"),
    )):
        func = option(func)
    return func


def _request(kind: str, name: str, fields: tuple[str, ...], options: dict[str, Any], **extra: Any) -> Any:
    from activation.exports import ExportRequest

    chosen = tuple(options["fields"].split(",")) if options.get("fields") else fields
    return ExportRequest(
        kind, name, extra.pop("version", "-"), extra.pop("as_of", dt.date.min), extra.pop("channel", ""), chosen, options["fmt"],
        options["out"], current_user(), options["privileged"], options["purpose"], **extra,
    )


def _book(context: RunContext) -> Any:
    from activation.versions import load_campaigns

    return load_campaigns(context.config)


def _campaign(book: Any, name: str) -> None:
    if name not in book.campaigns:
        raise UsageError(f"no campaign {name!r} in the campaigns file: {closest(name, sorted(book.campaigns))}")


@click.group()
def audience() -> None:
    """Campaigns from conf/campaigns.yaml: sizes and suppressions before building; versioned lists."""


@audience.command("list")
@common_options
def audience_list(**options: Any) -> None:
    """Every campaign with its channel, group, priority and control group."""
    book = _book(context_from(options))
    if options["as_json"]:
        click.echo(json.dumps({n: c.model_dump(mode="json") for n, c in sorted(book.campaigns.items())}, ensure_ascii=False, indent=2))
        return
    click.echo(f"{'campaign':<28} {'channel':<7} {'group':<10} {'prio':>4} {'holdout':>7}  description")
    for name, c in sorted(book.campaigns.items()):
        click.echo(f"{name:<28} {c.channel:<7} {c.group or '-':<10} {c.priority:>4} {c.holdout_percent:>6.1f}%  {c.description}")


@audience.command("preview")
@click.argument("name")
@click.option("--as-of", type=_DATE, help="features of this date (default: the latest)")
@common_options
def audience_preview(name: str, as_of: dt.datetime | None, **options: Any) -> None:
    """Sizes and suppressions of a campaign; nothing written (no JVM)."""
    from activation.preview import preview_from_lake
    from activation.versions import utc_now

    context = context_from(options)
    book = _book(context)
    _campaign(book, name)
    reader = LakeReader(context.lake.root)
    require_opt_in = tuple(context.config.activation.consent.require_opt_in)
    p = preview_from_lake(reader, book, name, as_of.date() if as_of else None, utc_now(), require_opt_in)
    if options["as_json"]:
        click.echo(json.dumps(p.__dict__, default=str, ensure_ascii=False, indent=2))
        return
    click.echo(f"campaign {p.campaign} ({p.channel}): {p.qualifying} customers qualify")
    click.echo(f"  {'suppression':<22} {'alone':>8} {'in order':>9}")
    for flag, n in p.suppressed_in_order.items():
        click.echo(f"  {flag:<22} {p.suppressed_alone[flag]:>8} {n:>9}")
    click.echo(f"  members {p.members} = list {p.listed} + control group {p.holdout}")
    click.echo("  reachable among those qualifying: " + ", ".join(f"{c} {n}" for c, n in p.reachable_by_channel.items()))
    for note in p.warnings:
        click.echo(f"  warning: {note}")


@audience.command("build")
@click.argument("names", nargs=-1)
@click.option("--all", "build_all", is_flag=True, help="every campaign")
@click.option("--as-of", type=_DATE, help="features of this date (default: the latest)")
@common_options
def audience_build(names: tuple[str, ...], build_all: bool, as_of: dt.datetime | None, **options: Any) -> None:
    """Write a new version of the named campaigns' lists (or rebuild the same one)."""
    from app.registry import get_step
    from app.runner import run_step

    if not names and not build_all:
        raise UsageError("name a campaign or give --all")
    context = context_from(options)
    report = run_step(context, get_step("audiences"), {"campaign": list(names), "as_of": as_of.date() if as_of else None})
    click.echo(report.to_json() if options["as_json"] else report.text())


@audience.command("versions")
@click.argument("name")
@common_options
def audience_versions(name: str, **options: Any) -> None:
    """Every version of a campaign's list."""
    context = context_from(options)
    _campaign(_book(context), name)
    reader = LakeReader(context.lake.root)
    rows = reader.query("SELECT * EXCLUDE (definition) FROM v WHERE campaign = ? ORDER BY version",
                        {"v": catalog.AUDIENCE_VERSIONS}, [name]) if reader.exists(catalog.AUDIENCE_VERSIONS) else []
    if options["as_json"]:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    click.echo(f"{'version':>7} {'as of':<10} {'built at':<19} {'listed':>8} {'control':>8} definition")
    for r in rows:
        click.echo(f"{r['version']:>7} {r['as_of_date']!s:<10} {r['built_at']!s:<19} {r['listed']:>8} {r['holdout']:>8} {r['definition_hash'][:12]}")


@audience.command("export")
@click.argument("name")
@click.option("--version", type=int, help="default: the latest")
@export_options
@common_options
def audience_export(name: str, version: int | None, **options: Any) -> None:
    """Write a campaign's list for a dialer or messaging platform."""
    from activation.versions import export

    context = context_from(options)
    _campaign(_book(context), name)
    n = export(context.spark, context.config, name, _request("audience", name, (), options), version)
    click.echo(f"exported {n} rows of {name} to {options['out']}{' (privileged)' if options['privileged'] else ' (masked)'}")


def _winback_date(reader: LakeReader, as_of: dt.datetime | None, dealer: str | None) -> dt.date:
    if not reader.exists(catalog.WINBACK):
        raise MissingInputError("no win-back list yet: run `cdp run winback` first")
    tables = {"w": catalog.WINBACK}
    day = reader.latest(catalog.WINBACK, as_of.date() if as_of else None)
    if dealer:
        dealers = [r["d"] for r in reader.query("SELECT DISTINCT dealer_code AS d FROM w WHERE as_of_date = ? AND d IS NOT NULL "
                                                "ORDER BY d", tables, [day])]
        if dealer not in dealers:
            raise UsageError(f"no dealer {dealer!r} on the win-back list as of {day}: {closest(dealer, dealers)}")
    return day


@click.group()
def winback() -> None:
    """The win-back list of dormant and lost owners."""


@winback.command("show")
@click.option("--dealer", help="one dealer's list, ranked within the dealer")
@click.option("--top", type=int, help="only the N best-ranked (default 20)")
@click.option("--as-of", type=_DATE, help="default: the latest")
@common_options
def winback_show(dealer: str | None, top: int | None, as_of: dt.datetime | None, **options: Any) -> None:
    """The top of the list, masked."""
    context = context_from(options)
    reader = LakeReader(context.lake.root)
    day = _winback_date(reader, as_of, dealer)
    order = "dealer_rank" if dealer else "rank"
    rows = reader.query(
        f"SELECT w.{order} AS position, w.customer_id, c.name, w.dealer_code, w.lifecycle_stage, w.p_return, w.expected_value, "
        f"w.reason_codes FROM w LEFT JOIN c USING (customer_id) WHERE w.as_of_date = ? AND (? IS NULL OR w.dealer_code = ?) "
        f"ORDER BY w.{order} LIMIT ?",
        {"w": catalog.WINBACK, "c": catalog.CUSTOMERS}, [day, dealer, dealer, top or 20],
    )
    for row in rows:
        row["name"] = mask_text("name", row["name"])
    if options["as_json"]:
        click.echo(json.dumps({"as_of": str(day), "rows": rows}, default=str, ensure_ascii=False, indent=2))
        return
    click.echo(f"win-back list as of {day} (masked)")
    for r in rows:
        click.echo(f"{r['position']:>5} {r['customer_id']} {r['name'] or '-':<6} {r['dealer_code'] or '-':<6} {r['lifecycle_stage']:<8} "
                   f"p={r['p_return']:.2f} value={r['expected_value']:>9.0f}  {'; '.join(r['reason_codes'] or [])}")


@winback.command("export")
@click.option("--dealer", help="one dealer's list, ranked within the dealer")
@click.option("--top", type=int, help="only the N best-ranked")
@click.option("--as-of", type=_DATE, help="default: the latest")
@export_options
@common_options
def winback_export(dealer: str | None, top: int | None, as_of: dt.datetime | None, **options: Any) -> None:
    """Write the win-back list for the call centre."""
    from pyspark.sql import functions as F

    from activation.inputs import export_list, rows_with_contacts

    context = context_from(options)
    day = _winback_date(LakeReader(context.lake.root), as_of, dealer)
    rows = rows_with_contacts(context.spark, context.lake, catalog.WINBACK, day)
    if dealer:
        rows = rows.filter(F.col("dealer_code") == dealer)
    if top:
        rows = rows.filter(F.col("dealer_rank" if dealer else "rank") <= top)
    version = rows.select("model_version").first()
    request = _request(
        "winback", f"winback{'_' + dealer if dealer else ''}", WINBACK_FIELDS, options, version=f"model {version[0] if version else '-'}",
        as_of=day, channel=context.config.activation.winback.channel, order_by=("dealer_rank" if dealer else "rank",),
    )
    n = export_list(context.spark, context.config, context.lake, rows, request)
    click.echo(f"exported {n} rows to {options['out']}{' (privileged)' if options['privileged'] else ' (masked)'}")


@click.group()
def reminders() -> None:
    """Service, warranty, insurance, inspection and birthday reminders."""


@reminders.command("export")
@click.option("--kind", required=True, type=click.Choice(REMINDER_KINDS))
@click.option("--within-days", type=int, default=30, show_default=True, help="due from the as-of date up to N days later")
@click.option("--channel", type=click.Choice(CHANNELS), default="sms", show_default=True)
@click.option("--as-of", type=_DATE, help="default: the latest")
@export_options
@common_options
def reminders_export(kind: str, within_days: int, channel: str, as_of: dt.datetime | None, **options: Any) -> None:
    """Write the reminders of one kind due within N days."""
    from pyspark.sql import functions as F

    from activation.inputs import export_list, rows_with_contacts

    context = context_from(options)
    reader = LakeReader(context.lake.root)
    if not reader.exists(catalog.REMINDERS):
        raise MissingInputError("no reminders yet: run `cdp run reminders` first")
    day = reader.latest(catalog.REMINDERS, as_of.date() if as_of else None)
    rows = rows_with_contacts(context.spark, context.lake, catalog.REMINDERS, day)
    rows = rows.filter((F.col("kind") == kind) & F.col("days_until_due").between(0, within_days - 1))
    request = _request("reminders", f"{kind}_{within_days}d", REMINDER_FIELDS, options, as_of=day, channel=channel,
                       order_by=("due_date", "customer_id"))
    n = export_list(context.spark, context.config, context.lake, rows, request)
    click.echo(f"exported {n} rows to {options['out']}{' (privileged)' if options['privileged'] else ' (masked)'}")


COMMANDS: tuple[click.Command, ...] = (audience, winback, reminders)
