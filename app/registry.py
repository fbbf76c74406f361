"""The step registry: every step declares its name, options, the tables it reads and writes,
and a `run(context, options)` that returns a report. The CLI, the pipeline, spark-submit
entry points and the Airflow DAG are all built from it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from cdp.catalog import TableRef
from cdp.errors import UsageError, closest

__all__ = ["PIPELINE", "Step", "StepReport", "closest", "dependencies", "get_step", "register", "select_steps", "steps"]

# The daily order. Training steps run in a pipeline only while no champion model exists.
PIPELINE = (
    "ingest", "resolve", "consent", "ownership", "complaint_cases", "satisfaction", "features", "train_segments", "segment", "reminders",
    "audiences", "train_winback", "winback", "dealer_kpis", "campaign_results",
)


@dataclass
class StepReport:
    """What a step did: lines for people, a dict for `--json`, counts for the run ledger."""

    step: str
    lines: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    rows_read: int | None = None
    rows_written: int | None = None
    status: str = "ok"

    def text(self) -> str:
        return "\n".join(self.lines)

    def to_json(self) -> str:
        return json.dumps({"step": self.step, "status": self.status, **self.data}, default=_jsonable, ensure_ascii=False, indent=2)


def _jsonable(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)


StepRun = Callable[[Any, dict[str, Any]], StepReport]


@dataclass(frozen=True)
class Step:
    """One unit of scheduled work."""

    name: str
    help: str
    run: StepRun
    params: tuple[click.Parameter, ...] = ()
    reads: tuple[TableRef, ...] = ()
    writes: tuple[TableRef, ...] = ()
    trains: bool = False
    validate: Callable[[Any, dict[str, Any]], None] | None = None
    after: tuple[str, ...] = ()  # steps whose output this one uses outside the tables (a champion model)
    # Dated tables it adds dates before the run's as-of date to (training snapshots): steps that
    # read the run's date need not wait for it.
    backfills: tuple[TableRef, ...] = ()
    # The dates it will backfill, when known before it runs: in a pipeline, the step that
    # writes those tables builds them in its own pass (`RunContext.backfill_dates`).
    backfill_dates: Callable[[Any], Sequence[dt.date]] | None = None
    tracks: bool = False  # uses MLflow, whose active experiment is one per process: never beside another such step
    # Python modules it imports that take seconds to load (Great Expectations, MLflow,
    # scikit-learn): a run loads them in the background from its start (`RunContext.preload`).
    preload: tuple[str, ...] = ()

    @property
    def written(self) -> tuple[TableRef, ...]:
        """Every table it writes, backfilled ones included."""
        return (*self.writes, *self.backfills)

    def defaults(self) -> dict[str, Any]:
        """Option values when the step runs inside a pipeline."""
        values = {}
        for param in self.params:
            assert param.name is not None
            default: Any = param.default() if callable(param.default) else param.default
            if not isinstance(default, str | int | float | bool | list | tuple):
                default = None  # click's marker for "no default"
            values[param.name] = list(default or ()) if param.multiple else default
        return values


_STEPS: dict[str, Step] = {}


def register(step: Step) -> Step:
    if step.name in _STEPS:
        raise ValueError(f"step {step.name} registered twice")
    _STEPS[step.name] = step
    return step


def steps() -> dict[str, Step]:
    """Every registered step, by name (the step modules register on import)."""
    import app.steps  # noqa: F401  (registers the steps)

    return dict(_STEPS)


def get_step(name: str) -> Step:
    known = steps()
    if name not in known:
        raise UsageError(f"no step {name!r}: {closest(name, list(known))}")
    return known[name]


def dependencies(names: Sequence[str], known: dict[str, Step] | None = None) -> dict[str, list[str]]:
    """For each of `names` (in pipeline order), the earlier ones it must wait for: a step that
    writes a table it reads, reads a table it writes, or writes a table it writes too, and the
    steps it names in `after`. A backfilled table counts as written, except against readers,
    which read the run's date. Steps with no such link may run side by side."""
    known = known if known is not None else steps()

    def labels(tables: tuple[TableRef, ...]) -> set[str]:
        return {t.label for t in tables}

    upstream: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        step = known[name]
        reads, writes, written = labels(step.reads), labels(step.writes), labels(step.written)
        upstream[name] = [
            earlier for earlier in names[:i]
            if earlier in step.after
            or labels(known[earlier].writes) & (reads | written)
            or labels(known[earlier].backfills) & written
            or labels(known[earlier].reads) & writes
        ]
    return upstream


def select_steps(
    order: Sequence[str], start: str | None = None, stop: str | None = None, only: Sequence[str] = ()
) -> list[str]:
    """The steps of `order` from `start` to `stop` (both included), or exactly `only` (in
    pipeline order). Unknown names are usage errors."""
    for name in [n for n in (start, stop) if n] + list(only):
        if name not in order:
            raise UsageError(f"no pipeline step {name!r}: {closest(name, list(order))}")
    if only:
        if start or stop:
            raise UsageError("--only cannot be combined with --from or --to")
        return [n for n in order if n in set(only)]
    first = order.index(start) if start else 0
    last = order.index(stop) if stop else len(order) - 1
    if first > last:
        raise UsageError(f"--from {start} comes after --to {stop} in the pipeline ({' -> '.join(order)})")
    return list(order[first : last + 1])
