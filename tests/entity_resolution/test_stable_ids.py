"""Stable customer IDs: unchanged, grown, merged, split and retired customers."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from entity_resolution.stable_ids import assign_customer_ids

pytestmark = pytest.mark.spark


def _clusters(spark, groups: dict[str, list[str]]):
    return spark.createDataFrame([(m, c) for c, ms in groups.items() for m in ms], "mention_id string, cluster_id string")


def _previous(spark, ids: dict[str, list[str]]):
    return spark.createDataFrame([(m, c) for c, ms in ids.items() for m in ms], "mention_id string, customer_id string")


def _assign(spark, clusters, previous=None, issued=None, materialise=None):
    assigned, events = assign_customer_ids(
        _clusters(spark, clusters),
        _previous(spark, previous) if previous is not None else None,
        spark.createDataFrame([(i,) for i in issued], "customer_id string") if issued else None,
        based_on_version=7,
        materialise=materialise,
    )
    ids = {r.mention_id: r.customer_id for r in assigned.collect()}
    return ids, sorted((r.event, r.customer_id, r.related_customer_id, r.mentions, r.based_on_version) for r in events.collect())


def _new_id(spark, anchor: str) -> str:
    from entity_resolution.stable_ids import build_new_customer_id

    return spark.range(1).select(build_new_customer_id(F.lit(anchor)).alias("id")).first().id


def test_first_run_ids_hash_the_smallest_mention(spark):
    ids, events = _assign(spark, {"x": ["b", "a"], "y": ["c"]})
    assert ids == {"a": _new_id(spark, "a"), "b": _new_id(spark, "a"), "c": _new_id(spark, "c")}
    assert ids["a"].startswith("CU") and len(ids["a"]) == 18
    assert events == []


def test_unchanged_and_grown_customers_keep_their_ids(spark):
    ids, events = _assign(spark, {"k1": ["a", "b", "z"], "k2": ["c"]}, previous={"CU1": ["a", "b"], "CU2": ["c"]})
    assert ids == {"a": "CU1", "b": "CU1", "z": "CU1", "c": "CU2"}
    assert events == []


def test_merge_keeps_the_larger_customers_id_and_records_the_other(spark):
    ids, events = _assign(spark, {"k": ["a", "b", "c"]}, previous={"CU1": ["a"], "CU2": ["b", "c"]})
    assert set(ids.values()) == {"CU2"}
    assert events == [("merged", "CU1", "CU2", 1, 7)]


def test_merge_tie_keeps_the_smaller_id(spark):
    ids, events = _assign(spark, {"k": ["a", "b"]}, previous={"CU9": ["a"], "CU3": ["b"]})
    assert set(ids.values()) == {"CU3"}
    assert events == [("merged", "CU9", "CU3", 1, 7)]


def test_split_keeps_the_id_on_the_larger_part_and_mints_one_for_the_rest(spark):
    ids, events = _assign(spark, {"k1": ["a", "b"], "k2": ["c"]}, previous={"CU1": ["a", "b", "c"]})
    assert ids["a"] == ids["b"] == "CU1"
    assert ids["c"] == _new_id(spark, "c")
    assert events == [("split", _new_id(spark, "c"), "CU1", 1, 7)]


def test_materialised_cells_give_the_same_ids_and_events(spark):
    """A run writes the cells of the two partitions once (a checkpoint); the result is the same."""
    written = []

    def materialise(cells):
        written.append(cells.count())
        return spark.createDataFrame(cells.collect(), cells.schema)

    case = ({"k1": ["a", "b"], "k2": ["c"], "k3": ["d"]}, {"CU1": ["a", "b", "c"], "CU2": ["gone"], "CU3": ["d"]})
    assert _assign(spark, *case, materialise=materialise) == _assign(spark, *case)
    # (k1, CU1), (k2, CU1), (k3, CU3) and (none, CU2): one cell each.
    assert written == [4]


def test_customer_whose_records_are_all_gone_is_retired(spark):
    ids, events = _assign(spark, {"k": ["a"]}, previous={"CU1": ["a"], "CU2": ["gone"]})
    assert ids == {"a": "CU1"}
    assert events == [("retired", "CU2", None, 1, 7)]


def test_a_once_issued_id_is_never_handed_out_again(spark):
    reused = _new_id(spark, "c")
    ids, _ = _assign(spark, {"k1": ["a"], "k2": ["c"]}, previous={"CU1": ["a"]}, issued=[reused])
    assert ids["c"] != reused
    assert ids["c"] == _new_id(spark, "c#7")
