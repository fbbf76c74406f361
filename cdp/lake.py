"""Lake layout and Delta write helpers shared by every job.

Tables are addressed by path (`<root>/<layer>/<name>`), so the same code runs against a
local folder or shared storage on a cluster without a metastore.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import operator
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteDeleteException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
    ProtocolChangedException,
)
from delta.tables import DeltaTable
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, DataFrameWriter, SparkSession
from pyspark.sql import functions as F

from cdp import catalog, faults
from cdp.catalog import TableRef
from cdp.contract import CONTRACTS
from cdp.delta_stats import stats_columns
from cdp.errors import ConcurrentWriteError, DataRejectedError, MissingInputError
from cdp.reader import file_count, latest_commit

__all__ = [
    "DuplicateKeyError",
    "Lake",
    "append_once",
    "commit_metadata",
    "committed",
    "noting_commits",
    "insert_new",
    "merge_into",
    "read_feed",
    "read_latest",
    "read_or_empty",
    "overwrite_table",
    "read_table",
    "remove_path",
    "replace_partition",
    "replace_rows",
    "replace_where",
    "require_tables",
    "side_by_side",
    "table_exists",
    "table_version",
]

log = logging.getLogger(__name__)


class DuplicateKeyError(DataRejectedError, ValueError):
    """A MERGE source holds more than one row for a key; merging would corrupt the target."""


@dataclass(frozen=True)
class Lake:
    """Where the catalog's tables live: one root folder (local disk or cluster storage)."""

    root: str

    def layer(self, layer: str) -> str:
        return f"{self.root.rstrip('/')}/{layer}"

    def path(self, table: TableRef) -> str:
        """The location of a catalog table."""
        return f"{self.root.rstrip('/')}/{table.layer}/{table.name}"


def local_folder(path: str) -> Path | None:
    """The folder of a lake path on this machine's disk (plain or `file:`), or None for
    cluster storage (`hdfs://`, `s3a://`, ...)."""
    if path.startswith("file:"):
        return Path(path.removeprefix("file:").removeprefix("//"))
    return None if "://" in path else Path(path)


def table_exists(spark: SparkSession, path: str) -> bool:
    return DeltaTable.isDeltaTable(spark, path)


def read_table(spark: SparkSession, path: str, version: int | None = None) -> DataFrame:
    """The Delta table at `path`, at its latest version or at `version` (which later writes
    to the table do not change: a run can read what it is about to replace without copying)."""
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(path)


def validate_unique_keys(df: DataFrame, keys: list[str], table: str) -> None:
    """Raise DuplicateKeyError when `df` has two rows for one key."""
    dupes = df.groupBy(*keys).count().filter(F.col("count") > 1)
    found = dupes.limit(1).count()
    if found:
        total = dupes.count()
        raise DuplicateKeyError(
            f"merge into {table}: source has {total} key(s) on ({', '.join(keys)}) with more than one row"
        )


def _with_stats_columns(
    writer: DataFrameWriter, df: DataFrame, no_stats_columns: list[str] | None = None, partition_by: str | None = None
) -> DataFrameWriter:
    """Name the columns a new table keeps statistics for: never a personal one (see
    `cdp.delta_stats`), nor `no_stats_columns`, nor the partition column."""
    stats = stats_columns(df.dtypes, [*(no_stats_columns or []), *([partition_by] if partition_by else [])])
    return writer.option("delta.dataSkippingStatsColumns", ",".join(f"`{c}`" for c in stats))


# Delta's optimistic-concurrency conflicts: another writer committed to the table first.
_CONFLICTS = (
    ConcurrentAppendException, ConcurrentDeleteDeleteException, ConcurrentDeleteReadException, ConcurrentTransactionException,
    ConcurrentWriteException, DeltaConcurrentModificationException, MetadataChangedException, ProtocolChangedException,
)
COMMIT_ATTEMPTS = 4


def committed(path: str, write: Callable[[], object], conflicts: tuple[type[Exception], ...] = _CONFLICTS) -> None:
    """Run `write` (one Delta commit); when another writer committed first (one of
    `conflicts`: Spark's by default, delta-rs's for `cdp.records`), wait a moment and run it
    again against the new table version, up to COMMIT_ATTEMPTS times. Each write here is
    idempotent, so a retry gives what a serial run gives."""
    faults.before_commit(path)  # one fault point per commit, however often it is retried
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        try:
            write()
            return
        except conflicts as exc:
            if attempt == COMMIT_ATTEMPTS:
                raise ConcurrentWriteError(f"{path}: another writer changed the table {attempt} times in a row; run again") from exc
            pause = 0.2 * 2**attempt * (1 + random.random())
            log.warning("%s: a concurrent writer committed first (%s); retrying in %.1fs", path, type(exc).__name__, pause)
            time.sleep(pause)
        except AnalysisException as exc:
            # Two writers both found the table missing; the other created it: retry as an update.
            if "DELTA_PATH_EXISTS" not in str(exc) and "already exists" not in str(exc) or attempt == COMMIT_ATTEMPTS:
                raise
            log.warning("%s: created by a concurrent writer; retrying", path)


