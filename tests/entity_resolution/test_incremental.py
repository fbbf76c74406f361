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
