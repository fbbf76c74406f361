"""The JVM-free read layer: one DuckDB database per process, a connection of its own per query. No JVM."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
from deltalake import write_deltalake

from cdp import catalog
from cdp.reader import LakeReader, delta_version


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


def test_rows_with_reads_only_the_row_groups_that_hold_the_values(tmp_path, monkeypatch):
    import pyarrow.compute as pc
    import pytest

    reader = LakeReader(str(tmp_path / "lake"))
    ids = [f"m{i:05d}" for i in range(5000)]
    pairs = pa.table({"mention_id_l": ids, "mention_id_r": ids[::-1], "match_probability": [i / 5000 for i in range(5000)]})
    # Sorted by the column, 500 rows a row group: ten groups, each a narrow range of IDs.
    from deltalake import WriterProperties

    write_deltalake(reader.path(catalog.MATCH_PAIRS), pairs, writer_properties=WriterProperties(max_row_group_size=500, write_batch_size=500))
    wanted = ["m00007", "m04999", "m02500", "nobody"]
    read_groups: list[int] = []

    class Fragment:  # records which row groups are read
        def __init__(self, fragment):
            self.fragment = fragment

        def __getattr__(self, name):
            return getattr(self.fragment, name)

        def subset(self, row_group_ids):
            read_groups.extend(row_group_ids)
            return self.fragment.subset(row_group_ids=row_group_ids)

    class Dataset:
        def __init__(self, dataset):
            self.dataset = dataset

        def __getattr__(self, name):
            return getattr(self.dataset, name)

        def get_fragments(self):
            return [Fragment(f) for f in self.dataset.get_fragments()]

    opened = LakeReader.dataset
    monkeypatch.setattr(LakeReader, "dataset", lambda self, table: Dataset(opened(self, table)))
    got = reader.rows_with(catalog.MATCH_PAIRS, "mention_id_l", wanted, ["mention_id_l", "match_probability"], pc.field("match_probability") > 0.1)
    assert sorted(got.column("mention_id_l").to_pylist()) == ["m02500", "m04999"]  # m00007 scores 0.0014
    assert got.column_names == ["mention_id_l", "match_probability"]
    assert sorted(read_groups) == [0, 5, 9]
    assert reader.rows_with(catalog.MATCH_PAIRS, "mention_id_l", ["nobody"]).num_rows == 0
    write_deltalake(reader.path(catalog.REMINDERS), pa.table({"customer_id": ["C1"], "as_of_date": ["2026-01-01"]}), partition_by=["as_of_date"])
    with pytest.raises(ValueError, match="unpartitioned tables only"):
        reader.rows_with(catalog.REMINDERS, "customer_id", ["C1"])


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
