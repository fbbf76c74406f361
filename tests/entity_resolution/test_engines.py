"""Linkage engines: clusters of scored pairs with reviewers' decisions applied."""

from __future__ import annotations

import logging
import random
import re

import pytest
from pyspark.sql import functions as F

from entity_resolution.duckdb_engine import DuckDBEngine, connected_components
from entity_resolution.engines import PAIR_SCHEMA, Prediction
from entity_resolution.overrides import Decision, Overrides, override_changes

pytestmark = pytest.mark.spark

THRESHOLD = 0.95


def _partition(rows) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for r in rows:
        groups.setdefault(r.cluster_id, set()).add(r.mention_id)
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
    """DuckDB's strongest links, review band and crosswalk rows, read from the pairs' and the
    mentions' files, are Spark's, and what a reading of the pairs by hand gives: reviewers'
    decisions and must-links are not reviewable, links to another customer and mentions with no
    customer are not links, a mention with no customer is not in the crosswalk. DuckDB's
    also split into buckets of mentions, as at a million customers: 9 buckets of 27 mentions."""
    from cdp.config import ResolutionConfig
    from cdp.lake import overwrite_table
    from entity_resolution.crosswalk import XREF_COLUMNS
    from entity_resolution.engines import LinkageEngine

    config = ResolutionConfig(match_threshold=THRESHOLD, review_band=(0.8, 0.99))
    rng = random.Random(seed)
    nodes = [f"leads:L{i:02d}:prospect" if i % 3 else f"service_orders:R{i:02d}:contact" for i in range(30)]
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
    mentions_table = str(tmp_path / "person_mentions")
    overwrite_table(
        spark,
        spark.createDataFrame([(n, *n.split(":")) for n in nodes], "mention_id string, feed string, record_id string, role string"),
        mentions_table,
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
    xref = {
        (m.split(":")[0], m.split(":")[1], "contact" if m.endswith(":contact") else "primary", m.split(":")[2], m, c, strongest.get(m, [None])[0])
        for m, c in customers.items()
    }
    decided_df = spark.createDataFrame(decided, "mention_id_l string, mention_id_r string")
    engine = DuckDBEngine(spark, str(tmp_path / "work"), "1GB")
    engine.close()  # the golden phase runs after the linkage's connection is closed

    def read(labelled):
        return (
            {r.mention_id: [r.match_probability, r.reviewable_probability] for r in labelled.strongest.collect()},
            {(r.mention_id_l, r.mention_id_r, r.match_probability, r.origin, r.customer_id_l, r.customer_id_r) for r in labelled.band.collect()},
            {tuple(r) for r in labelled.xref.select(*XREF_COLUMNS).collect()},
        )

    # An earlier version wrote each output as one file, which a folder now replaces.
    (tmp_path / "work").mkdir(exist_ok=True)
    (tmp_path / "work" / "strongest_links.parquet").write_bytes(b"PAR1")
    in_duckdb = read(engine.label_links(table, ids_path, mentions_table, config, decided_df))
    in_spark = read(LinkageEngine.label_links(engine, table, ids_path, mentions_table, config, decided_df))
    assert in_duckdb == in_spark == (strongest, band, xref)
    engine.label_bucket_mentions = 3
    assert read(engine.label_links(table, ids_path, mentions_table, config, decided_df)) == in_duckdb
    assert len(list((tmp_path / "work" / "customer_xref.parquet").glob("*.parquet"))) == 9
    assert not (tmp_path / "work" / "label_buckets").exists()
    assert any(v[1] is None for v in strongest.values()) and len(strongest) > 10 and len(band) > 5

    # Within some mentions (an incremental run's touched customers): the pairs with an end
    # among them, their strongest links and their crosswalk rows.
    within = set(rng.sample(nodes, 8))
    within_path = str(tmp_path / "within")
    spark.createDataFrame([(m,) for m in sorted(within)], "mention_id string").write.parquet(within_path)
    expected = (
        {m: v for m, v in strongest.items() if m in within},
        {p for p in band if p[0] in within or p[1] in within},
        {r for r in xref if r[4] in within},
    )
    in_spark = read(LinkageEngine.label_links(engine, table, ids_path, mentions_table, config, decided_df, within=within_path))
    for bucket_mentions in (9, 10**6):
        engine.label_bucket_mentions = bucket_mentions
        assert read(engine.label_links(table, ids_path, mentions_table, config, decided_df, within=within_path)) == in_spark == expected
    assert expected[0] and expected[1] and expected[2] and expected[1] != band

    # The rows the table holds of some pairs scored again (asked twice, and in either order
    # of their columns), but not of pairs it does not hold.
    asked = rng.sample(sorted(pairs), 10)
    absent = [(a, b) for a in nodes for b in nodes if a < b and (a, b) not in pairs][:5]
    keys = spark.createDataFrame([(b, a) for a, b in asked + asked[:3] + absent], "mention_id_r string, mention_id_l string")
    expected_rows = {(a, b, *pairs[(a, b)]) for a, b in asked}
    for stored in (engine.stored_pairs(table, keys, str(tmp_path / "stored_d")), LinkageEngine.stored_pairs(engine, table, keys, str(tmp_path / "stored_s"))):
        rows = [tuple(r) for r in stored.select("mention_id_l", "mention_id_r", "match_probability", "origin").collect()]
        assert sorted(rows) == sorted(expected_rows)


_MENTION_SCHEMA = (
    "mention_id string, role string, seen_at timestamp, vin string, customer_type string, refers_to string, "
    "mobile string, mobile_alt string, id_number string, email string, name_simplified string, name_pinyin string"
)
_NAMES = ["王伟", "王偉", "李娜", "王强", "王志强", "王丽华", "王玮", "王先生", "李先生", "WANG WEI", "广州华南贸易有限公司", None, None, None]
_IDS = ["110101199003074514", "44030419851212301X", "110101198001010014"]


def _random_mentions(spark, rng, count):
    """Mentions whose names, IDs, cars, dates and references collide often: couples and
    families in one cluster, records that name nobody, cars that change hands."""
    import datetime as dt

    from entity_resolution.mentions import with_name_parts
    from entity_resolution.standardise.names import standardise_name

    ids = [f"service_orders:R{i:03d}:owner" for i in range(count)]
    rows = []
    for mention in ids:
        name = rng.choice(_NAMES)
        strong = rng.random() < 0.6
        rows.append((
            mention,
            rng.choice(["buyer", "owner", "customer", "contact", "prospect"]),
            dt.datetime(2023, 1, 1) + dt.timedelta(days=rng.randrange(0, 900, 30), seconds=rng.choice([0, 0, 1, 3600])),
            rng.choice(["V1", "V2", "V3", None]),
            "company" if name and name.endswith("公司") else rng.choice([None, "individual"]),
            rng.choice([None, None, None, rng.choice(ids)]),
            rng.choice(["13900000001", "13900000002"]) if strong and rng.random() < 0.5 else None,
            None,
            rng.choice(_IDS) if strong and rng.random() < 0.3 else None,
            None,
            *(standardise_name(name) if name else (None, None)),
        ))
    day = dt.datetime(2024, 1, 1)
    for mention, role, vin, name, mobile in _FIXED:
        rows.append((mention, role, day, vin, None, None, mobile, None, None, None, *standardise_name(name)))
    return ids, spark.createDataFrame(rows, _MENTION_SCHEMA).transform(with_name_parts)


# Beside the random ones: 王先生 and 李先生 together on 王伟's car (not both his surname: they
# stay), and 王志强 with 王丽华强 (a syllable in common only in the fourth character: one person).
_FIXED = [
    ("sales_orders:S1:buyer", "buyer", "V9", "王伟", "13900000009"),
    ("service_orders:F1:owner", "owner", "V9", "王先生", None),
    ("service_orders:F2:owner", "owner", "V9", "李先生", None),
    ("leads:F3:prospect", "prospect", None, "王志强", "13900000008"),
    ("leads:F4:prospect", "prospect", None, "王丽华强", "13900000008"),
]
_FIXED_PAIRS = {("service_orders:F1:owner", "service_orders:F2:owner"): 0.97, ("leads:F3:prospect", "leads:F4:prospect"): 0.99}


@pytest.mark.parametrize("seed", [1, 3, 4])  # each makes merged, split and retired events
def test_clusters_are_settled_and_given_ids_alike_on_both_engines(spark, tmp_path, seed, caplog):
    """DuckDB settles the clusters it made (conflicts and cannot-links kept apart, records that
    name nobody joined to their car's owner, identified or not) into the rows Spark gives, and
    gives them the customer IDs and ID events Spark gives. The clusters kept apart are rebuilt
    alike in one batch and in many."""
    from cdp.config import ResolutionConfig
    from cdp.lake import overwrite_table
    from entity_resolution.engines import LinkageEngine
    from entity_resolution.overrides import apply_changes

    rng = random.Random(seed)
    nodes, mentions = _random_mentions(spark, rng, 80)
    scored: dict[tuple[str, str], float] = {}
    for _ in range(70):  # mostly within households of four mentions, a few across
        first = rng.randrange(0, len(nodes), 4)
        a, b = sorted(rng.sample(nodes[first : first + 4], 2) if rng.random() < 0.9 else rng.sample(nodes, 2))
        scored[(a, b)] = rng.choice([0.5, 0.96, 0.97, 0.99, 0.999, 0.999])
    strong = sorted(p for p, prob in scored.items() if prob >= THRESHOLD)
    cannot = rng.sample(strong, 2)
    must = [p for p in (tuple(sorted(rng.sample(nodes, 2))) for _ in range(4)) if p not in cannot]
    scored |= _FIXED_PAIRS
    overrides = Overrides(must_link=[Decision(left=a, right=b) for a, b in must], cannot_link=[Decision(left=a, right=b) for a, b in cannot])
    pairs = spark.createDataFrame([(a, b, p, 1.0) for (a, b), p in scored.items()], PAIR_SCHEMA)
    changes = override_changes(spark, overrides, mentions)
    config = ResolutionConfig(match_threshold=THRESHOLD, review_band=(0.8, 0.99))
    engine = DuckDBEngine(spark, str(tmp_path), "1GB")
    try:
        engine.register(mentions, "mentions")
        native = Prediction(pairs, {}, {}, None, engine.register(pairs, "scored_pairs"))
        clusters = engine.cluster_scored(native, mentions.select(F.col("mention_id").alias("id")), changes, THRESHOLD)
        before = {r.mention_id: r.cluster_id for r in clusters.collect()}
        edges = str(tmp_path / "match_pairs")
        overwrite_table(spark, apply_changes(pairs, changes), edges)
        in_duckdb = {tuple(r) for r in engine.settle(mentions, clusters, edges, overrides, config).collect()}
        # Settling leaves only its own inputs of the linkage in the database (Splink's scored pairs are not spilled).
        held = {name for (name,) in engine._con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()}
        assert held == {"mentions", "cluster_components", "cluster_edges"}
        in_spark = {tuple(r) for r in LinkageEngine.settle(engine, mentions, clusters, edges, overrides, config).collect()}
        # Clusters it did not make (an incremental run's) are loaded, their links read from the
        # table's files; here rebuilt a cluster or so at a time.
        loaded = spark.createDataFrame(clusters.collect(), clusters.schema)
        engine.settle_batch_rows = 3
        with caplog.at_level(logging.INFO, logger="entity_resolution.settle"):
            in_duckdb_loaded = {tuple(r) for r in engine.settle(mentions, loaded, edges, overrides, config).collect()}
        engine.settle_batch_rows = DuckDBEngine.settle_batch_rows
        settled = engine.settle(mentions, clusters, edges, overrides, config)
        ids = _ids_alike(spark, tmp_path, rng, engine, settled, {m: c for m, c, identified in in_spark if identified})
    finally:
        engine.close()
    assert in_duckdb == in_spark == in_duckdb_loaded
    batches = [int(m.group(1)) for m in re.finditer(r"in (\d+) batch", caplog.text)]
    assert batches and max(batches) > 1, caplog.text
    for in_duckdb_ids, in_spark_ids in ids:
        assert in_duckdb_ids == in_spark_ids
    assert {e[0] for e in ids[0][0][1]} == {"merged", "split", "retired"}
    after = {m: c for m, c, _ in in_spark}
    assert len(after) == len(nodes) + len(_FIXED)
    rebuilt = {m for m, c in after.items() if c.startswith("cl:")}
    # Keeping apart only splits clusters: one that gathers mentions of two clusters took a weak one in.
    gathered: dict[str, set[str]] = {}
    for m, c in after.items():
        gathered.setdefault(c, set()).add(before[m])
    joined = [c for c, origins in gathered.items() if len(origins) > 1]
    assert rebuilt and joined and any(not identified for *_, identified in in_spark), (rebuilt, joined)
    assert after["service_orders:F1:owner"] == after["service_orders:F2:owner"] != after["sales_orders:S1:buyer"]
    assert after["leads:F3:prospect"] == after["leads:F4:prospect"]


def _ids_alike(spark, tmp_path, rng, engine, settled, clusters):
    """Customer IDs of `settled` by DuckDB and by Spark, against a previous crosswalk made of
    `clusters` (mention -> cluster of the identified mentions) with mentions moved, new and
    gone, read as of its middle version, and a history holding some of the IDs either would
    mint: (ids, events without their time stamp) of each."""
    import hashlib

    from cdp.lake import overwrite_table
    from entity_resolution.engines import LinkageEngine

    xref, history = str(tmp_path / "customer_xref"), str(tmp_path / "customer_id_history")
    owners = sorted(set(clusters.values()))
    previous = []
    for mention, cluster in sorted(clusters.items()):  # not the order of a set, which differs by process
        roll = rng.random()
        if roll < 0.85:
            previous.append((mention, f"CUold{owners.index(cluster) if roll < 0.75 else rng.randrange(len(owners))}"))
    previous += [(f"leads:GONE{i}:prospect", f"CUgone{i % 3}") for i in range(5)]
    schema = "mention_id string, customer_id string"
    for version_rows in ([("leads:X:prospect", "CUx")], previous, [("leads:Y:prospect", "CUy")]):
        overwrite_table(spark, spark.createDataFrame(version_rows, schema), xref)
    minted = {"CU" + hashlib.sha256(m.encode()).hexdigest()[:16] for m in rng.sample(sorted(clusters), len(clusters) // 2)}
    overwrite_table(
        spark,
        spark.createDataFrame(
            [("split", c, None, 1, 0) for c in sorted(minted)] + [("merged", "CUold0", "CUold1", 2, 0)],
            "event string, customer_id string, related_customer_id string, mentions long, based_on_version long",
        ).withColumn("recorded_at", F.current_timestamp()),
        history,
    )

    def read(assigned):
        ids, events = assigned
        return {tuple(r) for r in ids.collect()}, {tuple(r) for r in events.drop("recorded_at").collect()}

    work = str(tmp_path / "ids")
    in_duckdb = read(engine.assign_ids(settled, xref, 1, history, f"{work}/duckdb", f"{work}/duckdb_cells"))
    in_spark = read(LinkageEngine.assign_ids(engine, settled, xref, 1, history, f"{work}/spark", f"{work}/spark_cells"))
    resalted = {c for _, c in in_spark[0]} & {"CU" + hashlib.sha256(f"{m}#1".encode()).hexdigest()[:16] for m in clusters}
    assert resalted and len({m for m, _ in in_spark[0]}) == len(clusters)

    # An incremental run's scope: only its mentions' previous customers count, and an ID
    # held outside it is never given to a cluster.
    scope = str(tmp_path / "scope")
    inside = {m for m, _ in previous if rng.random() < 0.6}
    spark.createDataFrame([(m,) for m in sorted(inside)], "mention_id string").write.parquet(scope)
    in_duckdb_scoped = read(engine.assign_ids(settled, xref, 1, history, f"{work}/duckdb_scoped", f"{work}/duckdb_scoped_cells", scope))
    in_spark_scoped = read(
        LinkageEngine.assign_ids(engine, settled, xref, 1, history, f"{work}/spark_scoped", f"{work}/spark_scoped_cells", scope)
    )
    held_outside = {c for m, c in previous if m not in inside} - {c for m, c in previous if m in inside}
    assert held_outside and not held_outside & {c for _, c in in_spark_scoped[0]}
    assert in_spark_scoped != in_spark
    return (in_duckdb, in_spark), (in_duckdb_scoped, in_spark_scoped)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_duckdb_components_are_splinks_with_the_same_names(spark, tmp_path, seed):
    """The DuckDB engine's own connected components (scipy) against Splink's clustering on
    the same tables: the same members and the same cluster ids (each cluster's smallest id,
    by DuckDB's order of strings), edges under the threshold, repeated, reversed or looping
    back to their start included; and no nodes at all."""
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    rng = random.Random(seed)
    engine = DuckDBEngine(spark, str(tmp_path), "1GB")
    try:
        con = engine._con
        # Ids whose order as strings is not their order as numbers; some never on an edge.
        nodes = sorted({f"m{rng.randint(0, 10 ** rng.randint(1, 4))}" for _ in range(300)} | {"", "M", "m", "中"})
        edges = [(rng.choice(nodes), rng.choice(nodes), rng.choice([0.2, 0.94, 0.95, 0.96, 1.0])) for _ in range(260)]
        edges += [(b, a, p) for a, b, p in rng.sample(edges, 40)] + [(a, a, 1.0) for a in rng.sample(nodes, 5)]
        for name, rows in (("t_nodes", [(n,) for n in nodes]), ("t_edges", edges), ("t_none", [])):
            columns = "id VARCHAR" if name != "t_edges" else "id_l VARCHAR, id_r VARCHAR, match_probability DOUBLE"
            con.execute(f"CREATE OR REPLACE TABLE {name} ({columns})")
            if rows:
                con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * len(rows[0]))})", rows)

        def rows_of(table) -> set[tuple[str, str]]:
            return set(con.execute(f"SELECT id, cluster_id FROM {table.physical_name}").fetchall())

        api = engine.db_api
        ours = rows_of(engine._cluster_table(api.register("t_nodes"), api.register("t_edges"), THRESHOLD))
        splinks = rows_of(
            cluster_pairwise_predictions_at_threshold(
                api.register("t_nodes"), api.register("t_edges"), db_api=api, node_id_column_name="id", threshold_match_probability=THRESHOLD
            )
        )
        assert ours == splinks
        assert len({c for _, c in ours}) < len(nodes) - 50  # many joined, many alone
        # The edges a few at a time, each batch joining the components found before it.
        connected_components(con, "t_nodes", "t_edges", THRESHOLD, "in_batches", batch_rows=7)
        assert set(con.execute("SELECT id, cluster_id FROM in_batches").fetchall()) == splinks
        assert engine._cluster_table(api.register("t_none"), api.register("t_edges"), THRESHOLD) is not None
        assert con.execute("SELECT count(*) FROM cluster_components").fetchone()[0] == 0
    finally:
        engine.close()


