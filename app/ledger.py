"""The run ledger `_ops/runs`: one row per step of every run, appended by the step runner.

Schedulers and people read it to see what ran, how long it took, what it read and wrote
and which Delta versions it produced (`cdp runs`)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import TYPE_CHECKING

from cdp import catalog
from cdp.lake import local_folder
from cdp.reader import delta_version
from cdp.records import merge_records

if TYPE_CHECKING:
    from app.context import RunContext
    from app.registry import StepReport

__all__ = ["RUNS_SCHEMA", "record_step", "table_versions"]

log = logging.getLogger(__name__)

RUNS_SCHEMA = (
    "run_id string, step string, started_at timestamp, finished_at timestamp, status string, seconds double, "
    "rows_read bigint, rows_written bigint, versions_written string, message string"
)


def table_versions(context: RunContext, tables: tuple[catalog.TableRef, ...]) -> dict[str, int]:
    """Current Delta version of each table (-1 when missing), read without Spark."""
    found = {}
    for table in tables:
        if table.delta:
            try:
                found[table.label] = delta_version(context.lake.path(table))
            except Exception as exc:  # noqa: BLE001 - storage delta-rs cannot reach: the ledger says so, the step goes on
                log.warning("cannot read the version of %s (%s)", table.label, type(exc).__name__)
                found[table.label] = -1
    return found


def record_step(
    context: RunContext,
    step: str,
    started: dt.datetime,
    status: str,
    report: StepReport | None,
    written: dict[str, int],
    message: str = "",
) -> None:
    """Append (or, re-run with the same run id, replace) the step's row in `_ops/runs`."""
    finished = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    row = (
        context.run_id, step, started, finished, status, (finished - started).total_seconds(),
        report.rows_read if report else None, report.rows_written if report else None,
        json.dumps(written, sort_keys=True), message[:2000],
    )
    path = context.lake.path(catalog.RUNS)
    # On cluster storage the ledger goes through the run's Spark session; locally it needs none.
    spark = None if local_folder(path) is not None else context.spark
    merge_records(spark, path, [row], RUNS_SCHEMA, ["run_id", "step"])
