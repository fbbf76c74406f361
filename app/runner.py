"""Running steps: one step, or a selection of the pipeline, in one context (one Spark
application), each recorded in the run ledger."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from app.context import RunContext
from app.ledger import record_step, table_versions
from app.registry import PIPELINE, Step, StepReport, dependencies, get_step, select_steps
from cdp.catalog import TableRef
from cdp.errors import CdpError, PartialFailureError

__all__ = ["critical_first", "planned_backfills", "run_pipeline", "run_step", "steps_at_once"]

log = logging.getLogger(__name__)

# Steps running side by side record themselves one at a time.
_LEDGER = threading.Lock()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def run_step(context: RunContext, step: Step, options: dict[str, Any]) -> StepReport:
    """Run one step and record it in `_ops/runs` (failed runs too). A report with status
    `partial` becomes a PartialFailureError after it is recorded."""
    if step.validate is not None:
        step.validate(context, options)  # wrong names fail here, before Spark starts
    context.preload(step.preload)
    started = _now()
    before = table_versions(context, step.written)
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
    if context.has_spark:
        from cdp.spark import give_back_heap

        # The heap a step grew is given back before the next: the 100,000-customer pipeline
        # peaked at 8,187 MiB in train_segments, its Python workers beside a JVM of 5.3 GB
        # grown by the features step.
        give_back_heap(context.spark)
    return report


def _record(
    context: RunContext, step: Step, started: dt.datetime, status: str, report: StepReport | None, before: dict[str, int], message: str
) -> None:
    after = table_versions(context, step.written)
    written = {label: version for label, version in after.items() if version != before.get(label)}
    try:
        with _LEDGER:
            record_step(context, step.name, started, status, report, written, message)
    except Exception:  # noqa: BLE001 - a ledger that cannot be written must not hide the step's own outcome
        log.exception("could not record step %s in the run ledger", step.name)


def planned_backfills(
    names: Sequence[str], known: dict[str, Step], skipped: Callable[[str], bool], context: RunContext
) -> dict[TableRef, set[dt.date]]:
    """Per dated table, the earlier dates that steps of this run will backfill into it, when
    an earlier step of the run writes that table: it builds them in the same pass as the
    run's own date (one plan, one commit) instead of the later step building them apart."""
    planned: dict[TableRef, set[dt.date]] = {}
    for i, name in enumerate(names):
        step = known[name]
        if step.backfill_dates is None or skipped(name):
            continue
        written_before = {table for other in names[:i] for table in known[other].writes}
        for table in step.backfills:
            if table in written_before:
                planned.setdefault(table, set()).update(step.backfill_dates(context))
    return planned


def steps_at_once(context: RunContext) -> int:
    """How many pipeline steps may run side by side: `pipeline.small_data_parallel_steps` on a
    small local lake (`RunContext.small_lake`) when the profile sets it, else `parallel_steps`."""
    pipeline = context.config.pipeline
    if pipeline.small_data_parallel_steps is not None and context.small_lake:
        return pipeline.small_data_parallel_steps
    return pipeline.parallel_steps


def critical_first(names: Sequence[str], upstream: dict[str, list[str]]) -> list[str]:
    """`names` ordered by the longest chain of steps waiting on each (the step itself
    included), longest first, ties in pipeline order. Side by side, a step that many others
    wait on in turn starts before one that ends a chain: in the 2,000-customer demo, `features`
    (followed by training, scoring and the lists) started 17 s after `resolve` ended, behind
    `complaint_cases`, which nothing waits for."""
    waiting = {name: [other for other in names if name in upstream[other]] for name in names}

    @functools.cache
    def chain(name: str) -> int:
        return 1 + max((chain(other) for other in waiting[name]), default=0)

    return sorted(names, key=lambda name: (-chain(name), names.index(name)))


