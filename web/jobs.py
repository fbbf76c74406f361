"""Actions that build or export something, run in the background by the same library code
as the CLI (`activation.versions.build`, `export`, `export_list`), one at a time, on a
SparkSession the app starts on first use. Pages poll a job's state to show its progress.

An export is written to a folder only the server reads, served once to the user who asked
for it, then deleted; the export is audited with that user's name when it is written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import queue
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cdp.config import AppConfig
from cdp.errors import CdpError

__all__ = ["Job", "JobRunner"]

log = logging.getLogger(__name__)

# Downloads not fetched within this many seconds are deleted.
DOWNLOAD_TTL_SECONDS = 3600


@dataclass
class Job:
    """One background action and its progress."""

    job_id: str
    user: str
    label: str
    state: str = "queued"  # queued | running | done | failed
    step: str = ""
    message: str = ""
    file: Path | None = None
    download_name: str = ""
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def public(self) -> dict[str, Any]:
        """What the page may show (no paths)."""
        return {"job_id": self.job_id, "label": self.label, "state": self.state, "step": self.step, "message": self.message,
                "download": bool(self.file and self.state == "done")}


class JobRunner:
    """A queue of jobs worked by one thread; the SparkSession is started by the first job."""

    def __init__(self, config: AppConfig, spark_factory: Callable[[AppConfig], Any] | None = None) -> None:
        self.config = config
        self._spark_factory = spark_factory
        self._spark: Any = None
        self._jobs: dict[str, Job] = {}
        self._queue: queue.Queue[tuple[Job, Callable[[Any, Job], None]]] = queue.Queue()
        self._lock = threading.Lock()
        self.folder = Path(tempfile.mkdtemp(prefix="cdp-web-"))
        self.folder.chmod(0o700)
        self._worker = threading.Thread(target=self._work, name="cdp-web-jobs", daemon=True)
        self._worker.start()

    def _session(self, job: Job) -> Any:
        if self._spark is None:
            job.step = "starting Spark"
            if self._spark_factory is not None:
                self._spark = self._spark_factory(self.config)
            else:
                from cdp.spark import build_spark_session

                self._spark = build_spark_session(self.config)
        return self._spark

    def _work(self) -> None:
        while True:
            job, action = self._queue.get()
            job.state = "running"
            try:
                action(self._session(job), job)
                job.state, job.step = "done", ""
            except CdpError as exc:
                job.state, job.message = "failed", str(exc)
            except Exception as exc:
                log.exception("web job %s failed", job.label)
                job.state, job.message = "failed", f"{type(exc).__name__}: see the server log"
            job.finished = time.time()
            self._expire()

    def submit(self, user: str, label: str, action: Callable[[Any, Job], None]) -> Job:
        job = Job(secrets.token_urlsafe(12), user, label)
        with self._lock:
            self._jobs[job.job_id] = job
        self._queue.put((job, action))
        return job

    def get(self, job_id: str, user: str) -> Job | None:
        """The job, only for the user who started it."""
        job = self._jobs.get(job_id)
        return job if job is not None and job.user == user else None

    def of_user(self, user: str) -> list[Job]:
        return sorted((j for j in self._jobs.values() if j.user == user), key=lambda j: -j.created)

    def take_download(self, job_id: str, user: str) -> tuple[bytes, str] | None:
        """The export's bytes (once), deleted from the server's folder."""
        job = self.get(job_id, user)
        if job is None or job.file is None or job.state != "done" or not job.file.exists():
            return None
        data = job.file.read_bytes()
        job.file.unlink()
        job.file = None
        return data, job.download_name

    def _expire(self) -> None:
        now = time.time()
        with self._lock:
            for job in list(self._jobs.values()):
                if job.finished and now - job.finished > DOWNLOAD_TTL_SECONDS:
                    if job.file is not None:
                        job.file.unlink(missing_ok=True)
                    del self._jobs[job.job_id]

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    # The actions.

    def build_audience(self, user: str, campaign: str) -> Job:
        def action(spark: Any, job: Job) -> None:
            from activation.versions import build

            job.step = "building the list"
            report = build(spark, self.config, campaign)
            job.message = f"version {report.version}: {report.preview.listed} listed, {report.preview.holdout} in the control group"

        return self.submit(user, f"build {campaign}", action)

    def _target(self, job: Job, stem: str, fmt: str) -> Path:
        job.download_name = f"{stem}_{dt.date.today():%Y%m%d}.{fmt}"
        return self.folder / f"{job.job_id}.{fmt}"

    def export_audience(self, user: str, campaign: str, version: int | None, fmt: str) -> Job:
        def action(spark: Any, job: Job) -> None:
            from activation.versions import export

            job.step = "exporting"
            job.file = self._target(job, campaign, fmt)
            count = export(spark, self.config, campaign, self._request(user, fmt, job), version)
            job.message = f"{count} rows"

        return self.submit(user, f"download {campaign}", action)

    def export_table(
        self, user: str, kind: str, table: Any, day: dt.date, dealer: str | None, fmt: str,
        where: Callable[[Any], Any] | None = None, **request: Any,
    ) -> Job:
        """A win-back or reminders list of one date: one dealer's rows when `dealer` is given,
        the rows `where` keeps (a function of the DataFrame, run on the worker)."""
        def action(spark: Any, job: Job) -> None:
            from pyspark.sql import functions as F

            from activation.inputs import export_list, rows_with_contacts
            from cdp.lake import Lake

            job.step = "exporting"
            lake = Lake(self.config.resolve(self.config.lake.root))
            rows = rows_with_contacts(spark, lake, table, day)
            if dealer:
                rows = rows.filter(F.col("dealer_code") == dealer)
            if where is not None:
                rows = where(rows)
            job.file = self._target(job, f"{kind}{'_' + dealer if dealer else ''}", fmt)
            count = export_list(spark, self.config, lake, rows, dataclasses.replace(self._request(user, fmt, job), as_of=day, **request))
            job.message = f"{count} rows"

        return self.submit(user, f"download {kind}{' ' + dealer if dealer else ''}", action)

    def _request(self, user: str, fmt: str, job: Job) -> Any:
        from activation.exports import ExportRequest

        assert job.file is not None
        return ExportRequest("audience", "", "-", dt.date.min, "", (), fmt, f"file://{job.file}", user)
