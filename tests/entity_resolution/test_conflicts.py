"""Mentions that cannot be one person: different valid IDs, names that cannot be one name."""

from __future__ import annotations

import pytest

from entity_resolution.conflicts import conflicting_pairs
from entity_resolution.mentions import with_name_parts
from entity_resolution.overrides import keep_apart
from entity_resolution.standardise.names import standardise_name

pytestmark = pytest.mark.spark

_SCHEMA = "mention_id string, name_simplified string, name_pinyin string, customer_type string, id_number string"


def _mentions(spark, rows):
    """rows: (mention_id, raw name, customer_type, id_number) -> mentions as resolution sees them."""
    data = [(m, *standardise_name(name), kind, id_number) for m, name, kind, id_number in rows]
    return spark.createDataFrame(data, _SCHEMA).transform(with_name_parts)


def _conflicts(spark, rows, cluster_of=lambda mention_id: "k"):
    mentions = _mentions(spark, rows)
    clusters = spark.createDataFrame([(r[0], cluster_of(r[0])) for r in rows], "mention_id string, cluster_id string")
    return {(r.mention_id_l, r.mention_id_r) for r in conflicting_pairs(mentions, clusters).collect()}


CASES = [
    ("王伟", "李娜", True),  # a couple: nothing in common
    ("王志强", "王丽华", True),  # one surname, two-character given names with no syllable in common
    ("王伟", "王强", True),  # a father and son: the given names share no sound
    ("王强", "王志强", False),  # a character left out
    ("王伟", "王玮", False),  # homophone
    ("王偉", "王伟", False),  # traditional form
    ("王伟", "WANG WEI", False),  # romanised: not compared
    ("高秀强先生", "高秀强", False),  # the form of address goes first
    ("高秀强先生", "李娜女士", True),
    ("王先生", "李娜", False),  # a surname alone is no full name
    ("王志强", "王志刚", False),  # one given syllable shared
]


def test_names_that_cannot_be_one_name(spark):
    """Each case in a cluster of its own: only pairs inside one cluster are compared."""
    rows = [row for i, (left, right, _) in enumerate(CASES) for row in ((f"{i}:a", left, None, None), (f"{i}:b", right, None, None))]
    got = _conflicts(spark, rows, cluster_of=lambda mention_id: mention_id.split(":")[0])
    assert got == {(f"{i}:a", f"{i}:b") for i, (*_, conflict) in enumerate(CASES) if conflict}


def test_companies_are_not_compared_by_name_and_different_valid_ids_conflict(spark):
    rows = [
        ("a", "广州华南贸易有限公司", "company", None),
        ("b", "深圳东方物流有限公司", "company", None),
        ("c", "王伟", None, "110101199003074514"),
        ("d", "王伟", None, "110101199003074514"),
        ("e", "王伟", None, "44030419851212301X"),
    ]
    assert _conflicts(spark, rows) == {("c", "e"), ("d", "e")}


def test_a_couple_chained_by_a_shared_phone_and_car_is_split_at_the_names(spark, tmp_path):
    # 王伟 (h1, h2) and 李娜 (w1) are linked by their shared phone and car; a record with the
    # phone and no name (n) links to both. The couple ends in two customers; the nameless record
    # stays with the stronger side; another cluster is left as it was.
    mentions = _mentions(
        spark,
        [("h1", "王伟", None, None), ("h2", "王偉", None, None), ("w1", "李娜", None, None), ("n", None, None, None), ("x", "张三丰", None, None)],
    )
    clusters = spark.createDataFrame([(m, "k") for m in ("h1", "h2", "w1", "n")] + [("x", "other")], "mention_id string, cluster_id string")
    edges = spark.createDataFrame(
        [("h1", "h2", 0.9999), ("h1", "w1", 0.999), ("h1", "n", 0.998), ("n", "w1", 0.97)],
        "mention_id_l string, mention_id_r string, match_probability double",
    )
    out = keep_apart(spark, clusters, edges, conflicting_pairs(mentions, clusters), 0.95, str(tmp_path))
    got = {r.mention_id: r.cluster_id for r in out.collect()}
    assert got["h1"] == got["h2"] == got["n"] != got["w1"]
    assert got["x"] == "other"
