"""The crosswalk's link strength and the review queue on hand-built pairs."""

from __future__ import annotations

import pytest

from cdp.config import ResolutionConfig
from entity_resolution.crosswalk import build_customer_xref, build_review_pairs, label_pairs, strongest_links

pytestmark = pytest.mark.spark

CONFIG = ResolutionConfig(match_threshold=0.95, review_band=(0.8, 0.99))
PAIR = "mention_id_l string, mention_id_r string, match_probability double, match_weight double, origin string"


def _ids(spark, assignment: dict[str, str]):
    return spark.createDataFrame(sorted(assignment.items()), "mention_id string, customer_id string")


def test_review_queue_holds_near_misses_and_weak_joins_only(spark):
    ids = _ids(spark, {"a": "C1", "b": "C1", "c": "C1", "d": "C2", "e": "C3", "f": "C3", "g": "C3", "h": "C4"})
    pairs = spark.createDataFrame(
        [
            ("a", "b", 0.999, 10.0, "model"),  # strong join
            ("b", "c", 0.96, 4.0, "model"),  # c's only link is weak...
            ("a", "c", 0.97, 5.0, "model"),  # ...its strongest is 0.97: one weak_join row for c
            ("c", "d", 0.85, 2.0, "model"),  # near miss C1-C2
            ("a", "d", 0.90, 3.0, "model"),  # stronger near miss of the same two customers
            ("e", "f", 0.995, 9.0, "model"),
            ("f", "g", 0.98, 6.0, "model"),  # g joined weakly, but reviewers decided it
            ("e", "g", 0.97, 5.0, "model"),
            ("g", "h", 0.5, 0.0, "model"),  # below the review band
            ("d", "h", 0.9, 3.0, "override"),  # not a model score
        ],
        PAIR,
    )
    decided = spark.createDataFrame([("f", "g"), ("e", "g")], "mention_id_l string, mention_id_r string")
    rows = {(r.kind, r.mention_id_l, r.mention_id_r, r.match_probability) for r in build_review_pairs(pairs, ids, CONFIG, decided).collect()}
    assert rows == {("weak_join", "a", "c", 0.97), ("near_miss", "a", "d", 0.90)}
    # Pairs labelled once with their customers (down to the review band) give the same queue.
    labelled = label_pairs(pairs, ids, 0.8)
    assert labelled.filter("match_probability < 0.8").count() == 0
    assert {(r.kind, r.mention_id_l, r.mention_id_r, r.match_probability) for r in build_review_pairs(labelled, ids, CONFIG, decided).collect()} == rows
    # Each mention's strongest links, built once for the queue and the crosswalk: the same queue.
    strongest = strongest_links(labelled, ids, 0.95, decided)
    assert {r.mention_id: (r.match_probability, r.reviewable_probability) for r in strongest.collect()} == {
        "a": (0.999, 0.999), "b": (0.999, 0.999), "c": (0.97, 0.97),
        "e": (0.995, 0.995), "f": (0.995, 0.995), "g": (0.98, None),  # g's links were all decided
    }
    shared = build_review_pairs(labelled, ids, CONFIG, decided, strongest)
    assert {(r.kind, r.mention_id_l, r.mention_id_r, r.match_probability) for r in shared.collect()} == rows


def test_crosswalk_keeps_each_mentions_strongest_link_to_its_customer(spark):
    ids = _ids(spark, {"sales_orders:1:buyer": "C1", "service_orders:9:contact": "C1", "leads:4:prospect": "C2"})
    mentions = spark.createDataFrame(
        [("sales_orders:1:buyer", "sales_orders", "1", "buyer"), ("service_orders:9:contact", "service_orders", "9", "contact"), ("leads:4:prospect", "leads", "4", "prospect")],
        "mention_id string, feed string, record_id string, role string",
    )
    pairs = spark.createDataFrame(
        [
            ("sales_orders:1:buyer", "service_orders:9:contact", 0.97, 5.0, "model"),
            ("leads:4:prospect", "sales_orders:1:buyer", 0.96, 4.0, "model"),  # across customers: not a link
        ],
        PAIR,
    )
    xref = {r.mention_id: (r.role, r.customer_id, r.match_probability) for r in build_customer_xref(mentions, ids, pairs, 0.95).collect()}
    labelled = label_pairs(pairs, ids, 0.8)
    assert {r.mention_id: (r.role, r.customer_id, r.match_probability) for r in build_customer_xref(mentions, ids, labelled, 0.95).collect()} == xref
    shared = build_customer_xref(mentions, ids, labelled, 0.95, strongest_links(labelled, ids, 0.95))
    assert {r.mention_id: (r.role, r.customer_id, r.match_probability) for r in shared.collect()} == xref
    assert xref == {
        "sales_orders:1:buyer": ("primary", "C1", 0.97),
        "service_orders:9:contact": ("contact", "C1", 0.97),
        "leads:4:prospect": ("primary", "C2", None),
    }