def run_pipeline(
    context: RunContext,
    selected: Sequence[str] | None = None,
    *,
    champion_exists: Callable[[RunContext, str], bool] | None = None,
    emit: Callable[[StepReport], None] = lambda report: None,
    options: dict[str, dict[str, Any]] | None = None,
) -> list[StepReport]:
    """Run the selected pipeline steps in one context. A step starts once every step it
    depends on (`registry.dependencies`: the tables they share, and `after`) is done; up to
    `pipeline.parallel_steps` run side by side (`critical_first`), and never two that track in MLflow. Training
    steps run only while their model has no champion (retraining is a model owner's
    decision), unless they were selected by name alone. A failing step stops the run: nothing
    starts after it, the steps already running finish, and its error is raised. Each step runs
    with its options' defaults, save those `options` sets for it by name. Reports come back in
    pipeline order."""
    names = list(selected) if selected is not None else select_steps(PIPELINE)
    explicit = selected is not None and len(names) < len(PIPELINE)
    known = {name: get_step(name) for name in names}
    context.preload([module for name in names for module in known[name].preload])

    @functools.cache
    def skipped(name: str) -> bool:  # asked once per step: planning and starting agree
        return known[name].trains and not explicit and champion_exists is not None and champion_exists(context, name)

    # Asking for a champion opens the model registry, which on a new store first creates its
    # database: the 2,000-customer demo's first step started 10 s into the run. The plan is
    # made beside the first steps instead: only a step that trains, uses MLflow or writes a
    # table some step backfills waits for it.
    backfilled = {table for name in names for table in known[name].backfills}
    needs_plan = {name for name in names if known[name].trains or known[name].tracks or backfilled & set(known[name].writes)}
    planner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plan")
    plan = planner.submit(planned_backfills, names, known, skipped, context)
    planner.shutdown(wait=False)
    upstream = dependencies(names, known)
    workers = steps_at_once(context)
    if workers > 1:
        log.info("pipeline: up to %d steps at a time", workers)
    done: set[str] = set()
    dropped: set[str] = set()
    # One at a time, in pipeline order; side by side, the ready step heading the longest chain first.
    pending = critical_first(names, upstream) if workers > 1 else list(names)
    running: dict[Future[StepReport], str] = {}
    reports: dict[str, StepReport] = {}
    failure: BaseException | None = None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="step") as pool:
        while True:
            for name in list(pending) if failure is None else []:
                step = known[name]
                if any(u in dropped for u in upstream[name]):
                    pending.remove(name)
                    dropped.add(name)
                    log.info("step %s skipped: it needs a step that did not run", name)
                elif len(running) < workers and all(u in done for u in upstream[name]):
                    if step.tracks and any(known[other].tracks for other in running.values()):
                        continue
                    if name in needs_plan:
                        try:
                            context.backfill_dates = plan.result()
                        except Exception as exc:  # noqa: BLE001 - as a step's failure: nothing more starts
                            failure = exc
                            break
                    pending.remove(name)
                    if skipped(name):
                        log.info("step %s skipped: a champion model exists", name)
                        done.add(name)
                    else:
                        chosen = {**step.defaults(), **(options or {}).get(name, {})}
                        running[pool.submit(run_step, context, step, chosen)] = name
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                try:
                    report = future.result()
                except CdpError as exc:
                    if name == "train_winback" and not explicit:
                        # Too little history for a win-back model is no reason to fail the other lists.
                        log.warning("no win-back model yet (%s): win-back list skipped", exc)
                        reports[name] = StepReport(name, [f"train_winback: {exc}; win-back list skipped"], status="skipped")
                        dropped.add(name)
                    else:
                        failure = failure or exc
                    continue
                except BaseException as exc:  # noqa: BLE001 - raised once the running steps finish
                    failure = failure or exc
                    continue
                emit(report)
                reports[name] = report
                if report.status == "partial":
                    failure = failure or PartialFailureError(f"step {name} finished in part; later steps not run")
                else:
                    done.add(name)
    if failure is not None:
        raise failure
    return [reports[name] for name in names if name in reports]
