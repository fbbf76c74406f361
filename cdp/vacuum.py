"""VACUUM of the lake's Delta tables: old file versions removed after the retention period.

Tables on the local disk are vacuumed with delta-rs (`deltalake`): it reads the removals from
the Delta log and deletes the files in milliseconds, where Spark's VACUUM spends a few
seconds of jobs per table. Tables elsewhere (HDFS, object stores through Hadoop) go through
Spark's VACUUM LITE.
"""

from __future__ import annotations

import logging
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from cdp.errors import UsageError
from cdp.lake import Lake, local_folder, table_exists

__all__ = ["SAFE_RETENTION_HOURS", "check_retention", "delta_tables", "vacuum_lake"]

# Delta's own floor: a job or reader that started before VACUUM may still need files
# removed within this window, and time travel to those versions stops working.
SAFE_RETENTION_HOURS = 168

log = logging.getLogger(__name__)

_LAYERS = ("bronze", "silver", "quarantine", "gold", "_ops")


def delta_tables(spark: SparkSession, lake: Lake) -> list[str]:
    root = local_folder(lake.root)
    if root is not None:
        return sorted(
            str(folder) for layer in _LAYERS if (root / layer).is_dir()
            for folder in (root / layer).iterdir() if (folder / "_delta_log").is_dir()
        )
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    found = []
    for layer in _LAYERS:
        folder = jvm.org.apache.hadoop.fs.Path(lake.layer(layer))
        fs = folder.getFileSystem(conf)
        if not fs.exists(folder):
            continue
        for status in fs.listStatus(folder):
            path = status.getPath().toString()
            if status.isDirectory() and table_exists(spark, path):
                found.append(path)
    return sorted(found)


def check_retention(retention_hours: int, allow_short_retention: bool) -> None:
    """Refuse a retention under 168 hours unless the caller overrides it on purpose."""
    if retention_hours < 0:
        raise UsageError(f"retention {retention_hours} h: must be 0 or more hours")
    if retention_hours < SAFE_RETENTION_HOURS and not allow_short_retention:
        raise UsageError(
            f"retention {retention_hours} h is under {SAFE_RETENTION_HOURS} h: VACUUM would delete files that a running job "
            "or reader may still read, and time travel to them ends. Stop every job first, then pass --allow-short-retention"
        )


def vacuum_lake(
    spark: SparkSession, lake: Lake, retention_hours: int, tables: list[str] | None = None, *, allow_short_retention: bool = False
) -> list[str]:
    """Remove files that Delta commits dropped more than `retention_hours` ago from `tables`
    (default: every Delta table of the lake). LITE mode reads the removals from the Delta
    log instead of listing storage; a table whose log cannot tell falls back to a full VACUUM.
    Under 168 hours only with `allow_short_retention` (see `check_retention`)."""
    check_retention(retention_hours, allow_short_retention)
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    previous = spark.conf.get(check, "true") or "true"
    spark.conf.set(check, "false" if retention_hours < SAFE_RETENTION_HOURS else previous)
    try:
        tables = delta_tables(spark, lake) if tables is None else [t for t in tables if table_exists(spark, t)]
        for path in tables:
            folder = local_folder(path)
            if folder is not None:
                _vacuum_local(folder, retention_hours)
                continue
            try:
                spark.sql(f"VACUUM delta.`{path}` LITE RETAIN {int(retention_hours)} HOURS")
            except Exception as exc:  # noqa: BLE001 - Delta raises a generic error when LITE cannot run
                log.warning("VACUUM LITE not possible on %s (%s); running a full VACUUM", path, type(exc).__name__)
                DeltaTable.forPath(spark, path).vacuum(float(retention_hours))
    finally:
        spark.conf.set(check, previous)
    return tables


def _vacuum_local(folder: Path, retention_hours: int) -> None:
    """delta-rs's VACUUM (lite: the removals recorded in the log) of one local table; the
    retention floor was checked by the caller."""
    from deltalake import DeltaTable as LocalTable

    removed = LocalTable(str(folder)).vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)
    log.info("vacuumed %s: %d file(s) removed", folder, len(removed))
