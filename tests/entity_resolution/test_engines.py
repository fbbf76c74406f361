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


@pytest.mark.parametrize("seed", [1, 2])
def test_links_are_labelled_alike_on_both_engines(spark, tmp_path, seed):
    """DuckDB's strongest links and review band, read from the pairs' files, are Spark's, and
    what a reading of the pairs by hand gives: reviewers' decisions and must-links are not
    reviewable, links to another customer and mentions with no customer are not links."""
    from cdp.config import ResolutionConfig
    from cdp.lake import overwrite_table
    from entity_resolution.engines import LinkageEngine

    config = ResolutionConfig(match_threshold=THRESHOLD, review_band=(0.8, 0.99))
    rng = random.Random(seed)
    nodes = [f"leads:L{i:02d}:prospect" for i in range(30)]
    customers = {n: f"C{rng.randrange(6)}" for n in nodes[:-3]}  # the last three name nobody
    pairs = {}
    for _ in range(120):
        a, b = sorted(rng.sample(nodes, 2))
        pairs[(a, b)] = (rng.choice([0.5, 0.8, 0.94, 0.95, 0.97, 0.99, 0.999, 1.0]), rng.choice(["model", "model", "must_link"]))
    joined = sorted(
        (a, b) for (a, b), (p, origin) in pairs.items() if p >= THRESHOLD and origin == "model" and customers.get(a, "a") == customers.get(b, "b")
    )
    decided = rng.sample(joined, len(joined) // 3) + rng.sample(sorted(pairs), 4)  # some of them links that would count
    table = str(tmp_path / "match_pairs")
    overwrite_table(
        spark,
        spark.createDataFrame(
            [(a, b, p, 1.0, origin) for (a, b), (p, origin) in pairs.items()],
            "mention_id_l string, mention_id_r string, match_probability double, match_weight double, origin string",
        ),
        table,
    )
    ids_path = str(tmp_path / "customer_ids")
    spark.createDataFrame(
        [(m, c, None) for m, c in customers.items()] + [(None, "C9", "retired")], "mention_id string, customer_id string, event string"
    ).write.parquet(ids_path)
    strongest: dict[str, list[float | None]] = {}
    band = set()
    for (a, b), (p, origin) in pairs.items():
        if a not in customers or b not in customers:
            continue
        if 0.8 <= p < 0.99:
            band.add((a, b, p, origin, customers[a], customers[b]))
        if p < THRESHOLD or customers[a] != customers[b]:
            continue
        reviewable = origin == "model" and (a, b) not in decided
        for m in (a, b):
            best = strongest.setdefault(m, [None, None])
            best[0] = max(best[0] or 0.0, p)
            if reviewable:
                best[1] = max(best[1] or 0.0, p)
    decided_df = spark.createDataFrame(decided, "mention_id_l string, mention_id_r string")
    engine = DuckDBEngine(spark, str(tmp_path / "work"), "1GB")
    engine.close()  # the golden phase runs after the linkage's connection is closed

    def read(labelled):
        links, in_band = labelled
        return (
            {r.mention_id: [r.match_probability, r.reviewable_probability] for r in links.collect()},
            {(r.mention_id_l, r.mention_id_r, r.match_probability, r.origin, r.customer_id_l, r.customer_id_r) for r in in_band.collect()},
        )

    in_duckdb = read(engine.label_links(table, ids_path, config, decided_df))
    in_spark = read(LinkageEngine.label_links(engine, table, ids_path, config, decided_df))
    assert in_duckdb == in_spark == (strongest, band)
    assert any(v[1] is None for v in strongest.values()) and len(strongest) > 10 and len(band) > 5
