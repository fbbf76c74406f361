"""What a scheduler needs from the step registry: the daily steps, each with the command that
runs it and the steps it waits for, and the exit codes worth a retry."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from app.registry import PIPELINE, dependencies, get_step, steps

__all__ = ["ScheduledTask", "daily_tasks"]

@dataclass(frozen=True)
class ScheduledTask:
    step: str
    description: str
    command: str
    upstream: tuple[str, ...]


def daily_tasks(as_of: str = "{{ ds }}", conf: str | None = None, skip: Collection[str] = ()) -> list[ScheduledTask]:
    """One task per pipeline step not in `skip`, in pipeline order, each waiting for the steps
    whose tables it needs (`registry.dependencies`), without links that follow from others."""
    names = [name for name in PIPELINE if name not in skip]
    upstream = dependencies(names, steps())
    tasks = []
    for name in names:
        step = get_step(name)
        dated = any(p.name == "as_of" for p in step.params)
        command = " ".join(["cdp", "run", name, *(["--as-of", as_of] if dated else []), *(["--conf", conf] if conf else [])])
        direct = tuple(u for u in upstream[name] if not any(u in _ancestors(upstream, other) for other in upstream[name]))
        tasks.append(ScheduledTask(name, step.help, command, direct))
    return tasks


def _ancestors(upstream: dict[str, list[str]], name: str) -> set[str]:
    found: set[str] = set()
    stack = list(upstream[name])
    while stack:
        node = stack.pop()
        if node not in found:
            found.add(node)
            stack.extend(upstream[node])
    return found
