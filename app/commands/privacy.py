"""`cdp privacy`: erase a person from every table, vacuum Delta history, read the audit trails."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from app.options import common_options, context_from
from cdp import catalog
from cdp.errors import UsageError
from cdp.privacy import current_user
from cdp.reader import LakeReader

__all__ = ["COMMANDS"]


def _token_key(env: str) -> str:
    key = os.environ.get(env)
    if not key:
        raise UsageError(f"set {env}: the key for erasure tokens, kept outside the lake")
    return key


@click.group()
def privacy() -> None:
    """Erasure across every table, Delta history clean-up, who exported what."""


_SHORT_HELP = "allow a retention under 168 h (stop every job first: files still being read are deleted)"


@privacy.command("erase")
@click.option("--mobile", help="the person's mobile")
@click.option("--id-number", help="the person's resident ID (an old 15-digit one finds the 18-character form too)")
@click.option("--customer", "customer_id", help="the person's customer ID")
@click.option("--dry-run", is_flag=True, help="say what would be removed, remove nothing")
@click.option("--vacuum", is_flag=True, help="vacuum the touched tables afterwards (after the retention period)")
@click.option("--force", is_flag=True, help="allow a mobile that more than 3 customers share")
@click.option("--allow-short-retention", is_flag=True, help=_SHORT_HELP)
@common_options
def erase_command(
    mobile: str | None, id_number: str | None, customer_id: str | None, dry_run: bool, vacuum: bool, force: bool, allow_short_retention: bool, **options: Any
) -> None:
    """Remove a person, widened to their resolved customers, from every table."""
    from activation.erase import erase, exports_holding, plan_erasure, standard_id_number
    from activation.erasure import subject_token
    from cdp.vacuum import check_retention, vacuum_lake
    from entity_resolution.standardise.mobiles import standardise_mobile

    if sum(map(bool, (mobile, id_number, customer_id))) != 1:
        raise UsageError("give exactly one of --mobile, --id-number and --customer")
    context = context_from(options)
    if vacuum:
        check_retention(context.config.activation.privacy.vacuum_retention_hours, allow_short_retention)
    key = _token_key(context.config.activation.privacy.token_key_env)
    spark, lake = context.spark, context.lake
    plan = plan_erasure(spark, lake, mobile=mobile, id_number=id_number, customer_id=customer_id)
    if not plan.customer_ids and not plan.mobiles and not plan.id_numbers:
        raise UsageError("no customer holds that identifier")
    click.echo(f"{len(plan.customer_ids)} customer(s), {len(plan.mention_ids)} mention(s), "
               f"{sum(map(len, plan.owned_records.values()))} owned record(s)")
    if len(plan.customer_ids) > 3 and not force:
        raise UsageError(f"{len(plan.customer_ids)} customers share that mobile (a dealer's number?): check, then --force")
    handed_out = exports_holding(spark, lake, plan.customer_ids)
    if dry_run:
        _echo_recalls(handed_out)
        return
    if mobile:
        kind, value = "mobile", standardise_mobile(mobile) or ""
    elif id_number:
        kind, value = "id_number", standard_id_number(spark, id_number) or ""
    else:
        kind, value = "customer", customer_id or ""
    counts = erase(spark, context.config, plan, kind, subject_token(key, kind, value), current_user())
    for table, n in sorted(counts.items()):
        click.echo(f"  {table:<34} {n:>6}")
    _echo_recalls(handed_out)
    if vacuum:
        hours = context.config.activation.privacy.vacuum_retention_hours
        touched = [lake.path(catalog.by_label(label.replace(".", "/", 1))) for label in counts]
        vacuumed = vacuum_lake(spark, lake, hours, touched, allow_short_retention=allow_short_retention)
        click.echo(f"vacuumed {len(vacuumed)} tables (retention {hours} h)")


def _echo_recalls(exports: list[dict[str, Any]]) -> None:
    """Exported files that held the person: outside the lake, to be recalled from recipients."""
    if exports:
        click.echo(f"{len(exports)} earlier export(s) held this person; recall them from their recipients:")
    for e in exports:
        click.echo(f"  {e['export_id']}  {e['exported_at']}  {e['user']}  {e['list_kind']} {e['list_name'] or ''}  {e['destination']}")


@privacy.command("vacuum")
@click.option("--retention-hours", type=int, help="default activation.privacy.vacuum_retention_hours")
@click.option("--allow-short-retention", is_flag=True, help=_SHORT_HELP)
@common_options
def vacuum_command(retention_hours: int | None, allow_short_retention: bool, **options: Any) -> None:
    """Remove old file versions from every table of the lake."""
    from cdp.vacuum import check_retention, vacuum_lake

    context = context_from(options)
    hours = context.config.activation.privacy.vacuum_retention_hours if retention_hours is None else retention_hours
    check_retention(hours, allow_short_retention)  # before Spark starts
    vacuumed = vacuum_lake(context.spark, context.lake, hours, allow_short_retention=allow_short_retention)
    click.echo(f"vacuumed {len(vacuumed)} tables (retention {hours} h)")


@privacy.command("audit")
@click.option("--erasures", is_flag=True, help="erasures instead of exports")
@click.option("--last", type=int, default=50, show_default=True)
@common_options
def audit_command(erasures: bool, last: int, **options: Any) -> None:
    """Who exported what, when and why (or the erasures), newest first."""
    context = context_from(options)
    reader = LakeReader(context.lake.root)
    table, order = (catalog.ERASURE_LOG, "requested_at") if erasures else (catalog.EXPORT_AUDIT, "exported_at")
    if not reader.exists(table):
        click.echo(f"no {'erasures' if erasures else 'exports'} recorded yet")
        return
    rows = reader.query(f"SELECT * FROM t ORDER BY {order} DESC LIMIT ?", {"t": table}, [last])
    if options["as_json"]:
        click.echo(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(row)


COMMANDS: tuple[click.Command, ...] = (privacy,)
