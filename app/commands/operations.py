"""`cdp complaints`: the dealer-operations figures, read from the gold tables without a JVM."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from app.options import common_options, context_from
from app.registry import closest
from cdp import catalog
from cdp.errors import UsageError
from cdp.reader import LakeReader

__all__ = ["COMMANDS"]


@click.group()
def complaints() -> None:
    """Complaint cases: deadlines, breaches and the repeat rule (`cdp run complaint_cases`)."""


@complaints.command("due")
@click.option("--dealer", help="one dealer's cases")
@click.option("--within", type=int, default=None, help="hours ahead counted as about to breach (default: the conf's, 24)")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="default: the latest built")
@common_options
def complaints_due(dealer: str | None, within: int | None, as_of: dt.datetime | None, **options: Any) -> None:
    """Cases not closed that are about to breach a deadline, or have breached one, per dealer."""
    context = context_from(options)
    reader = LakeReader(context.lake.root)
    day = reader.latest(catalog.COMPLAINT_CASES, as_of.date() if as_of else None)
    tables = {"c": catalog.COMPLAINT_CASES}
    if dealer:
        dealers = [r["dealer_code"] for r in reader.query("SELECT DISTINCT dealer_code FROM c WHERE as_of_date = ? AND dealer_code IS NOT NULL",
                                                          tables, [day])]
        if dealer not in dealers:
            raise UsageError(f"no dealer {dealer!r} among the complaint cases as of {day}: {closest(dealer, sorted(dealers))}")
    hours = within if within is not None else context.config.operations.complaints.due_soon_hours
    rows = reader.query(
        "SELECT dealer_code, complaint_id, category, severity, status, received_at, response_due_at, closure_due_on, "
        "due_within_hours, response_breached, closure_breached, report_to_region, valid_reason, "
        "CASE WHEN response_breached OR closure_breached THEN 'breached' ELSE 'due soon' END AS state "
        "FROM c WHERE as_of_date = ? AND status <> 'closed' AND (? IS NULL OR dealer_code = ?) "
        "AND (response_breached OR closure_breached OR due_within_hours <= ?) "
        "ORDER BY dealer_code, state, due_within_hours, complaint_id",
        tables, [day, dealer, dealer, hours],
    )
    if options["as_json"]:
        click.echo(json.dumps({"as_of": str(day), "within_hours": hours, "rows": rows}, default=str, ensure_ascii=False, indent=2))
        return
    click.echo(f"complaint cases as of {day}: {len(rows)} breached or due within {hours} h")
    for r in rows:
        flags = " region" if r["report_to_region"] else ""
        click.echo(f"{r['dealer_code'] or '-':<7} {r['complaint_id']:<14} {r['state']:<9} {r['status']:<9} {r['category']:<16} "
                   f"response due {r['response_due_at']}  closure due {r['closure_due_on'] or '-'}  "
                   f"in {_hours(r['due_within_hours'])}{flags}")


def _hours(value: float | None) -> str:
    """Hours to the next deadline; '-' when the calendar could not date it."""
    return "-" if value is None else f"{value:.1f} h"


COMMANDS: tuple[click.Command, ...] = (complaints,)