@pytest.mark.parametrize("hashed_by", ["spark", "duckdb"])
def test_an_em_session_over_too_many_pairs_trains_on_whole_blocks_of_about_that_many(spark, tmp_path, hashed_by):
    """`max_pairs_for_em`: the VIN session at 1,000,000 customers (196 million pairs) spilled
    57 GB. A rule over the cap keeps whole blocks, about the cap's pairs; one under it stands.
    The same with the buckets by Spark's hash (`with_em_buckets`) and by DuckDB's
    (`em_buckets_in_duckdb`, when DuckDB reads the mentions itself)."""
    from cdp.config import LinkageModelConfig
    from entity_resolution.engines import SparkEngine, em_buckets_in_duckdb, with_em_buckets

    rng = random.Random(5)
    rows = [(f"m{b}-{i}", f"V{b}", f"139{b % 50:08d}" if i == 0 and b < 100 else None) for b in range(3000) for i in range(rng.randint(2, 6))]
    mentions = spark.createDataFrame(rows, "mention_id string, vin string, mobile string")
    sizes: dict[str, int] = {}
    for _, vin, _ in rows:
        sizes[vin] = sizes.get(vin, 0) + 1
    vin_pairs = sum(n * (n - 1) // 2 for n in sizes.values())
    params = LinkageModelConfig(training_blocking=[["vin"], ["mobile"]], max_pairs_for_em=vin_pairs / 4)

    duck = DuckDBEngine(spark, str(tmp_path / "duck"), "1GB")
    if hashed_by == "spark":
        table = duck.register(with_em_buckets(mentions, params), "mentions")
    else:
        mentions.write.parquet(str(tmp_path / "plain"))
        duck._con.execute(f"CREATE TABLE mentions AS SELECT *{em_buckets_in_duckdb(params)} FROM read_parquet('{tmp_path}/plain/*.parquet')")
        table = duck._api.register("mentions")
    vin_rule, mobile_rule = (r.get_blocking_rule("duckdb").blocking_rule_sql for r in duck.em_rules(table, params))
    assert "_em" not in mobile_rule and "_em_0" in vin_rule  # 100 mobiles in 50 blocks: 50 pairs, under the cap
    kept = duck.scalar(
        f"SELECT list(DISTINCT l.vin) FROM mentions l JOIN mentions r ON {vin_rule} AND l.mention_id < r.mention_id"
    )
    kept_pairs = duck.scalar(f"SELECT count(*) FROM mentions l JOIN mentions r ON {vin_rule} AND l.mention_id < r.mention_id")
    assert kept_pairs == sum(sizes[v] * (sizes[v] - 1) // 2 for v in kept)  # whole blocks
    assert 0.6 * vin_pairs / 4 < kept_pairs < 1.4 * vin_pairs / 4, (kept_pairs, vin_pairs)
    # The Spark engine counts the same pairs; without a cap the rules stand.
    spark_engine = SparkEngine(spark, str(tmp_path / "spark"))
    spark_table = spark_engine.register(with_em_buckets(mentions, params), "mentions")
    count = "SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM (SELECT count(*) AS n FROM {} WHERE (vin) IS NOT NULL GROUP BY vin)"
    assert int(spark_engine.scalar(count.format(spark_table.physical_name))) == int(duck.scalar(count.format("mentions"))) == vin_pairs
    uncapped = params.model_copy(update={"max_pairs_for_em": None})
    assert [r.get_blocking_rule("duckdb").blocking_rule_sql for r in duck.em_rules(table, uncapped)] == ['l."vin" = r."vin"', 'l."mobile" = r."mobile"']
    duck.close()


def _with_every_model_column(mentions):
    """Random mentions with the columns the model reads that they lack: two dealers, the rest null."""
    return mentions.withColumns({
        "dealer_code": F.when(F.rand(3) < 0.5, F.lit("GZ001")).otherwise(F.lit("SZ002")),
        **{c: F.lit(None).cast("string") for c in ("feed", "record_id", "id_unchecked", "gender", "address", "province", "city")},
        "birth_date": F.lit(None).cast("date"),
    })


def test_a_prediction_in_chunks_scores_the_same_pairs_as_one_pass(spark, tmp_path, caplog):
    """`predict_chunk_mentions`: at 1,000,000 customers one pass's blocked pairs spilled 58 GB."""
    from cdp.config import ResolutionConfig
    from entity_resolution.model import build_settings

    caplog.set_level("INFO")
    _, mentions = _random_mentions(spark, random.Random(2), 300)
    mentions = _with_every_model_column(mentions)
    config = ResolutionConfig(prediction_threshold=1e-6, predict_chunk_mentions=None)
    model = build_settings(config.model).get_settings("duckdb").as_dict()
    scored, clustered = {}, {}
    ids = mentions.select(F.col("mention_id").alias("id"))
    for chunk in (None, 110):
        engine = DuckDBEngine(spark, str(tmp_path / f"chunk{chunk}"), "1GB", on_disk=chunk is not None)
        chosen = config.model_copy(update={"predict_chunk_mentions": chunk})
        prediction = engine.predict_with(mentions, model, chosen)
        rows = prediction.pairs.collect()
        scored[chunk] = {(r["mention_id_l"], r["mention_id_r"]): round(r["match_probability"], 12) for r in rows}
        # Each file of pairs in (mention_id_l, mention_id_r) order, as one pass writes them.
        for part in prediction.pairs.inputFiles():
            keys = [(r[0], r[1]) for r in spark.read.parquet(part).collect()]
            assert keys == sorted(keys)
        # Clustered where the engine holds the pairs: from the chunks' files.
        clustered[chunk] = _partition(engine.cluster_scored(prediction, ids, None, 0.5).collect())
        # Insertion order is given up for the chunks only: settling and the IDs run on after.
        assert engine.scalar("SELECT current_setting('preserve_insertion_order')") is True
        database = tmp_path / f"chunk{chunk}" / "linkage.duckdb"
        assert database.exists() == (chunk is not None)  # the chunks' tables in a file
        engine.close()
        assert not database.exists()
    assert len(scored[None]) > 100 and scored[110] == scored[None]
    assert clustered[110] == clustered[None] and len(clustered[None]) < 300
    assert "predict: the pairs of the mentions in 3 x 3 chunks" in caplog.text  # 305 mentions, 110 at a time
    assert "predict: chunk 9 of 9 scored" in caplog.text
    assert re.search(r"chunk 9 of 9 scored, \d+ s so far, database file [\d.]+ MiB", caplog.text)


def _stored_mentions(spark, tmp_path, seed):
    """300 random mentions (and the fixed ones) with every model column, written to a Delta
    table under `tmp_path`: its path and the table as read."""
    from cdp.lake import overwrite_table, read_table

    _, mentions = _random_mentions(spark, random.Random(seed), 300)
    path = str(tmp_path / "person_mentions")
    overwrite_table(spark, _with_every_model_column(mentions), path)
    return path, read_table(spark, path)


def test_mentions_read_from_their_delta_table_score_the_same_pairs(spark, tmp_path, caplog):
    """Given the mentions' Delta table on local disk, the DuckDB engine reads its files and
    sizes the blocks itself (`load_for_prediction`): the same pairs as through Spark, for a
    full prediction and for new mentions, with blocks past the cap left out alike."""
    from cdp.config import ResolutionConfig
    from entity_resolution.model import build_settings

    caplog.set_level("INFO")
    path, stored = _stored_mentions(spark, tmp_path, 5)
    config = ResolutionConfig(prediction_threshold=1e-6, predict_chunk_mentions=None)
    config = config.model_copy(update={"model": config.model.model_copy(update={"max_block_records": 20})})
    model = build_settings(config.model).get_settings("duckdb").as_dict()
    new = stored.select("mention_id").orderBy("mention_id").limit(40)
    scored = {}
    for table in (None, path):
        work = tmp_path / ("files" if table else "spark")
        for kind in ("all", "new"):
            engine = DuckDBEngine(spark, str(work / kind), "1GB")
            if kind == "all":
                prediction = engine.predict_with(stored, model, config, table)
            else:
                prediction = engine.predict_new(stored, new, model, config, table)
            scored[table, kind] = {(r[0], r[1]): round(r[2], 12) for r in prediction.pairs.collect()}
            engine.close()
        # Spark sized the blocks only when no table was given.
        assert (work / "all" / "oversized_blocks").exists() == (table is None)
    assert caplog.text.count("rule(s) leave out blocks of more than 20 mentions") == 4
    assert len(scored[None, "all"]) > len(scored[None, "new"]) > 50
    assert scored[path, "all"] == scored[None, "all"] and scored[path, "new"] == scored[None, "new"]


def test_mentions_read_from_their_delta_table_load_for_training_as_through_spark(spark, tmp_path):
    """Given the mentions' Delta table on local disk, the DuckDB engine loads them for training
    itself (`load_for_training`): the same rows and blocking keys as through Spark, the same
    rules to predict with and the same u of one mention naming the other; the EM buckets, by
    DuckDB's hash, give each block one bucket, and the sessions over the cap train on them."""
    from cdp.config import ResolutionConfig

    path, stored = _stored_mentions(spark, tmp_path, 7)
    config = ResolutionConfig(prediction_threshold=1e-6, predict_chunk_mentions=None)
    # About 75 mentions share each of three VINs: blocks over 20 leave a prediction rule, and
    # the VIN session's 8,000-odd pairs are past 3,000 (the mobile session's are not).
    config = config.model_copy(update={"model": config.model.model_copy(update={"max_block_records": 20, "max_pairs_for_em": 3000})})
    loaded = {}
    for table in (None, path):
        engine = DuckDBEngine(spark, str(tmp_path / ("files" if table else "spark")), "1GB")
        registered, rules, reference_u = engine.load_for_training(stored, config, table)
        columns = sorted(d[0] for d in engine._con.execute(f"SELECT * FROM {registered.physical_name} LIMIT 0").description if not d[0].startswith("_em_"))
        rows = engine._con.execute(f"SELECT {', '.join(columns)} FROM {registered.physical_name} ORDER BY mention_id").fetchall()
        buckets_per_block = engine._con.execute(
            f"SELECT max(n) FROM (SELECT count(DISTINCT _em_1) AS n FROM {registered.physical_name} WHERE vin IS NOT NULL GROUP BY vin)"
        ).fetchall()[0][0]
        bucket_range = engine._con.execute(f"SELECT min(_em_0), max(_em_0), min(_em_1), max(_em_1) FROM {registered.physical_name}").fetchall()[0]
        em_rules = [r.get_blocking_rule("duckdb").blocking_rule_sql for r in engine.em_rules(registered, config.model)]
        loaded[table] = (columns, rows, [r.get_blocking_rule("duckdb").blocking_rule_sql for r in rules or []], reference_u)
        engine.close()
        assert buckets_per_block == 1 and 0 <= min(bucket_range) and max(bucket_range) < 1000, (buckets_per_block, bucket_range)
        assert "_em_" not in em_rules[0] and "_em_1" in em_rules[1], em_rules  # mobile under the cap, VIN over it
        # Spark sized the blocks only when no table was given.
        assert (tmp_path / ("files" if table else "spark") / "oversized_blocks").exists() == (table is None)
    assert loaded[path] == loaded[None]
    assert len(loaded[path][1]) == 305 and any("_block_" in r for r in loaded[path][2]) and loaded[path][3] is not None
    # And a model trains on them and scores their pairs.
    engine = DuckDBEngine(spark, str(tmp_path / "trained"), "1GB")
    prediction = engine.train_and_predict(stored, config, path)
    assert prediction.pairs.count() > 50 and prediction.model["comparisons"]
    engine.close()


def test_the_blocks_of_dropped_tables_are_reused_in_the_database_file(spark, tmp_path):
    """After each chunk of a prediction the engine checkpoints, so the next chunk's tables
    reuse the blocks of those it dropped: at 1,000,000 customers the file otherwise grew from
    15.0 GB after 4 chunks to 26.4 GB after 12. (A test's chunks are too small to leave the log, so a table of 200,000
    rows stands in for one.)"""
    engine = DuckDBEngine(spark, str(tmp_path), "1GB", on_disk=True)
    sizes = []
    for _ in range(4):
        engine._con.execute("CREATE TABLE chunk AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(200000)")
        engine._con.execute("DROP TABLE chunk")
        engine._checkpoint()
        sizes.append((tmp_path / "linkage.duckdb").stat().st_size)
    engine.close()
    assert sizes[-1] == sizes[0] > 0, sizes


def test_training_leaves_none_of_its_tables_for_the_prediction(spark, tmp_path):
    """EM's blocked pairs and comparison vectors, views or tables, are dropped once the model
    is trained (at 1,000,000 customers, as tables, they held 38 GB of DuckDB's spill when
    prediction began)."""
    from cdp.config import ResolutionConfig

    _, mentions = _random_mentions(spark, random.Random(2), 300)
    mentions = _with_every_model_column(mentions)
    engine = DuckDBEngine(spark, str(tmp_path), "1GB")
    engine.train_and_predict(mentions, ResolutionConfig())
    tables = {r[0] for r in engine._con.execute("SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views()").fetchall()}
    assert not {t for t in tables if "comparison_vectors" in t or "blocked_id_pairs" in t}, tables
    assert "scored_pairs" in tables, tables  # the prediction's pairs, a view of their file, stay
    engine.close()


def test_a_prediction_in_one_pass_stores_neither_its_blocked_nor_its_scored_pairs(spark, tmp_path, monkeypatch):
    """Stored, at 300,000 customers, a prediction's blocked pairs and scored pairs took DuckDB's
    temporary folder to 32.6 GiB (21.8 GiB as views). The DuckDB engine makes both views, read once as the pairs
    are sorted into their file, and drops them after: the same pairs as Splink's tables give,
    and clustered from their file as from Splink's table."""
    from cdp.config import ResolutionConfig
    from entity_resolution.engines import LinkageEngine
    from entity_resolution.model import StreamingDuckDBAPI, build_settings

    made: list[tuple[str, str]] = []
    setup = StreamingDuckDBAPI._setup_for_execute_sql

    def recorded(api, sql, physical_name):
        statement = setup(api, sql, physical_name)
        made.extend(re.findall(r"CREATE (TABLE|VIEW) (__splink__(?:blocked_id_pairs|df_predict)\w*)", statement))
        return statement

    monkeypatch.setattr(StreamingDuckDBAPI, "_setup_for_execute_sql", recorded)
    _, mentions = _random_mentions(spark, random.Random(3), 300)
    mentions = _with_every_model_column(mentions)
    config = ResolutionConfig(prediction_threshold=1e-6, predict_chunk_mentions=None)
    model = build_settings(config.model).get_settings("duckdb").as_dict()
    ids = mentions.select(F.col("mention_id").alias("id"))
    engine = DuckDBEngine(spark, str(tmp_path), "1GB")
    try:
        prediction = engine.predict_with(mentions, model, config)
        unstored = {(r[0], r[1]): r[2] for r in prediction.pairs.collect()}
        made_unstored, made[:] = sorted({kind for kind, _ in made}), []
        left = engine.scalar(
            "SELECT count(*) FROM (SELECT table_name AS name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views()) "
            "WHERE name LIKE '__splink__blocked_id_pairs%' OR name LIKE '__splink__df_predict%'"
        )
        clustered = _partition(engine.cluster_scored(prediction, ids, None, 0.5).collect())
        # As Splink does it: the blocked pairs and the scored pairs stored as tables.
        pairs, table = LinkageEngine._predict_at_once(engine, prediction.linker, config.prediction_threshold)
        stored = {(r[0], r[1]): r[2] for r in pairs.collect()}
        made_stored = sorted({kind for kind, _ in made})
        from_table = _partition(engine.cluster_scored(Prediction(pairs, model, {}, None, table), ids, None, 0.5).collect())
    finally:
        engine.close()
    assert made_unstored == ["VIEW"] and made_stored == ["TABLE"], (made_unstored, made_stored)
    assert left == 0
    assert len(unstored) > 100 and unstored == stored
    assert clustered == from_table and len(clustered) < 300


def test_a_prediction_out_of_memory_in_one_pass_is_made_again_with_its_pairs_stored(spark, tmp_path, monkeypatch, caplog):
    """Right after training, the 300,000-customer pipeline's prediction in one pass (pairs
    made, scored and sorted in one query) ran out of DuckDB's memory. It is made again the
    way Splink stores its pairs, with the same pairs and nothing of either attempt left."""
    import duckdb

    from cdp.config import ResolutionConfig
    from entity_resolution.model import build_settings

    _, mentions = _random_mentions(spark, random.Random(3), 300)
    mentions = _with_every_model_column(mentions)
    config = ResolutionConfig(prediction_threshold=1e-6, predict_chunk_mentions=None)
    model = build_settings(config.model).get_settings("duckdb").as_dict()

    def predicted(folder: str) -> tuple[dict, int]:
        engine = DuckDBEngine(spark, str(tmp_path / folder), "1GB")
        try:
            pairs = {(r[0], r[1]): r[2] for r in engine.predict_with(mentions, model, config).pairs.collect()}
            left = engine.scalar(
                "SELECT count(*) FROM (SELECT table_name AS name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views()) "
                "WHERE name LIKE '__splink__blocked_id_pairs%' OR name LIKE '__splink__df_predict%'"
            )
        finally:
            engine.close()
        return pairs, left

    expected, _ = predicted("at_once")
    kinds: list[str] = []
    write_sorted = DuckDBEngine._write_sorted

    def out_of_memory_once(engine, table, path, overwrite=False):
        kinds.append("TABLE" if engine.scalar(f"SELECT count(*) FROM duckdb_tables() WHERE table_name = '{table}'") else "VIEW")
        if len(kinds) == 1:
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate data of size 4.0 KiB (1.0 GiB/1.0 GiB used)")
        write_sorted(engine, table, path, overwrite)

    monkeypatch.setattr(DuckDBEngine, "_write_sorted", out_of_memory_once)
    with caplog.at_level(logging.WARNING, logger="entity_resolution.duckdb_engine"):
        again, left = predicted("again")
    assert kinds == ["VIEW", "TABLE"]
    assert len(expected) > 100 and again == expected and left == 0
    assert "ran out of memory" in caplog.text
