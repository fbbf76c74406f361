"""Bookkeeping rows merged with delta-rs on the local disk: no JVM."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from cdp.delta_stats import personal_statistics
from cdp.lake import DuplicateKeyError
from cdp.records import arrow_schema, merge_records

DDL = "run_id string, step string, started_at timestamp, mobile string, rows bigint, counts map<string,bigint>"


def _row(step: str, rows: int, counts: dict[str, int] | None = None) -> tuple:
    return ("r1", step, dt.datetime(2026, 7, 1, 8, 0), "13800138000", rows, list((counts or {"a": 1}).items()))


def _rows(path) -> list[dict]:
    return sorted(DeltaTable(str(path)).to_pyarrow_table().to_pylist(), key=lambda r: r["step"])


def test_arrow_schema_reads_nested_ddl():
    schema = arrow_schema("a string, `b` map<string,bigint>, c array<int>, d timestamp, e date")
    assert schema.field("b").type == pa.map_(pa.string(), pa.int64())
    assert schema.field("c").type == pa.list_(pa.int32())
    assert schema.field("d").type == pa.timestamp("us", tz="UTC")
    with pytest.raises(ValueError, match="decimal"):
        arrow_schema("x decimal(10,2)")


def test_merge_creates_inserts_updates_and_replays_without_a_commit(tmp_path):
    path = tmp_path / "runs"
    merge_records(None, str(path), [_row("ingest", 1)], DDL, ["run_id", "step"])
    assert DeltaTable(str(path)).version() == 0
    merge_records(None, str(path), [_row("ingest", 2), _row("resolve", 5)], DDL, ["run_id", "step"])
    assert [(r["step"], r["rows"]) for r in _rows(path)] == [("ingest", 2), ("resolve", 5)]
    version = DeltaTable(str(path)).version()
    merge_records(None, str(path), [_row("ingest", 2), _row("resolve", 5)], DDL, ["run_id", "step"])
    assert DeltaTable(str(path)).version() == version  # a replay commits nothing
    merge_records(None, str(path), [_row("resolve", 5, {"a": 2})], DDL, ["run_id", "step"])
    assert dict(_rows(path)[1]["counts"]) == {"a": 2}  # a changed map alone is a change


def test_insert_only_keeps_the_first_record(tmp_path):
    path = tmp_path / "files"
    merge_records(None, str(path), [_row("ingest", 1)], DDL, ["run_id", "step"], update=False)
    merge_records(None, str(path), [_row("ingest", 9)], DDL, ["run_id", "step"], update=False)
    assert [r["rows"] for r in _rows(path)] == [1]
    assert DeltaTable(str(path)).version() == 0


def test_timestamps_are_instants_spark_reads_as_its_own(tmp_path):
    path = tmp_path / "runs"
    merge_records(None, str(path), [_row("ingest", 1)], DDL, ["run_id", "step"])
    schema = json.loads(DeltaTable(str(path)).schema().to_json())
    kinds = {f["name"]: f["type"] for f in schema["fields"]}
    assert kinds["started_at"] == "timestamp"  # not timestamp_ntz, which needs a table feature
    assert _rows(path)[0]["started_at"] == dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)


def test_no_statistics_for_personal_columns(tmp_path):
    path = tmp_path / "audit"
    merge_records(None, str(path), [_row("ingest", 1)], DDL, ["run_id", "step"])
    assert personal_statistics(tmp_path) == []
    stats = DeltaTable(str(path)).metadata().configuration["delta.dataSkippingStatsColumns"]
    assert "`rows`" in stats and "mobile" not in stats


def test_a_repeated_key_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "runs"
    with pytest.raises(DuplicateKeyError, match="run_id, step"):
        merge_records(None, str(path), [_row("ingest", 1), _row("ingest", 2)], DDL, ["run_id", "step"])
    assert not DeltaTable.is_deltatable(str(path))


def test_cluster_storage_needs_a_spark_session():
    with pytest.raises(ValueError, match="through Spark"):
        merge_records(None, "s3a://bucket/lake/_ops/runs", [_row("ingest", 1)], DDL, ["run_id", "step"])


def test_a_lost_race_is_retried_against_the_new_version(tmp_path, monkeypatch):
    from deltalake.exceptions import CommitFailedError

    import cdp.lake
    import cdp.records

    monkeypatch.setattr(cdp.lake.time, "sleep", lambda _s: None)
    real, calls = cdp.records._merge_local, []

    def loses_twice(*args):
        calls.append(1)
        if len(calls) <= 2:
            raise CommitFailedError("another writer committed version 1 first")
        return real(*args)

    monkeypatch.setattr(cdp.records, "_merge_local", loses_twice)
    merge_records(None, str(tmp_path / "runs"), [_row("ingest", 1)], DDL, ["run_id", "step"])
    assert len(calls) == 3 and [r["rows"] for r in _rows(tmp_path / "runs")] == [1]


def test_evolve_adds_the_columns_a_table_of_an_earlier_release_lacks(tmp_path):
    path = tmp_path / "files"
    old = "run_id string, step string, rows bigint"
    merge_records(None, str(path), [("r1", "ingest", 1)], old, ["run_id", "step"], update=False)
    # Without `evolve`, delta-rs leaves the new column out.
    merge_records(None, str(path), [("r2", "ingest", 2, 7)], f"{old}, size bigint", ["run_id", "step"], update=False)
    assert "size" not in DeltaTable(str(path)).schema().to_arrow().names
    merge_records(None, str(path), [("r3", "ingest", 3, 9)], f"{old}, size bigint", ["run_id", "step"], update=False, evolve=True)
    rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    assert sorted((r["run_id"], r["size"]) for r in rows) == [("r1", None), ("r2", None), ("r3", 9)]


def test_without_insert_matched_rows_get_the_given_columns_alone(tmp_path):
    """An earlier release's rows given a new column: the rows with the records' keys get it,
    their other columns stay, no row is added, and a replay commits nothing."""
    path = tmp_path / "files"
    merge_records(None, str(path), [("r1", "ingest", 1), ("r2", "ingest", 2)], "run_id string, step string, rows bigint", ["run_id", "step"])
    extra = "run_id string, step string, size bigint"
    merge_records(None, str(path), [("r1", "ingest", 7), ("r9", "ingest", 9)], extra, ["run_id", "step"], evolve=True, insert=False)
    rows = sorted((r["run_id"], r["rows"], r["size"]) for r in DeltaTable(str(path)).to_pyarrow_table().to_pylist())
    assert rows == [("r1", 1, 7), ("r2", 2, None)]
    version = DeltaTable(str(path)).version()
    merge_records(None, str(path), [("r1", "ingest", 7)], extra, ["run_id", "step"], evolve=True, insert=False)
    assert DeltaTable(str(path)).version() == version
    merge_records(None, str(tmp_path / "none"), [("r1", "ingest", 7)], extra, ["run_id", "step"], insert=False)
    assert not (tmp_path / "none").exists()
