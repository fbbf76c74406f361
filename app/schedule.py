"""What a scheduler needs from the step registry: the daily steps in order, each with the
command that runs it and the exit codes worth a retry."""

from __future__ import annotations

from dataclasses import dataclass

from app.registry import PIPELINE, get_step

__all__ = ["ScheduledTask", "daily_tasks"]

@dataclass(frozen=True)
class ScheduledTask:
    step: str
    description: str
    command: str
    upstream: str | None


def daily_tasks(as_of: str = "{{ ds }}", conf: str | None = None) -> list[ScheduledTask]:
    """One task per pipeline step, each depending on the one before."""
    tasks = []
    previous = None
    for name in PIPELINE:
        step = get_step(name)
        dated = any(p.name == "as_of" for p in step.params)
        command = " ".join(["cdp", "run", name, *(["--as-of", as_of] if dated else []), *(["--conf", conf] if conf else [])])
        tasks.append(ScheduledTask(name, step.help, command, previous))
        previous = name
    return tasks
