"""Delta helpers: idempotent MERGE, replacing a slice of a table, refusal of duplicate source
keys, no statistics on PII."""

from __future__ import annotations

import pytest
from delta.tables import DeltaTable
from pyspark.testing import assertDataFrameEqual

from cdp.lake import (
    DuplicateKeyError,
    append_once,
    commit_metadata,
    insert_new,
    merge_into,
    noting_commits,
    overwrite_table,
    read_table,
    remove_path,
    replace_rows,
    table_version,
)

pytestmark = pytest.mark.spark

SCHEMA = "record_id string, mobile string, amount int"


def test_merge_twice_equals_once_and_updates(spark, tmp_path):
    path = str(tmp_path / "silver" / "t")
    first = spark.createDataFrame([("a", "13800138000", 1), ("b", None, 2)], SCHEMA)
    merge_into(spark, first, path, ["record_id"], no_stats_columns=["mobile"])
    merge_into(spark, first, path, ["record_id"], no_stats_columns=["mobile"])
    assertDataFrameEqual(read_table(spark, path), first)
    merge_into(spark, spark.createDataFrame([("b", None, 3), ("c", None, 4)], SCHEMA), path, ["record_id"])
    expected = spark.createDataFrame([("a", "13800138000", 1), ("b", None, 3), ("c", None, 4)], SCHEMA)
    assertDataFrameEqual(read_table(spark, path), expected)


def test_merge_with_duplicate_source_keys_fails_and_leaves_target(spark, tmp_path):
    path = str(tmp_path / "silver" / "t")
    merge_into(spark, spark.createDataFrame([("a", None, 1)], SCHEMA), path, ["record_id"])
    dupes = spark.createDataFrame([("a", None, 5), ("a", None, 6)], SCHEMA)
    with pytest.raises(DuplicateKeyError, match=rf"^merge into {path}: source has 1 key\(s\) on \(record_id\) with more than one row$"):
        merge_into(spark, dupes, path, ["record_id"])
    assertDataFrameEqual(read_table(spark, path), spark.createDataFrame([("a", None, 1)], SCHEMA))


def test_pii_columns_get_no_delta_statistics(spark, tmp_path):
    path = str(tmp_path / "silver" / "t")
    merge_into(spark, spark.createDataFrame([("a", "13800138000", 1)], SCHEMA), path, ["record_id"], no_stats_columns=["mobile"])
    props = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").collect()}
    assert props["delta.dataSkippingStatsColumns"] == "`record_id`,`amount`"
    log = "".join(p.read_text() for p in (tmp_path / "silver" / "t" / "_delta_log").glob("*.json"))
    assert "13800138000" not in log


@pytest.mark.parametrize(("keys_per_file", "operation"), [(10**9, "MERGE"), (0, "WRITE")])
def test_replace_rows_rewrites_a_slice_in_one_commit_and_twice_equals_once(spark, tmp_path, monkeypatch, keys_per_file, operation):
    """Merged into the table, or the table rewritten whole (many rows for its files): the same rows."""
    monkeypatch.setattr("cdp.lake.WHOLE_TABLE_STALE_KEYS_PER_FILE", keys_per_file)
    path = str(tmp_path / "silver" / "t")
    initial = [("a", None, 1), ("b", None, 2), ("c", None, 3), ("d", None, 4), (None, None, 9)]
    merge_into(spark, spark.createDataFrame(initial, SCHEMA), path, ["record_id"])
    before = DeltaTable.forPath(spark, path).history().count()
    # The slice b, c, e and the null key: b and null change, c is gone, e is new; a and d are outside it and stay.
    rows = spark.createDataFrame([("b", "13800138000", 20), ("e", None, 5), (None, "13800138001", 90)], SCHEMA)
    stale = read_table(spark, path).filter("record_id IN ('b', 'c')")
    expected = spark.createDataFrame(
        [("a", None, 1), ("b", "13800138000", 20), ("d", None, 4), ("e", None, 5), (None, "13800138001", 90)], SCHEMA
    )
    for run in range(2):
        replace_rows(spark, rows, path, ["record_id"], stale, str(tmp_path / "staging"))
        assertDataFrameEqual(read_table(spark, path), expected)
        history = DeltaTable.forPath(spark, path).history()
        assert history.count() == before + run + 1
        assert history.orderBy("version", ascending=False).first()["operation"] == operation
    log = "".join(p.read_text() for p in (tmp_path / "silver" / "t" / "_delta_log").glob("*.json"))
    assert "13800138000" not in log  # the table's choice of statistics columns holds for a rewrite too
    with pytest.raises(DuplicateKeyError):
        replace_rows(spark, rows.union(rows), path, ["record_id"], stale, str(tmp_path / "staging"))


