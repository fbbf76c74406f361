"""Linkage engines: clusters of scored pairs with reviewers' decisions applied."""

from __future__ import annotations

import random

import pytest

from entity_resolution.engines import DuckDBEngine, Prediction
from entity_resolution.overrides import Decision, Overrides, override_changes

pytestmark = pytest.mark.spark

THRESHOLD = 0.95


def _partition(rows) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for r in rows:
        groups.setdefault(str(r.cluster_id), set()).add(r.id)
    return {frozenset(g) for g in groups.values()}


def _components(nodes: list[str], edges: list[tuple[str, str]]) -> set[frozenset[str]]:
    parent = {n: n for n in nodes}

    def find(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    for a, b in edges:
        parent[find(a)] = find(b)
    groups: dict[str, set[str]] = {}
    for n in nodes:
        groups.setdefault(find(n), set()).add(n)
    return {frozenset(g) for g in groups.values()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_duckdb_clusters_its_own_scored_pairs_with_reviewers_decisions(spark, tmp_path, seed):
    rng = random.Random(seed)
    nodes = [f"leads:L{i:02d}:prospect" for i in range(40)]
    scored: dict[tuple[str, str], float] = {}
    for _ in range(70):
        a, b = sorted(rng.sample(nodes, 2))
        scored[(a, b)] = rng.choice([0.5, 0.8, 0.94, 0.95, 0.97, 0.999])
    strong = sorted(p for p, prob in scored.items() if prob >= THRESHOLD)
    cannot = rng.sample(strong, 3) + [tuple(sorted(rng.sample(nodes, 2)))]
    must = [p for p in (tuple(sorted(rng.sample(nodes, 2))) for _ in range(3)) if p not in cannot]
    unknown = (nodes[0], "leads:NOT-SCORED:prospect")  # a must-link to a mention the run does not know is left out
    overrides = Overrides(
        must_link=[Decision(left=a, right=b) for a, b in [*must, unknown]],
        cannot_link=[Decision(left=a, right=b) for a, b in cannot],
    )
    pairs = spark.createDataFrame(
        [(a, b, p, 1.0) for (a, b), p in scored.items()],
        "mention_id_l string, mention_id_r string, match_probability double, match_weight double",
    )
    mentions = spark.createDataFrame([(n,) for n in nodes], "mention_id string")
    changes = override_changes(spark, overrides, mentions)
    ids = mentions.withColumnRenamed("mention_id", "id")
    engine = DuckDBEngine(spark, str(tmp_path), "1GB")
    try:
        native = Prediction(pairs, {}, {}, None, engine.register(pairs, "scored_pairs"))
        in_duckdb = _partition(engine.cluster_scored(native, ids, changes, THRESHOLD).collect())
        through_spark = _partition(engine.cluster_scored(Prediction(pairs, {}, {}, None), ids, changes, THRESHOLD).collect())
    finally:
        engine.close()
    edges = [p for p, prob in scored.items() if prob >= THRESHOLD and p not in cannot] + must
    expected = _components(nodes, edges)
    assert in_duckdb == through_spark == expected
    assert any(len(g) > 1 for g in expected)