# Writes run at once by `side_by_side`: on a small lake each is a few short Spark jobs and a
# commit, whose fixed costs leave the cores idle; on a large one they share the executors.
SIDE_BY_SIDE = 3


def side_by_side(*writes: Callable[[], object]) -> list[object]:
    """Run independent writes (to different tables) at once, `SIDE_BY_SIDE` at a time, on
    threads sharing the SparkSession; wait for all of them, then raise the first one's error
    (in the order given), or return what each returned, in that order. What must come after
    them is called after this returns."""
    with ThreadPoolExecutor(max_workers=SIDE_BY_SIDE, thread_name_prefix="write") as pool:
        futures = [pool.submit(write) for write in writes]
    return [future.result() for future in futures]


def overwrite_table(
    spark: SparkSession, df: DataFrame, path: str, *, no_stats_columns: list[str] | None = None, user_metadata: str | None = None
) -> None:
    """Replace the Delta table at `path` with `df` in one commit (readers see old or new,
    never a mix). `no_stats_columns` as in `merge_into`, applied when the table is created;
    `user_metadata` is kept in the commit (see `commit_metadata`)."""
    def write() -> None:
        writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        if user_metadata is not None:
            writer = writer.option("userMetadata", user_metadata)
        if not table_exists(spark, path):
            writer = _with_stats_columns(writer, df, no_stats_columns)
        writer.save(path)

    committed(path, write)
    log.info("wrote %s", path)


def replace_partition(
    spark: SparkSession, df: DataFrame, path: str, column: str, value: object, no_stats_columns: list[str] | None = None
) -> None:
    """Replace the rows of one partition (`column == value`) of the table at `path` with `df`
    in one commit, creating the table partitioned by `column` if missing. Re-running with the
    same `df` leaves the table as after one run; other partitions are untouched."""
    replace_partitions(spark, df, path, column, [value], no_stats_columns)


def replace_partitions(
    spark: SparkSession, df: DataFrame, path: str, column: str, values: Sequence[object], no_stats_columns: list[str] | None = None
) -> None:
    """`replace_partition` for several values of `column` at once, in one commit: each of
    `values` ends up holding exactly `df`'s rows of it (none if `df` has none)."""
    if not values:
        raise ValueError(f"replace {path}: no {column} values given")
    stray = df.filter(~F.col(column).isin(*values) | F.col(column).isNull()).limit(1).count()
    if stray:
        raise ValueError(f"replace {path} where {column} in {', '.join(map(str, values))}: the data holds rows of other partitions")
    condition = f"`{column}` = '{values[0]}'" if len(values) == 1 else f"`{column}` IN ({', '.join(repr(str(v)) for v in values)})"

    def write() -> None:
        writer = df.write.format("delta").partitionBy(column)
        if table_exists(spark, path):
            writer = writer.mode("overwrite").option("replaceWhere", condition)
        else:
            writer = _with_stats_columns(writer.mode("errorifexists"), df, no_stats_columns, column)
        writer.save(path)

    committed(path, write)
    log.info("replaced %s where %s", path, condition)


def replace_where(spark: SparkSession, df: DataFrame, path: str, condition: str, partition_by: str) -> None:
    """Replace the rows matching `condition` (a SQL predicate over `df`'s own values, e.g.
    one list version) with `df` in one commit, creating the table partitioned by
    `partition_by` if missing. Re-running with the same `df` leaves the table as after one run."""
    def write() -> None:
        writer = df.write.format("delta").partitionBy(partition_by)
        if table_exists(spark, path):
            writer.mode("overwrite").option("replaceWhere", condition).save(path)
        else:
            _with_stats_columns(writer.mode("errorifexists"), df, None, partition_by).save(path)

    committed(path, write)
    log.info("replaced %s where %s", path, condition)


