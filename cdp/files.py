"""One output file from a DataFrame, on any Hadoop file system (local disk, HDFS, S3).

Spark writes a folder of part files; people and dialers expect one file. The rows are written
by one task into a staging folder beside the destination, then its one part file is moved into
place, so a killed write leaves no half-written file at the destination.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from cdp.errors import UsageError

__all__ = ["OutputError", "write_one_file"]

# (rows in one partition, Hadoop FileSystem, JVM view, staging folder) -> (rows, file written)
PartWriter = Callable[[DataFrame, Any, Any, Any], tuple[int, Any]]


class OutputError(UsageError):
    """An output file cannot be written where it was asked for."""


def write_one_file(
    spark: SparkSession,
    df: DataFrame,
    destination: str,
    fmt: str,
    *,
    order_by: Sequence[str] = (),
    replace: bool = False,
    writer: PartWriter | None = None,
) -> int:
    """Write `df` as one `fmt` file ("csv": UTF-8 with a header; "parquet"; or any format
    `writer` writes) at `destination`, sorted by `order_by`. An existing file is an error unless
    `replace`. Returns the rows written."""
    jvm = spark.sparkContext._jvm
    hadoop = spark.sparkContext._jsc.hadoopConfiguration()
    target = jvm.org.apache.hadoop.fs.Path(destination)
    fs = target.getFileSystem(hadoop)
    if fs.exists(target):
        if not replace:
            raise OutputError(f"{destination} exists: choose another --out or remove it first")
        if fs.getFileStatus(target).isDirectory() and fs.listStatus(target):
            raise OutputError(f"{destination} is a folder that is not empty: give a file name")
    staging = jvm.org.apache.hadoop.fs.Path(destination + ".writing")
    fs.delete(staging, True)
    staged = df.coalesce(1)
    if order_by:
        staged = staged.sortWithinPartitions(*order_by)
    staged = staged.cache()
    try:
        if writer is not None:
            rows, written = writer(staged, fs, jvm, staging)
        else:
            rows = staged.count()
            out = staged.write.mode("overwrite")
            if fmt == "csv":
                out.option("header", True).option("escape", '"').csv(str(staging.toString()))
            elif fmt == "parquet":
                out.parquet(str(staging.toString()))
            else:
                raise OutputError(f"{destination}: cannot write format {fmt!r}")
            parts = [s.getPath() for s in fs.listStatus(staging) if s.getPath().getName().startswith("part-")]
            if len(parts) != 1:
                raise OutputError(f"{destination}: expected one part file, found {len(parts)}")
            written = parts[0]
    finally:
        staged.unpersist()
    parent = target.getParent()
    if parent is not None and not fs.exists(parent):
        fs.mkdirs(parent)
    if replace:
        fs.delete(target, True)
    if not fs.rename(written, target):
        raise OutputError(f"could not move the file to {destination}")
    fs.delete(staging, True)
    return rows
