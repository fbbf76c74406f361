"""One run's context, built once at the edge: validated config, the lake's catalog
locations, one SparkSession (started on first use), the MLflow tracker, the as-of date
and a run id."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cdp.catalog import TableRef
from cdp.config import AppConfig, load_config
from cdp.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["RunContext", "new_run_id"]

log = logging.getLogger(__name__)


def new_run_id(now: dt.datetime | None = None) -> str:
    """A run id that sorts by start time: `YYYYmmddTHHMMSS-<6 hex>`."""
    now = now or dt.datetime.now(dt.UTC)
    salt = hashlib.sha256(f"{now.isoformat()}-{os.getpid()}".encode()).hexdigest()[:6]
    return f"{now:%Y%m%dT%H%M%S}-{salt}"


@dataclass
class RunContext:
    """Everything a step needs; built once per command or pipeline run."""

    config: AppConfig
    run_id: str = field(default_factory=new_run_id)
    as_of: dt.date | None = None
    master: str | None = None
    spark_overrides: dict[str, str] = field(default_factory=dict)
    # Earlier dates that later steps of a pipeline run will read from a dated table, by table
    # (`Step.backfill_dates`): the step writing the table builds them with the run's date.
    backfill_dates: dict[TableRef, set[dt.date]] = field(default_factory=dict)
    _spark: SparkSession | None = None
    _starting: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _preloaded: set[str] = field(default_factory=set, repr=False, compare=False)

    @classmethod
    def from_profile(
        cls,
        profile: str | None = None,
        *,
        as_of: dt.date | None = None,
        master: str | None = None,
        spark_overrides: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> RunContext:
        """Load and validate the profile (default `$CDP_CONF` or `conf/local.yaml`)."""
        config = load_config(profile)
        return cls(config, run_id or new_run_id(), as_of, master, dict(spark_overrides or {}))

    @property
    def lake(self) -> Lake:
        return Lake(self.config.resolve(self.config.lake.root))

    @property
    def spark(self) -> SparkSession:
        """The run's SparkSession, started on first use and shared by every step."""
        with self._starting:  # steps side by side ask for it at once
            if self._spark is None:
                from cdp.spark import build_spark_session

                self._spark = build_spark_session(self.config, master=self.master, overrides=self.spark_overrides)
            return self._spark

    def preload(self, modules: Sequence[str]) -> threading.Thread | None:
        """Import `modules` (in order) on a background thread, unless imported or asked for
        before; returns the thread, if one started. A run's steps spend their first seconds
        waiting for the JVM to start, and a Spark job's driver thread waits for the JVM with
        the interpreter free: Great Expectations, MLflow and scikit-learn load in that time
        instead of when a step first needs them. A module that fails to load here fails again,
        with its error, where a step imports it."""
        wanted = [m for m in dict.fromkeys(modules) if m not in self._preloaded and m not in sys.modules]
        self._preloaded.update(wanted)
        if not wanted:
            return None

        def load() -> None:
            for module in wanted:
                try:
                    importlib.import_module(module)
                except Exception:  # noqa: BLE001 - the step that needs it raises it
                    log.debug("preloading %s failed", module, exc_info=True)

        thread = threading.Thread(target=load, name="preload", daemon=True)
        thread.start()
        return thread

    @property
    def has_spark(self) -> bool:
        return self._spark is not None

    @property
    def small_lake(self) -> bool:
        """Whether the feeds are a small local lake (`cdp.spark.small_lake_bytes`): batches
        small enough to check on the driver."""
        from cdp.spark import small_lake_bytes

        return small_lake_bytes(self.config) is not None

    def tracker(self, experiment: str) -> str:
        """Point MLflow at the profile's store and select `experiment`; returns its id."""
        from cdp.tracking import use_experiment

        return use_experiment(self.config, experiment)

    def today(self) -> dt.date:
        """The as-of date of the run, or today (UTC) when none was given."""
        return self.as_of or dt.datetime.now(dt.UTC).date()