def test_append_once_appends_each_writer_version_once(spark, tmp_path):
    path = str(tmp_path / "gold" / "t")
    overwrite_table(spark, spark.createDataFrame([("a", None, 1)], SCHEMA), path)
    new = spark.createDataFrame([("b", None, 2), ("c", None, 3)], SCHEMA)
    append_once(spark, new, path, "resolution", 7)
    append_once(spark, new, path, "resolution", 7)  # a re-run after a crash: nothing twice
    expected = spark.createDataFrame([("a", None, 1), ("b", None, 2), ("c", None, 3)], SCHEMA)
    assertDataFrameEqual(read_table(spark, path), expected)
    assert table_version(spark, path) == 1
    # Another writer, or the same one at a later version, appends.
    append_once(spark, spark.createDataFrame([("d", None, 4)], SCHEMA), path, "other", 7)
    append_once(spark, spark.createDataFrame([("e", None, 5)], SCHEMA), path, "resolution", 8)
    assert sorted(r.record_id for r in read_table(spark, path).collect()) == ["a", "b", "c", "d", "e"]


def test_insert_new_appends_unless_rows_of_the_batch_are_there(spark, tmp_path):
    """A batch's lines are appended without a merge; after a stop that left some of them in
    the table (a crash before the file register was written), the re-run adds only the rest."""
    from pyspark.sql import functions as F

    path = str(tmp_path / "bronze" / "t")
    schema = "file string, line int, mobile string"

    def insert(rows, batch):
        files = sorted({r[0] for r in rows})
        insert_new(spark, spark.createDataFrame(rows, schema), path, ["file", "line"], probe=F.col("file").isin(*files), writer_id=f"ingest-{batch}",
                   no_stats_columns=["mobile"])

    def operations():
        return [r.operation for r in DeltaTable.forPath(spark, path).history().orderBy("version").collect()]

    insert([("f1", 1, "138"), ("f1", 2, None)], "b1")  # creates the table
    insert([("f2", 1, "139")], "b2")
    insert([("f2", 1, "139")], "b2")  # the same batch again: appended once
    assert operations() == ["WRITE", "WRITE"]
    # f3 arrived; batch b3 (f2 and f3) after a stop that had loaded f2: only f3 is added, by a merge.
    insert([("f2", 1, "139"), ("f3", 1, "137"), ("f3", 2, "136")], "b3")
    assert operations() == ["WRITE", "WRITE", "MERGE"]
    got = sorted((r.file, r.line) for r in read_table(spark, path).collect())
    assert got == [("f1", 1), ("f1", 2), ("f2", 1), ("f3", 1), ("f3", 2)]


def _versions(spark, path):
    return DeltaTable.forPath(spark, path).history().count()


def test_a_replayed_merge_writes_no_new_version(spark, tmp_path):
    path = str(tmp_path / "silver" / "t")
    rows = spark.createDataFrame([("a", "13800138000", 1), ("b", None, 2)], SCHEMA)
    merge_into(spark, rows, path, ["record_id"])
    merge_into(spark, rows, path, ["record_id"], update=False)
    merge_into(spark, rows, path, ["record_id"])
    assert _versions(spark, path) == 1
    merge_into(spark, spark.createDataFrame([("b", None, 2), ("c", None, 4)], SCHEMA), path, ["record_id"])
    assert _versions(spark, path) == 2
    maps = str(tmp_path / "silver" / "m")
    scores = spark.createDataFrame([("a", {"q1": 5, "q2": 3})], "record_id string, item_scores map<string,int>")
    merge_into(spark, scores, maps, ["record_id"])
    merge_into(spark, scores, maps, ["record_id"])
    assert _versions(spark, maps) == 1


def test_a_merge_of_new_keys_only_inserts(spark, tmp_path):
    """Keys the table does not hold: an insert-only merge, with no update clause to compare
    rows for; a batch holding a known key still updates it."""
    path = str(tmp_path / "silver" / "t")
    merge_into(spark, spark.createDataFrame([("a", None, 1)], SCHEMA), path, ["record_id"])
    merge_into(spark, spark.createDataFrame([("b", None, 2), ("c", "13800138000", 3)], SCHEMA), path, ["record_id"])
    merge_into(spark, spark.createDataFrame([("c", None, 4), ("d", None, 5)], SCHEMA), path, ["record_id"])
    merges = DeltaTable.forPath(spark, path).history().filter("operation = 'MERGE'").orderBy("version").collect()
    assert [m.operationParameters["matchedPredicates"] for m in merges] == ["[]", '[{"actionType":"update"}]']
    assert [(m.operationMetrics["numTargetRowsInserted"], m.operationMetrics["numTargetRowsUpdated"]) for m in merges] == [("2", "0"), ("1", "1")]
    assert sorted(tuple(r) for r in read_table(spark, path).collect()) == [("a", None, 1), ("b", None, 2), ("c", None, 4), ("d", None, 5)]


def test_an_evolving_merge_adds_the_columns_the_table_lacks(spark, tmp_path):
    path = str(tmp_path / "ops" / "t")
    merge_into(spark, spark.createDataFrame([("a", None, 1)], SCHEMA), path, ["record_id"])
    wider = f"{SCHEMA}, size long"
    merge_into(spark, spark.createDataFrame([("b", None, 2, 7)], wider), path, ["record_id"], update=False, evolve=True)
    assert sorted(tuple(r) for r in read_table(spark, path).collect()) == [("a", None, 1, None), ("b", None, 2, 7)]
    # Without insert: the rows with the source's keys get its columns, nothing else changes.
    merge_into(spark, spark.createDataFrame([("a", 5), ("z", 6)], "record_id string, weight long"), path, ["record_id"], evolve=True, insert=False)
    assert sorted(tuple(r) for r in read_table(spark, path).collect()) == [("a", None, 1, None, 5), ("b", None, 2, 7, None)]


