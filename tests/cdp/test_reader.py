"""The JVM-free read layer: one DuckDB database per process, a connection of its own per query. No JVM."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
from deltalake import write_deltalake

from cdp import catalog
from cdp.reader import LakeReader


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
