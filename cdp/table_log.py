"""What a Delta table's log tells of a version without reading its rows: its data files and
how many rows they hold. Read by delta-rs from the log on this machine's disk (milliseconds,
no Spark job), else by Spark (cluster storage, or a log delta-rs cannot read)."""

from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from cdp.lake import local_folder, read_table

__all__ = ["table_files", "table_rows"]

log = logging.getLogger(__name__)


def table_files(spark: SparkSession, path: str, version: int) -> set[str]:
    """The data files of the Delta table at `path` as of `version`, as Spark reads them:
    from its log by delta-rs on this machine's disk, else by Spark."""
    folder = local_folder(path)
    if folder is not None:
        from deltalake import DeltaTable

        try:
            return {_plain(f) for f in DeltaTable(str(folder), version=version).file_uris()}
        except Exception as exc:  # noqa: BLE001 - a protocol feature delta-rs lacks: Spark reads it
            log.debug("delta-rs cannot read the log of %s (%s)", path, type(exc).__name__)
    return {_plain(f) for f in read_table(spark, path, version=version).inputFiles()}


def table_rows(spark: SparkSession, path: str, version: int | None = None) -> int:
    """The rows of the Delta table at `path` (now, or as of `version`): from the file
    statistics in its log by delta-rs on this machine's disk, else counted by Spark."""
    folder = local_folder(path)
    if folder is not None:
        import pyarrow as pa
        from deltalake import DeltaTable

        try:
            counts = pa.table(DeltaTable(str(folder), version=version).get_add_actions(flatten=True)).column("num_records").to_pylist()
        except Exception as exc:  # noqa: BLE001 - a protocol feature delta-rs lacks: Spark counts
            log.debug("delta-rs cannot read the log of %s (%s)", path, type(exc).__name__)
        else:
            if all(c is not None for c in counts):
                return int(sum(counts))
    return read_table(spark, path, version=version).count()


def _plain(uri: str) -> str:
    """A file's address as both readers give it: a local file by its path."""
    return uri.removeprefix("file:").removeprefix("//") if uri.startswith("file:") else uri