def test_two_writers_on_one_table_give_the_serial_result(spark, tmp_path):
    """Concurrent merges into one table: Delta lets one commit first, the other retries
    against the new version; the table ends as if they had run one after the other."""
    from concurrent.futures import ThreadPoolExecutor

    path = str(tmp_path / "silver" / "t")
    merge_into(spark, spark.createDataFrame([("a", None, 0)], SCHEMA), path, ["record_id"])
    batches = [spark.createDataFrame([(f"w{w}-{i}", None, i) for i in range(20)] + [("a", None, 0)], SCHEMA) for w in range(2)]
    for _ in range(3):  # a conflict needs the commits to overlap; try a few times
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda b: merge_into(spark, b, path, ["record_id"]), batches))
    rows = read_table(spark, path)
    assert rows.count() == 41 and rows.select("record_id").distinct().count() == 41


def test_a_conflicting_commit_is_retried_then_reported(monkeypatch):
    from delta.exceptions import ConcurrentAppendException

    import cdp.lake
    from cdp.errors import ConcurrentWriteError

    monkeypatch.setattr(cdp.lake.time, "sleep", lambda _s: None)
    calls = []

    def conflicts_twice():
        calls.append(1)
        if len(calls) <= 2:
            raise ConcurrentAppendException(message="Files were added by a concurrent update")

    cdp.lake.committed("/lake/silver/t", conflicts_twice)
    assert len(calls) == 3

    def always():
        raise ConcurrentAppendException(message="Files were added by a concurrent update")

    with pytest.raises(ConcurrentWriteError, match="another writer changed the table 4 times in a row"):
        cdp.lake.committed("/lake/silver/t", always)


def test_side_by_side_runs_writes_at_once_and_raises_the_first_error_after_all_finish():
    import threading

    from cdp.lake import side_by_side

    both = threading.Barrier(2, timeout=10)  # broken (an error) unless the two run at once
    done: list[str] = []

    def meet(name):
        def write():
            both.wait()
            done.append(name)
        return write

    side_by_side(meet("a"), meet("b"))
    assert sorted(done) == ["a", "b"]
    assert side_by_side(lambda: "first", lambda: None, lambda: 3) == ["first", None, 3]  # in the order given

    def fails(message):
        def write():
            raise RuntimeError(message)
        return write

    done.clear()
    with pytest.raises(RuntimeError, match="first"):
        side_by_side(fails("first"), lambda: done.append("ran"), fails("second"))
    assert done == ["ran"]  # the others still ran to the end


def test_latest_version_and_commit_metadata_agree_with_spark(spark, tmp_path):
    """Read from the log on disk without a Spark job; the same figures as Spark's history."""
    path = str(tmp_path / "t")

    def spark_latest() -> tuple[int, str | None]:
        row = DeltaTable.forPath(spark, path).history(1).first()
        return int(row["version"]), row["userMetadata"]

    assert (table_version(spark, path), commit_metadata(spark, path)) == (-1, None)
    (tmp_path / "empty" / "_delta_log").mkdir(parents=True)
    assert table_version(spark, str(tmp_path / "empty")) == -1
    df = spark.createDataFrame([("a", "13800138000", 1)], SCHEMA)
    overwrite_table(spark, df, path, user_metadata='{"consent": 3}')
    assert (table_version(spark, path), commit_metadata(spark, path)) == spark_latest() == (0, '{"consent": 3}')
    merge_into(spark, spark.createDataFrame([("b", None, 2)], SCHEMA), path, ["record_id"])
    assert (table_version(spark, path), commit_metadata(spark, path)) == spark_latest() == (1, None)
    remove_path(spark, path)
    assert (table_version(spark, path), commit_metadata(spark, path)) == (-1, None)



def test_noted_commits_keep_the_metadata_merges_too(spark, tmp_path):
    """Inside `noting_commits` a merge's commit keeps the metadata; after it, the setting is
    as it was and commits keep none."""
    path = str(tmp_path / "t")
    overwrite_table(spark, spark.createDataFrame([("a", "13800138000", 1), ("b", None, 2)], SCHEMA), path)
    with noting_commits(spark, '{"silver_versions": {"leads": 4}}'):
        merge_into(spark, spark.createDataFrame([("b", None, 3), ("c", None, 4)], SCHEMA), path, ["record_id"])
    assert commit_metadata(spark, path) == '{"silver_versions": {"leads": 4}}' == DeltaTable.forPath(spark, path).history(1).first()["userMetadata"]
    assert spark.conf.get("spark.databricks.delta.commitInfo.userMetadata", None) is None
    merge_into(spark, spark.createDataFrame([("d", None, 5)], SCHEMA), path, ["record_id"])
    assert commit_metadata(spark, path) is None
