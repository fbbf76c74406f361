"""Step `ingest`: new files of every feed into bronze, silver and quarantine."""

from __future__ import annotations

from typing import Any

import click

from app.context import RunContext
from app.registry import Step, StepReport, closest, register
from cdp import catalog
from cdp.config import FEED_NAMES
from cdp.errors import UsageError
from ingestion import FeedReport, ingest_feeds

__all__ = ["format_reports"]


def format_reports(reports: list[FeedReport]) -> str:
    header = f"{'feed':<20} {'new files':>9} {'skipped':>7} {'read':>9} {'loaded':>9} {'quarantined':>11}  reconciled"
    lines = [header, "-" * len(header)]
    for r in reports:
        lines.append(
            f"{r.feed:<20} {r.files_new:>9} {r.files_skipped:>7} {r.rows_read:>9} {r.rows_loaded:>9} "
            f"{r.rows_quarantined:>11}  {'yes' if r.reconciled else 'NO'}"
        )
    totals = FeedReport("total", rows_read=sum(r.rows_read for r in reports),
                        rows_loaded=sum(r.rows_loaded for r in reports),
                        rows_quarantined=sum(r.rows_quarantined for r in reports))
    lines.append(
        f"{'total':<20} {'':>9} {'':>7} {totals.rows_read:>9} {totals.rows_loaded:>9} {totals.rows_quarantined:>11}  "
        f"{'yes' if totals.reconciled else 'NO'}"
    )
    for r in reports:
        if r.quarantine_by_rule:
            rules = ", ".join(f"{k}={v}" for k, v in sorted(r.quarantine_by_rule.items()))
            lines.append(f"  {r.feed} quarantine by rule: {rules}")
    return "\n".join(lines)


def _validate(context: RunContext, options: dict[str, Any]) -> None:
    configured = list(context.config.ingest.feeds)
    for feed in options.get("feed") or []:
        if feed not in configured:
            raise UsageError(f"no feed {feed!r} in the feeds file: {closest(feed, configured)}")
    if not configured:
        raise UsageError(f"no feeds configured in {context.config.conf_path(context.config.feeds_file)}: nothing to ingest")


def _run(context: RunContext, options: dict[str, Any]) -> StepReport:
    chosen = list(options.get("feed") or [])
    reports, errors = ingest_feeds(context.spark, context.config, context.lake, chosen or None)
    lines = [format_reports(reports), *(f"ERROR {error}" for error in errors)]
    return StepReport(
        "ingest", lines, {"feeds": reports, "errors": [str(e) for e in errors]},
        rows_read=sum(r.rows_read for r in reports), rows_written=sum(r.rows_loaded + r.rows_quarantined for r in reports),
        status="partial" if errors else "ok",
    )


register(Step(
    "ingest", "Load new files of every feed into bronze, silver and quarantine.", _run,
    params=(click.Option(["--feed"], multiple=True, help="only this feed; repeatable"),), validate=_validate,
    writes=(*[t for f in FEED_NAMES for t in (catalog.bronze(f), catalog.silver(f), catalog.quarantine(f))],
            catalog.INGEST_FILES, catalog.VALIDATION_RESULTS),
    preload=("great_expectations",),
))
