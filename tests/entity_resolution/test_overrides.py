"""Reviewers' must-link / cannot-link decisions."""

from __future__ import annotations

import random

import pytest

from cdp.config import ConfigError
from entity_resolution.overrides import (
    Decision,
    Overrides,
    enforce_cannot_link,
    greedy_components,
    keep_apart,
    load_overrides,
    with_overrides,
)

A, B, C, D = "sales_orders:S1:buyer", "complaints:C1:caller", "surveys:V1:respondent", "leads:L1:prospect"
E = "service_orders:R1:owner"


def test_missing_file_means_no_decisions(tmp_path):
    assert load_overrides(tmp_path / "none.yaml").is_empty()


def test_decisions_load(tmp_path):
    path = tmp_path / "o.yaml"
    path.write_text(f"must_link:\n  - {{left: '{A}', right: '{B}', note: same person - checked by phone}}\ncannot_link:\n  - {{left: '{C}', right: '{D}'}}\n")
    overrides = load_overrides(path)
    assert overrides.must_link[0].pair == (B, A)
    assert overrides.cannot_link[0].pair == (D, C)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"must_link:\n  - {{left: '{A}', right: '{A}'}}\n", "must_link.0: Value error, left and right must be different mentions"),
        ("cannot_link:\n  - {left: 'not a mention', right: 'x:y:z'}\n", "cannot_link.0.left: String should match pattern"),
        (f"must_link:\n  - {{left: '{A}', rigth: '{B}'}}\n", "must_link.0.rigth: Extra inputs are not permitted"),
        (
            f"must_link:\n  - {{left: '{A}', right: '{B}'}}\ncannot_link:\n  - {{left: '{B}', right: '{A}'}}\n",
            "pairs in both must_link and cannot_link",
        ),
    ],
)
def test_bad_decisions_name_the_file_and_entry(tmp_path, text, message):
    path = tmp_path / "o.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_overrides(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def _decisions(must=(), cannot=()):
    return Overrides(
        must_link=[Decision(left=a, right=b) for a, b in must], cannot_link=[Decision(left=a, right=b) for a, b in cannot]
    )


@pytest.mark.spark
def test_pairs_lose_cannot_links_and_gain_must_links(spark):
    pairs = spark.createDataFrame([(B, A, 0.99, 7.0), (D, C, 0.97, 5.0)], "mention_id_l string, mention_id_r string, match_probability double, match_weight double")
    mentions = spark.createDataFrame([(m,) for m in (A, B, C, D)], "mention_id string")
    out = with_overrides(spark, pairs, _decisions(must=[(A, C)], cannot=[(C, D)]), mentions)
    rows = sorted((r.mention_id_l, r.mention_id_r, r.match_probability, r.origin) for r in out.collect())
    assert rows == [(B, A, 0.99, "model"), (A, C, 1.0, "must_link")]


@pytest.mark.spark
def test_cannot_link_splits_a_chained_cluster_at_its_weakest_link(spark, tmp_path):
    # A-B strong, B-C weaker: a cannot-link between A and C leaves C on its own.
    clusters = spark.createDataFrame([(m, "k") for m in (A, B, C)] + [(D, "other")], "mention_id string, cluster_id string")
    edges = spark.createDataFrame(
        [(B, A, 0.999, "model"), (B, C, 0.96, "model")], "mention_id_l string, mention_id_r string, match_probability double, origin string"
    )
    out = enforce_cannot_link(spark, clusters, edges, _decisions(cannot=[(A, C)]), 0.95, str(tmp_path))
    got = {r.mention_id: r.cluster_id for r in out.collect()}
    assert got[A] == got[B] != got[C]
    assert got[D] == "other"


def test_greedy_components_never_join_a_forbidden_pair_and_stay_connected():
    rng = random.Random(3)
    for _ in range(200):
        nodes = [f"n{i}" for i in range(rng.randint(2, 12))]
        edges = [(a, b, rng.random()) for a in nodes for b in nodes if a < b and rng.random() < 0.4]
        forbidden = {(a, b) for a in nodes for b in nodes if a < b and rng.random() < 0.1}
        edges.sort(key=lambda e: (-e[2], e[0], e[1]))
        labels = greedy_components(nodes, edges, forbidden)
        assert labels == _greedy_by_every_pair(nodes, edges, forbidden)
        assert all(labels[a] != labels[b] for a, b in forbidden)
        # Each component is connected by edges inside it (no union without an edge).
        for label in set(labels.values()):
            members = {n for n in nodes if labels[n] == label}
            reached, frontier = {min(members)}, [min(members)]
            while frontier:
                n = frontier.pop()
                for a, b, _ in edges:
                    for x, y in ((a, b), (b, a)):
                        if x == n and y in members and y not in reached:
                            reached.add(y)
                            frontier.append(y)
            assert reached == members


def _greedy_by_every_pair(nodes, edges, forbidden):
    """The greedy rebuild checking every pair of members at each union (slow, plainly right)."""
    label = {n: n for n in nodes}
    for left, right, _ in edges:
        a, b = label[left], label[right]
        side_a, side_b = [n for n in nodes if label[n] == a], [n for n in nodes if label[n] == b]
        if a == b or any((min(x, y), max(x, y)) in forbidden for x in side_a for y in side_b):
            continue
        for n in side_b:
            label[n] = a
    return {n: "cl:" + min(m for m in nodes if label[m] == label[n]) for n in nodes}


@pytest.mark.spark
def test_clusters_are_rebuilt_each_from_its_own_links(spark, tmp_path):
    # Two clusters that must both be rebuilt, with a strong link between them (an earlier run
    # kept them apart): each is rebuilt from its own links and never merged into the other.
    clusters = spark.createDataFrame([(m, "k1") for m in (A, B, C)] + [(D, "k2"), (E, "k2")], "mention_id string, cluster_id string")
    edges = spark.createDataFrame(
        [(A, B, 0.99), (B, C, 0.97), (C, D, 0.999), (D, E, 0.98)], "mention_id_l string, mention_id_r string, match_probability double"
    )
    forbidden = spark.createDataFrame([(A, C), (D, E)], "mention_id_l string, mention_id_r string")
    out = keep_apart(spark, clusters, edges, forbidden, 0.95, str(tmp_path))
    got = {r.mention_id: r.cluster_id for r in out.collect()}
    assert got == {A: f"cl:{B}", B: f"cl:{B}", C: f"cl:{C}", D: f"cl:{D}", E: f"cl:{E}"}
