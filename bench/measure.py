"""What the benchmark measures outside the jobs themselves: peak memory of a job's process
tree (read from /proc, so nothing is added to the job), row counts of Delta tables (read
from their logs, so no Spark session is needed between stages) and how far two crosswalks
agree (DuckDB)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ProcessTreeSampler", "StageRun", "agreement", "delta_rows", "lake_rows", "run_measured"]

_KIB = 1024


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process in bytes; empty once it is gone."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * _KIB
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return {}
    return out


def _pss(pid: int) -> int | None:
    """Proportional set size in bytes: shared pages (a forked Python worker's, the JVM's
    mapped libraries) divided among the processes sharing them, so a tree's sum counts them
    once. None where the kernel does not offer it."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * _KIB
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        # The command name is in parentheses and may hold spaces: fields follow the last ')'.
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _is_jvm(pid: int) -> bool:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe")) == "java"
    except OSError:
        return False


class ProcessTreeSampler(threading.Thread):
    """Samples a process and its descendants every `interval` seconds.

    The root is the driver (Python, with DuckDB inside it); `java` processes are the JVM;
    other descendants are Python workers. Peaks per process come from the kernel's VmHWM,
    so a spike between two samples is not missed; the tree total is the largest sampled sum
    of proportional set sizes (resident sets where the kernel has none), so pages shared by
    forked workers are not counted once per worker. When that largest sum was taken (seconds
    from the start) and what it was made of (driver, JVM, workers) are kept beside it: the
    per-process peaks need not fall together, and the job's log tells what ran then."""

    def __init__(self, root: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.driver_peak = 0
        self.jvm_peak = 0
        self.tree_peak = 0
        self.tree_peak_at = 0.0
        self.tree_peak_parts: dict[str, int] = {}
        self._began = time.perf_counter()
        self._done = threading.Event()

    def sample(self) -> None:
        parts = {"driver": 0, "jvm": 0, "workers": 0}
        for pid in _descendants(self.root):
            status = _status(pid)
            if not status:
                continue
            pss = _pss(pid)
            peak = status.get("VmHWM", 0)
            if pid == self.root:
                part = "driver"
                self.driver_peak = max(self.driver_peak, peak)
            elif _is_jvm(pid):
                part = "jvm"
                self.jvm_peak = max(self.jvm_peak, peak)
            else:
                part = "workers"
            parts[part] += status.get("VmRSS", 0) if pss is None else pss
        total = sum(parts.values())
        if total > self.tree_peak:
            self.tree_peak = total
            self.tree_peak_at = time.perf_counter() - self._began
            self.tree_peak_parts = parts

    def run(self) -> None:
        while not self._done.is_set():
            self.sample()
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


@dataclass
class StageRun:
    """One measured command: exit status, wall seconds and peak memory in bytes."""

    returncode: int
    seconds: float
    driver_peak: int
    jvm_peak: int
    tree_peak: int
    log: Path
    extra: dict = field(default_factory=dict)
    tree_peak_at: float = 0.0
    tree_peak_parts: dict[str, int] = field(default_factory=dict)


def run_measured(command: list[str], log: Path, env: dict[str, str] | None = None) -> StageRun:
    """Run a command with its output in `log`, timing it and sampling its memory."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        sampler = ProcessTreeSampler(process.pid)
        sampler.start()
        returncode = process.wait()
        seconds = time.perf_counter() - started
        sampler.stop()
    return StageRun(
        returncode,
        seconds,
        sampler.driver_peak,
        sampler.jvm_peak,
        sampler.tree_peak,
        log,
        tree_peak_at=sampler.tree_peak_at,
        tree_peak_parts=sampler.tree_peak_parts,
    )


def _records(stats: str | None) -> int:
    return int(json.loads(stats)["numRecords"]) if stats else 0


def delta_rows(table: Path) -> int | None:
    """Rows in the current version of a Delta table on the local disk, from the file
    statistics in its log (the newest checksum file, else a replay of the commits); None if
    there is no table or a file carries no statistics."""
    log = table / "_delta_log"
    commits = sorted(log.glob("[0-9]*.json"))
    if not commits:
        return None
    checksum = log / f"{commits[-1].stem}.crc"
    if checksum.exists():
        files = json.loads(checksum.read_text(encoding="utf-8")).get("allFiles")
        if files is not None:
            if any("stats" not in f for f in files):
                return None
            return sum(_records(f["stats"]) for f in files)
    live: dict[str, str | None] = {}
    for commit in commits:
        for line in commit.read_text(encoding="utf-8").splitlines():
            action = json.loads(line)
            if "add" in action:
                live[action["add"]["path"]] = action["add"].get("stats")
            elif "remove" in action:
                live.pop(action["remove"]["path"], None)
    if any(stats is None for stats in live.values()):
        return None
    return sum(_records(stats) for stats in live.values())


def lake_rows(lake: Path, pattern: str) -> int:
    """Rows over every Delta table matching `pattern` under the lake (e.g. `silver/*`)."""
    return sum(delta_rows(t) or 0 for t in sorted(lake.glob(pattern)) if (t / "_delta_log").is_dir())


def agreement(xref: Path, reference: Path) -> dict[str, float]:
    """Pairwise precision and recall of the crosswalk at `xref` against the one at `reference`
    (Parquet files of mention_id, customer_id), over the mentions both hold."""
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TEMP TABLE j AS SELECT a.customer_id AS c, b.customer_id AS r FROM read_parquet(?) a JOIN read_parquet(?) b USING (mention_id)",
        [str(xref), str(reference)],
    )
    pairs = "SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM (SELECT count(*) AS n FROM j GROUP BY {})"
    both, got, wanted = (con.execute(pairs.format(k)).fetchone()[0] for k in ("c, r", "c", "r"))
    con.close()
    return {
        "pairwise_precision": both / got if got else 1.0,
        "pairwise_recall": both / wanted if wanted else 1.0,
        "pairs": float(wanted),
    }
