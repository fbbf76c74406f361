"""The JVM-free read layer: one DuckDB database per process, a connection of its own per query. No JVM."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import duckdb
import pyarrow as pa
from deltalake import write_deltalake

from cdp import catalog
from cdp.reader import LakeReader, delta_version, text_table


def test_queries_from_many_threads_each_see_their_own_tables(tmp_path):
    reader = LakeReader(str(tmp_path / "lake"))
    write_deltalake(reader.path(catalog.CUSTOMERS), pa.table({"customer_id": [f"C{i:03d}" for i in range(50)]}))
    write_deltalake(reader.path(catalog.REMINDERS), pa.table({"customer_id": ["C001", "C002"], "kind": ["birthday", "service"]}))

    def ask(i: int) -> tuple[int, int]:
        # The same view name bound to a different table in each query: no query sees another's.
        table = catalog.CUSTOMERS if i % 2 else catalog.REMINDERS
        return i, reader.scalar("SELECT count(*) FROM t", {"t": table})

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = dict(pool.map(ask, range(200)))
    assert answers == {i: 50 if i % 2 else 2 for i in range(200)}
    assert reader.query("SELECT kind FROM r ORDER BY kind", {"r": catalog.REMINDERS}) == [{"kind": "birthday"}, {"kind": "service"}]


def test_views_a_query_creates_stay_in_its_connection(tmp_path):
    """Code that builds on a connection (the audience preview's views) may reuse a name on the
    next one: temporary views live and die with their connection."""
    reader = LakeReader(str(tmp_path / "lake"))
    write_deltalake(reader.path(catalog.CUSTOMERS), pa.table({"customer_id": ["C001", "C002", "C003"]}))
    for limit in (1, 2, 3):
        with reader.connect({"_c": catalog.CUSTOMERS}) as con:
            con.execute(f"CREATE TEMP VIEW customers AS SELECT * FROM _c ORDER BY customer_id LIMIT {limit}")
            assert con.execute("SELECT count(*) FROM customers").fetchone()[0] == limit


def test_rows_with_reads_the_current_files_for_the_values_and_condition(tmp_path):
    import pytest
    from deltalake import WriterProperties

    reader = LakeReader(str(tmp_path / "lake"))
    ids = [f"m{i:05d}" for i in range(5000)]
    pairs = pa.table({"mention_id_l": ids, "mention_id_r": ids[::-1], "match_probability": [i / 5000 for i in range(5000)]})
    # Sorted by the column, 500 rows a row group: ten groups, each a narrow range of IDs.
    write_deltalake(reader.path(catalog.MATCH_PAIRS), pairs, writer_properties=WriterProperties(max_row_group_size=500, write_batch_size=500))
    wanted = ["m00007", "m04999", "m02500", "it's nobody"]
    got = reader.rows_with(catalog.MATCH_PAIRS, "mention_id_l", wanted, ["mention_id_l", "match_probability"], "match_probability > ?", (0.1,))
    assert sorted(got.column("mention_id_l").to_pylist()) == ["m02500", "m04999"]  # m00007 scores 0.0014
    assert got.schema == pairs.select(["mention_id_l", "match_probability"]).schema
    assert reader.rows_with(catalog.MATCH_PAIRS, "mention_id_l", ["nobody"]).num_rows == 0
    assert reader.rows_with(catalog.MATCH_PAIRS, "mention_id_l", []).column_names == pairs.column_names
    # A new version replaces the files: only its rows are read, not the removed files' rows.
    write_deltalake(reader.path(catalog.MATCH_PAIRS), pairs.slice(0, 10), mode="overwrite")
    assert reader.rows_with(catalog.MATCH_PAIRS, "mention_id_l", ["m00007", "m02500"]).column("mention_id_l").to_pylist() == ["m00007"]
    write_deltalake(reader.path(catalog.REMINDERS), pa.table({"customer_id": ["C1"], "as_of_date": ["2026-01-01"]}), partition_by=["as_of_date"])
    with pytest.raises(ValueError, match="unpartitioned tables only"):
        reader.rows_with(catalog.REMINDERS, "customer_id", ["C1"])


def test_connect_from_files_reads_local_tables_with_duckdb_and_the_rest_as_datasets(tmp_path):
    reader = LakeReader(str(tmp_path / "lake"))
    write_deltalake(reader.path(catalog.CUSTOMERS), pa.table({"customer_id": ["C1", "C2"]}))
    write_deltalake(reader.path(catalog.CUSTOMERS), pa.table({"customer_id": ["C3"]}), mode="append")
    write_deltalake(reader.path(catalog.REMINDERS), pa.table({"customer_id": ["C1"], "as_of_date": ["2026-01-01"]}), partition_by=["as_of_date"])
    with reader.connect({"c": catalog.CUSTOMERS, "r": catalog.REMINDERS}, from_files=True) as con:
        assert con.execute("SELECT temporary, sql LIKE '%read_parquet%' FROM duckdb_views() WHERE view_name = 'c'").fetchone() == (True, True)
        assert con.execute("SELECT count(*) FROM c").fetchone()[0] == 3
        assert con.execute("SELECT customer_id, as_of_date FROM r").fetchall() == [("C1", "2026-01-01")]
    with reader.connect({}) as other:  # another connection does not see this one's views
        assert other.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = 'c'").fetchone()[0] == 0


def test_a_table_removed_or_written_anew_is_not_read_from_the_open_copy(tmp_path):
    """The process keeps tables open between reads; one removed since reads as missing, and
    one written anew from version 0 at its own versions, not the old copy's."""
    path = str(tmp_path / "gold" / "t")
    rows = pa.table({"k": [1]})
    for _ in range(3):
        write_deltalake(path, rows, mode="append")
    assert delta_version(path) == 2
    reader = LakeReader(str(tmp_path))
    table = catalog.TableRef("gold", "t")
    assert reader.dataset(table).count_rows() == 3
    shutil.rmtree(path)
    assert delta_version(path) == -1
    write_deltalake(path, rows, mode="append")
    assert delta_version(path) == 0
    shutil.rmtree(path)
    for _ in range(4):
        write_deltalake(path, pa.table({"k": [1, 2]}), mode="append")
    assert delta_version(path) == 3
    assert reader.dataset(table).count_rows() == 8


def test_text_table_holds_the_rows_given_and_replaces_an_earlier_one():
    con = duckdb.connect()
    text_table(con, "pairs", ("a", "b"), [("m1", "m2"), ("m3", None), ("王伟", "m'4")])
    assert con.execute("SELECT a, b FROM pairs ORDER BY a").fetchall() == [("m1", "m2"), ("m3", None), ("王伟", "m'4")]
    assert [t for _, t, *_ in con.execute("DESCRIBE pairs").fetchall()] == ["VARCHAR", "VARCHAR"]
    text_table(con, "pairs", ("a", "b"), [])
    assert con.execute("SELECT count(*) FROM pairs").fetchone() == (0,)
    assert [t for _, t, *_ in con.execute("DESCRIBE pairs").fetchall()] == ["VARCHAR", "VARCHAR"]