def merge_into(
    spark: SparkSession,
    df: DataFrame,
    path: str,
    keys: list[str],
    *,
    update: bool = True,
    no_stats_columns: list[str] | None = None,
    unchanged_ignoring: tuple[str, ...] = (),
    unique_by_construction: bool = False,
    evolve: bool = False,
    insert: bool = True,
) -> None:
    """Upsert `df` into the Delta table at `path` on `keys`; create the table if missing
    (`evolve`: add the columns of `df` the table lacks). Without `insert`, rows of the table
    with keys of `df` get its other columns (`df` may hold only some of the table's), and
    nothing is inserted or created.
    A row equal to the target's (leaving out `unchanged_ignoring`, e.g. a load time) is not
    written again, so a replayed source writes no new version.

    Running it twice with the same source leaves the table as after one run. With
    `no_stats_columns` (PII), the table keeps min/max statistics only for the other columns,
    because `_delta_log` statistics survive VACUUM and erasure. `unique_by_construction`: the
    caller built `df` with one row per key (e.g. deduplicated it), so the check is skipped.
    """
    if not unique_by_construction:
        validate_unique_keys(df, keys, path)

    def write() -> None:
        if not insert:
            _update_matched(spark, df, path, keys, evolve)
            return
        if not table_exists(spark, path):
            _with_stats_columns(df.write.format("delta").mode("errorifexists"), df, no_stats_columns).save(path)
            log.info("created %s", path)
            return
        target = DeltaTable.forPath(spark, path)
        # When the table holds none of the keys (a feed's new records, the usual case) there
        # is nothing to compare: an insert-only merge reads only the table's keys, and still
        # conflicts with a writer that adds one of them meanwhile.
        updating = update and _holds_any_key(target.toDF(), df, keys)
        changed = _changed_rows(df, target.toDF(), keys, updating, unchanged_ignoring)
        if updating and changed.limit(1).count() == 0:
            log.info("%s already holds every row: nothing to merge", path)  # a replay writes no new version
            return
        merge = target.alias("t").merge(changed.alias("s"), _same_keys(keys))
        if evolve:
            merge = merge.withSchemaEvolution()
        if updating:
            merge = merge.whenMatchedUpdateAll()
        merge.whenNotMatchedInsertAll().execute()
        log.info("merged into %s", path)

    committed(path, write)


def _same_keys(keys: list[str]) -> str:
    """A merge's condition: target `t` and source `s` rows with equal keys, nulls equal."""
    return " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)


def _update_matched(spark: SparkSession, df: DataFrame, path: str, keys: list[str], evolve: bool) -> None:
    if not table_exists(spark, path):
        return
    target = DeltaTable.forPath(spark, path)
    held = set(target.toDF().columns)
    values = [c for c in df.columns if c not in keys]
    changed = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" if c in held else "true" for c in values)
    merge = target.alias("t").merge(df.alias("s"), _same_keys(keys))
    if evolve:
        merge = merge.withSchemaEvolution()
    merge.whenMatchedUpdate(changed, {f"`{c}`": f"s.`{c}`" for c in values}).execute()
    log.info("updated rows of %s", path)


def append_once(spark: SparkSession, df: DataFrame, path: str, writer_id: str, version: int) -> None:
    """Append `df` to the Delta table at `path` unless `writer_id` already appended at
    `version` or later (Delta's idempotent writes: the commit records the pair). For rows that
    cannot be in the table yet (say, pairs of records new since the last run): no scan of the
    table, no rewritten files, and a re-run after a crash appends nothing twice."""
    def write() -> None:
        df.write.format("delta").mode("append").option("txnAppId", writer_id).option("txnVersion", version).save(path)

    committed(path, write)
    log.info("appended to %s", path)


def insert_new(
    spark: SparkSession, df: DataFrame, path: str, keys: list[str], *, probe: Column, writer_id: str, no_stats_columns: list[str] | None = None
) -> None:
    """Insert `df` (one row per key) into the Delta table at `path`, creating it if missing,
    for rows the table can hold already only if one of its rows matches `probe` (say, a
    batch's file hashes: the rows of files loaded before a crash). No row matches, the usual
    case, told from the files' statistics: an idempotent append (`append_once` by
    `writer_id`), with no scan of the table. Some row matches: the insert-only merge of
    `merge_into`, which adds only the missing rows."""
    if table_exists(spark, path) and read_table(spark, path).filter(probe).limit(1).count() == 0:
        append_once(spark, df, path, writer_id, 0)
        return
    merge_into(spark, df, path, keys, update=False, no_stats_columns=no_stats_columns, unique_by_construction=True)


def _holds_any_key(target: DataFrame, source: DataFrame, keys: list[str]) -> bool:
    """Whether `target` holds a key of `source` (compared as the merge does, nulls equal);
    reads only the key columns of both."""
    same = [F.col(f"s.`{k}`").eqNullSafe(F.col(f"t.`{k}`")) for k in keys]
    return source.select(*keys).alias("s").join(target.select(*keys).alias("t"), same, "left_semi").limit(1).count() > 0


