"""Running steps: one step, or a selection of the pipeline, in one context (one Spark
application), each recorded in the run ledger."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

from app.context import RunContext
from app.ledger import record_step, table_versions
from app.registry import PIPELINE, Step, StepReport, get_step, select_steps
from cdp.errors import CdpError, PartialFailureError

__all__ = ["run_pipeline", "run_step"]

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def run_step(context: RunContext, step: Step, options: dict[str, Any]) -> StepReport:
    """Run one step and record it in `_ops/runs` (failed runs too). A report with status
    `partial` becomes a PartialFailureError after it is recorded."""
    if step.validate is not None:
        step.validate(context, options)  # wrong names fail here, before Spark starts
    started = _now()
    before = table_versions(context, step.writes)
    log.info("step %s started (run %s)", step.name, context.run_id)
    try:
        report = step.run(context, options)
    except CdpError as exc:
        _record(context, step, started, "failed", None, before, str(exc))
        raise
    except Exception as exc:
        _record(context, step, started, "crashed", None, before, type(exc).__name__)
        raise
    _record(context, step, started, report.status, report, before, "")
    log.info("step %s %s", step.name, report.status)
    return report


def _record(
    context: RunContext, step: Step, started: dt.datetime, status: str, report: StepReport | None, before: dict[str, int], message: str
) -> None:
    after = table_versions(context, step.writes)
    written = {label: version for label, version in after.items() if version != before.get(label)}
    try:
        record_step(context, step.name, started, status, report, written, message)
    except Exception:  # noqa: BLE001 - a ledger that cannot be written must not hide the step's own outcome
        log.exception("could not record step %s in the run ledger", step.name)


def run_pipeline(
    context: RunContext,
    selected: Sequence[str] | None = None,
    *,
    champion_exists: Callable[[RunContext, str], bool] | None = None,
    emit: Callable[[StepReport], None] = lambda report: None,
) -> list[StepReport]:
    """Run the selected pipeline steps in order in one context. Training steps run only
    while their model has no champion (retraining is a model owner's decision), unless
    they were selected by name alone. A failing step stops the run."""
    names = list(selected) if selected is not None else select_steps(PIPELINE)
    explicit = selected is not None and len(names) < len(PIPELINE)
    reports = []
    for name in names:
        step = get_step(name)
        options = step.defaults()
        if step.trains and not explicit and champion_exists is not None and champion_exists(context, name):
            log.info("step %s skipped: a champion model exists", name)
            continue
        try:
            report = run_step(context, step, options)
        except CdpError as exc:
            if name == "train_winback" and not explicit:
                # Too little history for a win-back model is no reason to fail the other lists.
                log.warning("no win-back model yet (%s): win-back list skipped", exc)
                reports.append(StepReport(name, [f"train_winback: {exc}; win-back list skipped"], status="skipped"))
                break
            raise
        emit(report)
        reports.append(report)
        if report.status == "partial":
            raise PartialFailureError(f"step {name} finished in part; later steps not run")
    return reports
