"""Spark's work in each step of a pipeline run, read from the run's Spark event log: how many
queries (root SQL executions: an action, or a Delta command with the queries it runs inside)
and jobs a step started, how long its jobs ran, and where the longest of them came from.

A step's work is what started between the step's start and end in the run ledger. Steps run
one at a time in a benchmark (a lake past `spark.small_data_max_bytes` runs them so); steps
run side by side would each count the other's work.

The event log is Spark's (`spark.eventLog.enabled`), uncompressed (`spark.eventLog.compress`
false): one JSON event per line, in a file or in a rolling log's folder of files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SparkWork", "event_log_settings", "read_events", "work_by_step"]

_QUERY_START = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart"


def event_log_settings(folder: Path) -> dict[str, str]:
    """The Spark settings that write a run's event log under `folder`, readable by `read_events`."""
    return {"spark.eventLog.enabled": "true", "spark.eventLog.dir": str(folder), "spark.eventLog.compress": "false"}


@dataclass
class SparkWork:
    """A step's Spark work. `sites`: job seconds by where the jobs came from (`_site`)."""

    queries: int = 0
    jobs: int = 0
    job_seconds: float = 0.0
    sites: dict[str, float] = field(default_factory=dict)

    def as_row(self, top: int = 5) -> dict:
        longest = sorted(self.sites.items(), key=lambda kv: -kv[1])[:top]
        return {
            "spark_queries": self.queries,
            "spark_jobs": self.jobs,
            "spark_job_seconds": round(self.job_seconds, 1),
            "spark_longest_sites": {site: round(seconds, 1) for site, seconds in longest},
        }


def read_events(folder: Path) -> Iterator[dict]:
    """Every event of the event logs under `folder`, file by file in name order (a rolling
    log's parts are numbered). A compressed log is refused with the setting that avoids it."""
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file() and not p.name.startswith((".", "appstatus"))):
        if path.suffix in (".zstd", ".lz4", ".snappy", ".lzf"):
            raise ValueError(f"{path}: a compressed event log; write it with spark.eventLog.compress=false")
        yield from _file_events(path)


def _file_events(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                if not line.endswith("\n"):  # the unfinished last line of a log being written
                    return
                raise ValueError(f"{path}, line {number}: not a JSON event ({exc.msg})") from exc
            yield event


def _site(job_start: dict) -> str:
    """Where a job came from: the Python line that started it when Spark knows it (an RDD
    action), else the job's description (Delta names its commands' jobs), else its last
    stage's name (`parquet at <unknown>:0`)."""
    properties = job_start.get("Properties") or {}
    stages = job_start.get("Stage Infos") or [{}]
    return properties.get("callSite.short") or properties.get("spark.job.description") or stages[-1].get("Stage Name") or "(unknown)"


def _step_of(windows: dict[str, tuple[float, float]], at_ms: float) -> list[str]:
    return [step for step, (start, end) in windows.items() if start <= at_ms / 1000 <= end]


def work_by_step(events: Iterable[dict], windows: dict[str, tuple[float, float]]) -> dict[str, SparkWork]:
    """Each step's Spark work. `windows`: a step's start and end, in seconds since the epoch.
    A job counts for the steps whose window holds its submission, with the time to its end."""
    work = {step: SparkWork() for step in windows}
    started: dict[int, tuple[float, str]] = {}
    for event in events:
        kind = event.get("Event")
        if kind == _QUERY_START:
            root = event.get("rootExecutionId", event["executionId"])
            if root == event["executionId"]:
                for step in _step_of(windows, event["time"]):
                    work[step].queries += 1
        elif kind == "SparkListenerJobStart":
            started[event["Job ID"]] = (event["Submission Time"], _site(event))
        elif kind == "SparkListenerJobEnd" and event["Job ID"] in started:
            submitted, site = started.pop(event["Job ID"])
            seconds = max(event["Completion Time"] - submitted, 0) / 1000
            for step in _step_of(windows, submitted):
                work[step].jobs += 1
                work[step].job_seconds += seconds
                work[step].sites[site] = work[step].sites.get(site, 0.0) + seconds
    return work