def _comparable(df: str, column: str, kind: str) -> Column:
    """A value `<=>` can compare: maps (which Spark cannot compare) as sorted JSON."""
    if kind.startswith("map<"):
        return F.to_json(F.array_sort(F.map_entries(F.col(f"{df}.`{column}`"))))
    return F.col(f"{df}.`{column}`")


def _changed_rows(source: DataFrame, target: DataFrame, keys: list[str], update: bool, ignoring: tuple[str, ...] = ()) -> DataFrame:
    """The source rows a merge would write: rows of new keys, and with `update` rows whose
    values differ from the target's. Insert-only merges skip this: Delta commits nothing
    when they insert nothing, but a merge with an update clause always commits."""
    if not update:
        return source
    kinds = dict(source.dtypes)
    shared = [c for c in source.columns if c in target.columns and c not in ignoring]
    same = [_comparable("s", c, kinds[c]).eqNullSafe(_comparable("t", c, kinds[c])) for c in shared]
    return source.alias("s").join(target.alias("t"), same, "left_anti")


# `replace_rows` rewrites the whole table, rather than merging, when the stale keys are at least
# this many per file of the table. Rows of a customer sit anywhere in a table, so that many
# are in nearly every file (all but e^-3, 5%, of them), and a merge would rewrite them all
# after a join to find them. A crosswalk of 1,958,844 rows in 2 files, 8% of its customers' rows
# replaced: merged in 13.7-17.6 s, rewritten in 5.7-7.3 s. New rows alone touch no file.
WHOLE_TABLE_STALE_KEYS_PER_FILE = 3


def replace_rows(spark: SparkSession, rows: DataFrame, path: str, keys: list[str], stale: DataFrame, staging: str) -> None:
    """Upsert `rows` into the Delta table at `path` on `keys` and delete the `stale` keys
    that `rows` does not hold, in one commit: the way to rewrite a slice of a table (say,
    the customers a run touched) without rewriting the rest.

    `rows` and the stale keys are each computed once, into `staging`, before the rows' keys
    are checked: a stale key read from the target itself is read before the target changes.
    When the stale keys are many for the table's files (`WHOLE_TABLE_STALE_KEYS_PER_FILE`), the
    table is rewritten whole with the rows a merge would leave; else the rows and the stale
    keys they lack, flagged, are staged as the merge's source. Running twice with the same
    inputs leaves the table as after one run.
    """
    rows.write.mode("overwrite").parquet(f"{staging}/rows")
    rows = spark.read.parquet(f"{staging}/rows")
    validate_unique_keys(rows, keys, path)
    columns = rows.columns
    stale.select(*keys).distinct().write.mode("overwrite").parquet(f"{staging}/stale")
    stale = spark.read.parquet(f"{staging}/stale")
    if stale.count() >= WHOLE_TABLE_STALE_KEYS_PER_FILE * _file_count(spark, path):
        _rewrite_whole(spark, rows, stale, path, keys)
        log.info("rewrote %s", path)
        return
    drop = stale.join(rows.select(*keys), keys, "left_anti")
    source = rows.withColumn("_drop", F.lit(False)).unionByName(drop.withColumn("_drop", F.lit(True)), allowMissingColumns=True)
    source.write.mode("overwrite").parquet(f"{staging}/source")
    source = spark.read.parquet(f"{staging}/source")
    condition = _same_keys(keys)
    values: dict[str, str | Column] = {f"`{c}`": f"s.`{c}`" for c in columns}
    committed(path, lambda: (
        DeltaTable.forPath(spark, path).alias("t")
        .merge(source.alias("s"), condition)
        .whenMatchedDelete(condition="s._drop")
        .whenMatchedUpdate(set=values)
        .whenNotMatchedInsert(condition="NOT s._drop", values=values)
        .execute()
    ))
    log.info("replaced rows of %s", path)


def _rewrite_whole(spark: SparkSession, rows: DataFrame, stale: DataFrame, path: str, keys: list[str]) -> None:
    """`replace_rows`' result as one overwrite of the table: its rows whose key is neither
    among `rows`' nor `stale`, and `rows`. The table is read inside the commit's attempt, so
    a retry after a concurrent commit reads it anew."""
    def write() -> None:
        target = read_table(spark, path)
        replaced = rows.select(*keys).unionByName(stale.select(*keys))
        condition = functools.reduce(operator.and_, [target[k].eqNullSafe(replaced[k]) for k in keys])
        kept = target.join(replaced, condition, "left_anti")
        typed = [(rows[c] if c in rows.columns else F.lit(None)).cast(kind).alias(c) for c, kind in target.dtypes]
        kept.unionByName(rows.select(*typed)).write.format("delta").mode("overwrite").save(path)

    committed(path, write)


