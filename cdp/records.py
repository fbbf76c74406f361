"""Bookkeeping rows (a step in the run ledger, a list version, files loaded, an audit
record): a handful of rows merged into a small table by key.

On the local disk they are merged with delta-rs, which commits in milliseconds; a Spark
MERGE of one row costs seconds of jobs (key check, change check, merge). On cluster storage
they go through `cdp.lake.merge_into` like every other write. Either way: created when
missing, one commit, no commit at all when nothing changes, statistics only for columns
that are not personal, and `cdp.lake.committed`'s retry when another writer committed first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from cdp.delta_stats import stats_columns
from cdp.lake import DuplicateKeyError, committed, local_folder, merge_into

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["arrow_schema", "merge_records"]

log = logging.getLogger(__name__)

_SCALARS: dict[str, pa.DataType] = {
    "string": pa.string(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "long": pa.int64(),
    "double": pa.float64(),
    "date": pa.date32(),
    # Spark's TIMESTAMP is an instant; naive values are UTC, as the sessions' time zone is.
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def _split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"<": 1, "(": 1, ">": -1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _arrow_type(kind: str) -> pa.DataType:
    kind = kind.strip().lower()
    if kind.startswith("map<") and kind.endswith(">"):
        key, value = _split_top_level(kind[4:-1])
        return pa.map_(_arrow_type(key), _arrow_type(value))
    if kind.startswith("array<") and kind.endswith(">"):
        return pa.list_(_arrow_type(kind[6:-1]))
    if kind not in _SCALARS:
        raise ValueError(f"no Arrow type for the Spark type {kind!r}")
    return _SCALARS[kind]


def _columns(ddl: str) -> list[tuple[str, str]]:
    """(name, Spark type) of a DDL schema string such as "a string, b map<string,bigint>"."""
    return [(name.strip("`"), kind) for name, kind in (field.split(None, 1) for field in _split_top_level(ddl))]


def arrow_schema(ddl: str) -> pa.Schema:
    """The Arrow schema of a Spark DDL schema string (the types bookkeeping tables use)."""
    return pa.schema([(name, _arrow_type(kind)) for name, kind in _columns(ddl)])


def merge_records(
    spark: SparkSession | None,
    path: str,
    records: Sequence[tuple[Any, ...]],
    ddl: str,
    keys: Sequence[str],
    *,
    update: bool = True,
    no_stats_columns: Sequence[str] = (),
    evolve: bool = False,
    insert: bool = True,
) -> None:
    """Upsert `records` (tuples in the order of `ddl`) into the Delta table at `path` on `keys`,
    as `cdp.lake.merge_into` does: insert new keys; with `update`, rewrite rows whose values
    changed; never a second row for a key; a replay commits nothing. With `evolve`, columns of
    `ddl` a table made by an earlier release lacks are added to it (its rows hold null there).
    Without `insert`, rows of the table with the records' keys get the records' other columns
    (`ddl` may name only some of the table's) and nothing is inserted."""
    if not records:
        return
    names = [name for name, _ in _columns(ddl)]
    keyed = [tuple(r[names.index(k)] for k in keys) for r in records]
    if len(set(keyed)) != len(keyed):
        raise DuplicateKeyError(f"merge into {path}: source has {len(keyed) - len(set(keyed))} repeated key(s) on ({', '.join(keys)})")
    folder = local_folder(path)
    if folder is None:
        if spark is None:
            raise ValueError(f"{path}: a table on cluster storage is written through Spark")
        merge_into(
            spark, spark.createDataFrame(list(records), ddl), path, list(keys), update=update, no_stats_columns=list(no_stats_columns),
            evolve=evolve, insert=insert,
        )
        return
    schema = arrow_schema(ddl)
    source = pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in records], schema=schema)
    stats = stats_columns(_columns(ddl), no_stats_columns)
    committed(path, lambda: _merge_local(str(folder), source, schema, keys, update, stats, evolve, insert), conflicts=(CommitFailedError,))


def _merge_local(
    folder: str, source: pa.Table, schema: pa.Schema, keys: Sequence[str], update: bool, stats: list[str], evolve: bool, insert: bool
) -> None:
    if not insert:
        if DeltaTable.is_deltatable(folder):
            _update_local(folder, source, schema, keys, evolve)
        return
    if not DeltaTable.is_deltatable(folder):
        configuration = {"delta.dataSkippingStatsColumns": ",".join(f"`{c}`" for c in stats)} if stats else {
            "delta.dataSkippingNumIndexedCols": "0"
        }
        try:
            write_deltalake(folder, source, mode="error", configuration=configuration)
            log.info("created %s", folder)
            return
        except DeltaError:
            if not DeltaTable.is_deltatable(folder):
                raise
            log.warning("%s: created by a concurrent writer; merging into it", folder)
    merge = DeltaTable(folder).merge(source, _on(keys), source_alias="s", target_alias="t", merge_schema=evolve)
    if update:
        values = [n for n in schema.names if n not in keys]
        merge = merge.when_matched_update_all(predicate=_changed(values) or None)
    metrics = merge.when_not_matched_insert_all().execute()
    _log_merge(folder, metrics)


def _update_local(folder: str, source: pa.Table, schema: pa.Schema, keys: Sequence[str], evolve: bool) -> None:
    table = DeltaTable(folder)
    held = set(table.schema().to_arrow().names)
    values = [n for n in schema.names if n not in keys]
    merge = table.merge(source, _on(keys), source_alias="s", target_alias="t", merge_schema=evolve)
    _log_merge(folder, merge.when_matched_update(updates={n: f's."{n}"' for n in values}, predicate=_changed(values, held)).execute())


def _on(keys: Sequence[str]) -> str:
    return " AND ".join(f"t.\"{k}\" = s.\"{k}\"" for k in keys)


def _changed(values: Sequence[str], held: set[str] | None = None) -> str:
    """A target row differs from its source row in one of `values` (always, in a column
    the target lacks: it is about to gain it)."""
    return " OR ".join(f"(t.\"{n}\" IS DISTINCT FROM s.\"{n}\")" if held is None or n in held else "true" for n in values)


def _log_merge(folder: str, metrics: dict[str, Any]) -> None:
    if metrics.get("num_target_rows_inserted") or metrics.get("num_target_rows_updated"):
        log.info("merged into %s", folder)
    else:
        log.info("%s already holds every row: nothing to merge", folder)
