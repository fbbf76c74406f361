"""What the reliability suite compares, read without Spark: a fingerprint of every Delta
table under a lake (rows, distinct rows, an order-free hash of the rows, duplicate keys) with
the columns that legitimately differ between two runs left out (load and build times), and
the Delta version of every table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdp import catalog

__all__ = ["delta_versions", "lake_fingerprint"]

# Differ between two correct runs: when something happened, and GX's result document.
_VOLATILE_SUFFIXES = ("_at",)
_VOLATILE = {"result"}
# Tables of history, not results: the run ledger has a row per run (a killed run and its
# re-run are two runs, with their own ids and durations).
_HISTORY = {catalog.RUNS.label}


def _tables(root: str | Path) -> list[Path]:
    base = Path(str(root).removeprefix("file:"))
    return sorted(p.parent for p in base.rglob("_delta_log") if "_staging" not in p.parts and "_work" not in p.parts)


def _result_tables(root: str | Path) -> list[Path]:
    base = Path(str(root).removeprefix("file:"))
    return [t for t in _tables(root) if str(t.relative_to(base)) not in _HISTORY]


def delta_versions(root: str | Path) -> dict[str, int]:
    """`layer/name` -> latest Delta version, for every table under the lake."""
    from deltalake import DeltaTable

    base = Path(str(root).removeprefix("file:"))
    return {str(t.relative_to(base)): int(DeltaTable(str(t)).version()) for t in _tables(root)}


def lake_fingerprint(root: str | Path) -> dict[str, dict[str, Any]]:
    """`layer/name` -> {rows, hash, duplicate_keys} for every table under the lake but the
    run ledger."""
    import duckdb
    from deltalake import DeltaTable

    base = Path(str(root).removeprefix("file:"))
    out: dict[str, dict[str, Any]] = {}
    con = duckdb.connect()
    try:
        for table in _result_tables(root):
            label = str(table.relative_to(base))
            dataset = DeltaTable(str(table)).to_pyarrow_dataset()
            con.register("t", dataset)
            kept = [f'"{f.name}"' for f in dataset.schema if not f.name.endswith(_VOLATILE_SUFFIXES) and f.name not in _VOLATILE]
            rows, digest = con.execute(
                f"SELECT count(*), coalesce(sum(hash(CAST(row({', '.join(kept)}) AS VARCHAR)) % 1000000007), 0) FROM t"
            ).fetchall()[0]
            ref = catalog.by_label(label) if _known(label) else None
            duplicates = 0
            if ref is not None and ref.keys and all(k in dataset.schema.names for k in ref.keys):
                keys = ", ".join(f'"{k}"' for k in ref.keys)
                duplicates = con.execute(f"SELECT count(*) FROM (SELECT {keys} FROM t GROUP BY {keys} HAVING count(*) > 1)").fetchall()[0][0]
            out[label] = {"rows": int(rows), "hash": int(digest), "duplicate_keys": int(duplicates)}
            con.unregister("t")
    finally:
        con.close()
    return out


def _known(label: str) -> bool:
    try:
        catalog.by_label(label)
    except (KeyError, ValueError):
        return False
    return True
