"""Personal data must not sit in Delta's file statistics.

Delta keeps each data file's per-column min/max values in `_delta_log` (commit JSON and
checkpoint Parquet). Those survive erasure and VACUUM, so a column holding personal or
vehicle-identifying data must keep none. Tables written through `cdp.lake` list their
statistics columns explicitly (`stats_columns`); any other table the session creates gets
none at all (`NO_STATS_BY_DEFAULT`). `personal_statistics` reads the logs of a lake without
Spark and names every leak, for tests and audits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cdp.contract import PII_COLUMNS

__all__ = ["NO_STATS_BY_DEFAULT", "is_personal", "personal_statistics", "stats_columns"]

# Session default: a Delta table created without an explicit statistics list keeps none.
NO_STATS_BY_DEFAULT = {"spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols": "0"}
# Standardised copies of names keep the person as much as the raw name does.
_DERIVED_SUFFIXES = ("_simplified", "_pinyin")
# Raw landing copies (bronze, quarantine) hold every field of the source row.
_RAW_COLUMNS = frozenset({"_raw", "_raw_record"})
# Delta collects statistics for these types only.
_STATS_TYPES = ("string", "int", "bigint", "smallint", "tinyint", "double", "float", "decimal", "date", "timestamp")
_MAX_STATS_COLUMNS = 32


def is_personal(column: str, declared: Iterable[str] = ()) -> bool:
    """Whether `column` holds personal or vehicle-identifying data."""
    return column in PII_COLUMNS or column in _RAW_COLUMNS or column in set(declared) or column.endswith(_DERIVED_SUFFIXES)


def stats_columns(dtypes: list[tuple[str, str]], skip: Iterable[str] = ()) -> list[str]:
    """The columns (name, Spark type) that may keep statistics: not personal, not in `skip`
    (extra personal columns, partition columns), of a type Delta collects them for."""
    skipped = set(skip)
    return [n for n, kind in dtypes if n not in skipped and not is_personal(n) and kind.startswith(_STATS_TYPES)][:_MAX_STATS_COLUMNS]


def _stats_of_log(log: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(log file, parsed stats) of every file added in the commits and checkpoints of one table."""
    for commit in sorted(log.glob("*.json")):
        for line in commit.read_text(encoding="utf-8").splitlines():
            action = json.loads(line) if line.strip() else {}
            stats = (action.get("add") or {}).get("stats")
            if stats:
                yield commit.name, json.loads(stats)
    for checkpoint in sorted(log.glob("*.checkpoint*.parquet")):
        import pyarrow.parquet as pq

        table = pq.read_table(checkpoint, columns=["add"])
        for add in table.column("add").to_pylist():
            if add and add.get("stats"):
                yield checkpoint.name, json.loads(add["stats"])


def _paths(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        if isinstance(value, dict):
            yield from _paths(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def personal_statistics(root: str | Path, declared: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """(table folder, log file, column path) of every min/max statistic a personal column
    keeps anywhere under the lake `root`. Empty when the lake is clean."""
    leaks = []
    extra = set(declared)
    for log in sorted(Path(root).rglob("_delta_log")):
        table = str(log.parent.relative_to(root))
        seen = set()
        for source, stats in _stats_of_log(log):
            for kind in ("minValues", "maxValues"):
                for path in _paths(stats.get(kind) or {}):
                    if any(is_personal(part, extra) for part in path.split(".")) and (source, path) not in seen:
                        seen.add((source, path))
                        leaks.append((table, source, path))
    return leaks
