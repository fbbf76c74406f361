"""Which mentions an incremental run clusters again (`incremental_scope`), in Spark and on
each engine."""

from __future__ import annotations

import pytest

from cdp.lake import overwrite_table
from entity_resolution.duckdb_engine import DuckDBEngine
from entity_resolution.engines import LinkageEngine
from entity_resolution.incremental import incremental_scope
from entity_resolution.overrides import Decision, Overrides


def _m(name: str) -> str:
    return f"service_orders:{name}:owner"


@pytest.mark.parametrize("where", ["spark", "spark engine", "duckdb engine"])
def test_scope_holds_what_can_change_and_nothing_else(spark, tmp_path, where):
    # Customer (its mentions: vin, the record it refers to); None: gone since the last run.
    before = {
        "A": {"a1": ("V1", None), "a2": (None, None)},  # a new record links to a1
        "B": {"b1": ("V1", None)},  # holds a car of A's: a record of A's that names nobody may be B's
        "C": {"c1": ("V2", None)},  # owns the car of a new record that names nobody
        "D": {"d1": (None, None)},  # named by a new record
        "E": {"e1": (None, None), "e2": (None, None)},  # a reviewer's cannot-link since
        "F": {"f1": (None, None)},  # a new pair below the threshold only
        "G": {"g1": (None, None), "g2": (None, None)},  # g1 corrected in its source
        "H": {"h1": None, "h2": (None, None)},  # h1 erased
        "K": {"k1": ("V3", None), "k2": (None, None)},  # untouched
    }
    new = {"n1": (None, None), "n2": ("V2", None), "n3": (None, _m("d1"))}
    rows = [(_m(m), v[0], v[1]) for members in before.values() for m, v in members.items() if v is not None]
    rows += [(_m(m), vin, ref) for m, (vin, ref) in new.items()]
    mentions = spark.createDataFrame(rows, "mention_id string, vin string, refers_to string")
    previous = spark.createDataFrame([(_m(m), c) for c, members in before.items() for m in members], "mention_id string, customer_id string")
    fresh = spark.createDataFrame([(_m(m),) for m in ["n1", "n2", "n3", "g1", "h1"]], "mention_id string")
    new_pairs = spark.createDataFrame(
        [(_m("a1"), _m("n1"), 0.99), (_m("f1"), _m("n1"), 0.40)], "mention_id_l string, mention_id_r string, match_probability double"
    )
    overrides = Overrides(cannot_link=[Decision(left=_m("e1"), right=_m("e2"))])

    if where == "spark":
        found = incremental_scope(mentions, previous, fresh, new_pairs, overrides, 0.9)
    else:
        mentions_table, xref_table = str(tmp_path / "person_mentions"), str(tmp_path / "customer_xref")
        overwrite_table(spark, mentions, mentions_table)
        overwrite_table(spark, previous, xref_table)
        engine = DuckDBEngine(spark, str(tmp_path / "work"), "1GB")
        engine.close()  # the scope is found on a connection of its own
        scope_of = LinkageEngine.scope if where == "spark engine" else DuckDBEngine.scope
        found = scope_of(engine, mentions_table, xref_table, 0, fresh, new_pairs, overrides, 0.9, str(tmp_path / "scope"))
    scope = {r.mention_id for r in found.collect()}
    assert found.count() == len(scope)

    expected = {"a1", "a2", "b1", "c1", "d1", "e1", "e2", "g1", "g2", "h1", "h2", "n1", "n2", "n3"}
    assert scope == {_m(m) for m in expected}


def test_mentions_are_built_again_only_from_silver_rows_written_since(spark, resolved, tmp_path, caplog):
    """After a build, an incremental run builds mentions only from the silver files written
    since (the table's commit names the versions it was built from): a record whose mention
    changed, a new record, but not a record changed elsewhere whose file was rewritten. The
    table then holds what a build from all of silver gives. A record gone from silver is
    noticed by the count, and every mention compared."""
    import logging

    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from cdp import catalog
    from cdp.lake import Lake, merge_into, read_table, table_version
    from cdp.table_log import table_files
    from entity_resolution.incremental import build_mentions
    from entity_resolution.mentions import build_person_mentions
    from entity_resolution.work import ResolutionTables
    from tests.conftest import copy_resolved

    config = copy_resolved(resolved, tmp_path)
    lake = Lake(config.lake.root)
    tables = ResolutionTables(lake)
    silver_path = lake.path(catalog.silver("service_orders"))
    silver = read_table(spark, silver_path)
    files_before = table_files(spark, silver_path, table_version(spark, silver_path))
    first, second, third = [r.record_id for r in silver.orderBy("record_id").limit(3).collect()]
    merge_into(spark, silver.filter(F.col("record_id").isin(first, second, third)).withColumns({
        "dealer_code": F.when(F.col("record_id") == first, F.lit("ZZ-MOVED")).otherwise(F.col("dealer_code")),
        "labour_amount": F.when(F.col("record_id") == second, F.col("labour_amount") + 1).otherwise(F.col("labour_amount")),
        "ro_id": F.when(F.col("record_id") == third, F.lit("RO-NEW-1")).otherwise(F.col("ro_id")),
        "record_id": F.when(F.col("record_id") == third, F.lit("RO-NEW-1")).otherwise(F.col("record_id")),
    }).localCheckpoint(), silver_path, ["record_id"])
    # The merge rewrote the files holding the three records (one, or more when they are spread).
    files_now = table_files(spark, silver_path, table_version(spark, silver_path))
    written = len(files_now - files_before)

    def rebuilt_and_compared(based_on):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="entity_resolution.incremental"):
            mentions, changed = build_mentions(spark, lake, tables, True, based_on)
        feeds = {s: read_table(spark, lake.path(catalog.silver(s))) for s in ("sales_orders", "leads", "service_orders", "warranty_claims", "complaints", "surveys")}
        expected = build_person_mentions(feeds)
        assert mentions.count() == expected.count()
        assert mentions.exceptAll(expected.select(*mentions.columns)).count() == 0
        return {r.mention_id for r in changed.collect()}, caplog.text

    based_on = table_version(spark, tables.xref)
    changed, logged = rebuilt_and_compared(based_on)
    assert changed == {f"service_orders:{r}:{role}" for r in (first, "RO-NEW-1") for role in ("owner", "contact")}
    assert f"service_orders: {written} file(s) written since version" in logged and "every mention compared" not in logged

    # Nothing written since: nothing built, nothing committed.
    version = table_version(spark, tables.mentions)
    changed, logged = rebuilt_and_compared(based_on + 1)
    assert changed == set() and table_version(spark, tables.mentions) == version and "file(s) written since" not in logged

    DeltaTable.forPath(spark, silver_path).delete(F.col("record_id") == second)
    changed, logged = rebuilt_and_compared(based_on + 2)
    assert changed == {f"service_orders:{second}:{role}" for role in ("owner", "contact")}
    assert "silver lost records since the last build: every mention compared" in logged