def _file_count(spark: SparkSession, path: str) -> int:
    """How many data files the Delta table at `path` holds: from its log by delta-rs on this
    machine's disk, else by Spark."""
    if local_folder(path) is not None:
        try:
            return file_count(path)
        except Exception as exc:  # noqa: BLE001 - a protocol feature delta-rs lacks: Spark reads it
            log.debug("delta-rs cannot read the log of %s (%s)", path, type(exc).__name__)
    return int(DeltaTable.forPath(spark, path).detail().select("numFiles").first()[0])


def _latest_commit(path: str) -> tuple[int, str | None] | None:
    """`cdp.reader.latest_commit` for a table on this machine's disk: read from its log in
    milliseconds where Spark's `history(1)` runs a job. None for cluster storage or a log
    delta-rs cannot read (Spark reads it then)."""
    folder = local_folder(path)
    if folder is None:
        return None
    try:
        return latest_commit(str(folder))
    except Exception as exc:  # noqa: BLE001 - a protocol feature delta-rs lacks: Spark reads it
        log.debug("delta-rs cannot read the log of %s (%s)", path, type(exc).__name__)
        return None


@contextmanager
def noting_commits(spark: SparkSession, user_metadata: str) -> Iterator[None]:
    """Every Delta commit of the session inside, merges too, keeps `user_metadata` (see
    `commit_metadata`); for a step's writes while nothing else of the run writes beside them."""
    key = "spark.databricks.delta.commitInfo.userMetadata"
    before = spark.conf.get(key, None)
    spark.conf.set(key, user_metadata)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def table_version(spark: SparkSession, path: str) -> int:
    """The latest Delta version of the table at `path` (-1 when there is no table)."""
    if (latest := _latest_commit(path)) is not None:
        return latest[0]
    if not table_exists(spark, path):
        return -1
    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


def commit_metadata(spark: SparkSession, path: str) -> str | None:
    """The user metadata of the table's latest commit (None when there is no table or none)."""
    if (latest := _latest_commit(path)) is not None:
        return latest[1]
    if not table_exists(spark, path):
        return None
    return DeltaTable.forPath(spark, path).history(1).select("userMetadata").first()[0]


def remove_path(spark: SparkSession, path: str) -> None:
    """Delete a file or folder through Hadoop's FileSystem (local disk or cluster storage)."""
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(hadoop_path, True)  # type: ignore[attr-defined]


def read_or_empty(spark: SparkSession, lake: Lake, table: TableRef, schema: str) -> DataFrame:
    """The table, or an empty frame of `schema` when it has never been written (a feed a
    dealer group does not send, a list not built yet)."""
    path = lake.path(table)
    return read_table(spark, path) if table_exists(spark, path) else spark.createDataFrame([], schema)


def read_feed(spark: SparkSession, lake: Lake, feed: str) -> DataFrame:
    """A silver feed, or an empty one with the contract's columns (all strings) when the
    dealer group has never sent it."""
    schema = ", ".join(f"`{c}` string" for c in ["record_id", *CONTRACTS[feed].columns])
    return read_or_empty(spark, lake, catalog.silver(feed), schema)


def require_tables(spark: SparkSession, lake: Lake, *tables: TableRef) -> None:
    """Raise MissingInputError naming every missing table and the step that writes it."""
    missing = [t for t in tables if not table_exists(spark, lake.path(t))]
    if missing:
        steps = sorted({t.produced_by for t in missing if t.produced_by})
        raise MissingInputError(
            f"missing {', '.join(t.label for t in missing)}: run {' and '.join(f'`cdp run {s}`' for s in steps)} first"
        )


def read_latest(
    spark: SparkSession, lake: Lake, table: TableRef, as_of: dt.date | None = None, column: str = "as_of_date"
) -> tuple[DataFrame, dt.date]:
    """The rows of one as-of partition (default: the latest written) and its date."""
    require_tables(spark, lake, table)
    rows = read_table(spark, lake.path(table))
    if as_of is None:
        as_of = rows.agg(F.max(column)).first()[0]
        if as_of is None:
            raise MissingInputError(f"{table.label} is empty: run `cdp run {table.produced_by}` first")
    chosen = rows.filter(F.col(column) == F.lit(as_of))
    if chosen.limit(1).count() == 0:
        raise MissingInputError(f"no {table.label} as of {as_of}: run `cdp run {table.produced_by} --as-of {as_of}` first")
    return chosen, as_of
