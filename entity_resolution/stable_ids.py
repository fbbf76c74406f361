"""Stable customer IDs across runs, and the history of merges and splits.

Splink labels clusters afresh on every run; customers need IDs that outlive runs. The rule:

1. Each previous customer ID is claimed by the new cluster holding most of its mentions
   (ties: the cluster whose smallest mention id sorts first).
2. A cluster keeps the claimed ID covering most of its mentions (ties: the smaller ID).
   So an unchanged customer keeps its ID, a customer that gained records keeps its ID, and
   when two customers merge the larger one's ID survives.
3. Every other cluster gets a new ID: `CU` + the first 16 hex digits of the SHA-256 of its
   smallest mention id, re-salted in the rare case that ID was ever issued before.

Events written to `customer_id_history`:
- `merged`: an ID that no longer exists because its mentions joined another customer
  (`related_customer_id` is the survivor);
- `split`: a new ID made of mentions taken from an existing customer (`related_customer_id`);
- `retired`: an ID whose mentions are all gone (erased or withdrawn records).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

__all__ = ["HISTORY_COLUMNS", "assign_customer_ids", "assign_customer_ids_in_duckdb", "build_new_customer_id"]

HISTORY_COLUMNS = ("event", "customer_id", "related_customer_id", "mentions", "based_on_version")


def build_new_customer_id(anchor: Column) -> Column:
    """`CU` + 16 hex digits of SHA-256 of the anchor (a cluster's smallest mention id)."""
    return F.concat(F.lit("CU"), F.substring(F.sha2(anchor, 256), 1, 16))


def assign_customer_ids(
    clusters: DataFrame,
    previous: DataFrame | None,
    issued: DataFrame | None,
    based_on_version: int = -1,
    materialise: Callable[[DataFrame], DataFrame] | None = None,
) -> tuple[DataFrame, DataFrame]:
    """Clusters (mention_id, cluster_id) and the previous crosswalk (mention_id, customer_id)
    -> (mention_id, customer_id) and history events (see `HISTORY_COLUMNS`).

    `issued` (customer_id) lists every ID ever handed out, so a retired ID is never reused.
    `based_on_version` is the Delta version of the previous crosswalk, recorded with events.
    `materialise` (a checkpoint) writes the cells of the two partitions once: everything
    after reads them several times, and Spark computed their join once per read (at 100,000
    customers, 35.6 s against 11.3 s to write the cells and 7.4 s after, in a warm JVM).
    """
    spark = clusters.sparkSession
    if previous is None:
        previous = spark.createDataFrame([], "mention_id string, customer_id string")
    if issued is None:
        issued = spark.createDataFrame([], "customer_id string")
    previous = previous.select("mention_id", F.col("customer_id").alias("old_id"))

    # One pass over the mentions: each (new cluster, old ID) cell of the two partitions, with
    # a null cluster for mentions gone and a null old ID for mentions new. What follows reads
    # these cells, a row per customer or so, not the mentions.
    cells = (
        clusters.select("mention_id", "cluster_id")
        .join(previous, "mention_id", "full")
        .groupBy("cluster_id", "old_id")
        .agg(F.count("*").alias("n"), F.min("mention_id").alias("first_mention"))
    )
    if materialise is not None:
        cells = materialise(cells)
    anchors = cells.filter(F.col("cluster_id").isNotNull()).groupBy("cluster_id").agg(F.min("first_mention").alias("anchor"))
    old_ids = cells.filter(F.col("old_id").isNotNull())
    overlap = old_ids.filter(F.col("cluster_id").isNotNull()).select("cluster_id", "old_id", "n").join(anchors, "cluster_id")
    by_old = Window.partitionBy("old_id").orderBy(F.desc("n"), "anchor")
    claims = overlap.withColumn("rank", F.row_number().over(by_old)).filter("rank = 1").drop("rank")
    by_cluster = Window.partitionBy("cluster_id").orderBy(F.desc("n"), "old_id")
    kept = (
        claims.withColumn("rank", F.row_number().over(by_cluster))
        .filter("rank = 1")
        .select("cluster_id", F.col("old_id").alias("kept_id"))
    )

    taken = issued.select("customer_id").union(old_ids.select("old_id")).distinct().withColumn("taken", F.lit(True))
    minted = (
        anchors.join(kept, "cluster_id", "left_anti")
        .withColumn("customer_id", build_new_customer_id(F.col("anchor")))
        .join(taken, "customer_id", "left")
        .withColumn(
            "customer_id",
            F.when(F.col("taken"), build_new_customer_id(F.concat("anchor", F.lit("#"), F.lit(str(based_on_version))))).otherwise(
                F.col("customer_id")
            ),
        )
        .select("cluster_id", "customer_id")
    )
    ids = kept.select("cluster_id", F.col("kept_id").alias("customer_id")).unionByName(minted)
    assigned = clusters.join(ids, "cluster_id").select("mention_id", "customer_id")

    # History: what became of each previous ID, and where each new ID's mentions came from.
    old_sizes = old_ids.groupBy("old_id").agg(F.sum("n").alias("old_size"))
    surviving = ids.withColumnRenamed("customer_id", "new_id")
    best_home = overlap.withColumn("rank", F.row_number().over(by_old)).filter("rank = 1").join(surviving, "cluster_id")
    merged = (
        best_home.filter(F.col("new_id") != F.col("old_id"))
        .join(kept.select(F.col("kept_id").alias("old_id")), "old_id", "left_anti")
        .select(F.lit("merged").alias("event"), F.col("old_id").alias("customer_id"), F.col("new_id").alias("related_customer_id"), "n")
    )
    retired = old_sizes.join(overlap.select("old_id").distinct(), "old_id", "left_anti").select(
        F.lit("retired").alias("event"), F.col("old_id").alias("customer_id"), F.lit(None).cast("string").alias("related_customer_id"), F.col("old_size").alias("n")
    )
    by_minted = Window.partitionBy("cluster_id").orderBy(F.desc("n"), "old_id")
    split = (
        overlap.join(minted, "cluster_id")
        .withColumn("rank", F.row_number().over(by_minted))
        .filter("rank = 1")
        .select(F.lit("split").alias("event"), "customer_id", F.col("old_id").alias("related_customer_id"), "n")
    )
    events = (
        merged.unionByName(retired)
        .unionByName(split)
        .withColumnRenamed("n", "mentions")
        .withColumn("mentions", F.col("mentions").cast("long"))
        .withColumn("based_on_version", F.lit(based_on_version).cast("long"))
        .select(*HISTORY_COLUMNS)
    )
    return assigned, events


def assign_customer_ids_in_duckdb(con: Any, clusters: str, previous: str | None, issued: str | None, based_on_version: int, out_path: str) -> None:
    """`assign_customer_ids` in DuckDB, by the same rules, written to the Parquet file
    `out_path`: the IDs (mention_id, customer_id) and the events (`HISTORY_COLUMNS` with them,
    stamped `recorded_at`) in one file, the IDs' event null. `clusters` (mention_id,
    cluster_id), `previous` (mention_id, customer_id) and `issued` (customer_id) are SQL
    relations on `con`; None for none."""
    previous = previous or "(SELECT NULL::VARCHAR AS mention_id, NULL::VARCHAR AS customer_id WHERE false)"
    issued = issued or "(SELECT NULL::VARCHAR AS customer_id WHERE false)"
    version = int(based_on_version)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE id_cells AS
        SELECT c.cluster_id, p.customer_id AS old_id, count(*) AS n, min(coalesce(c.mention_id, p.mention_id)) AS first_mention
        FROM {clusters} c FULL JOIN {previous} p ON c.mention_id = p.mention_id
        GROUP BY c.cluster_id, p.customer_id
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE id_anchors AS
        SELECT cluster_id, min(first_mention) AS anchor FROM id_cells WHERE cluster_id IS NOT NULL GROUP BY cluster_id
    """)
    con.execute("""
        CREATE OR REPLACE TEMP TABLE id_overlap AS
        SELECT c.cluster_id, c.old_id, c.n, a.anchor,
               row_number() OVER (PARTITION BY c.old_id ORDER BY c.n DESC, a.anchor) = 1 AS best_home
        FROM id_cells c JOIN id_anchors a USING (cluster_id) WHERE c.old_id IS NOT NULL
    """)
    new_id = "'CU' || substr(sha256({}), 1, 16)"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE id_assigned AS
        WITH kept AS (
            SELECT cluster_id, old_id AS customer_id FROM (
                SELECT cluster_id, old_id, row_number() OVER (PARTITION BY cluster_id ORDER BY n DESC, old_id) AS rank
                FROM id_overlap WHERE best_home
            ) WHERE rank = 1
        ),
        taken AS (SELECT customer_id FROM {issued} UNION SELECT old_id FROM id_cells WHERE old_id IS NOT NULL),
        minted AS (
            SELECT a.cluster_id,
                   CASE WHEN t.customer_id IS NOT NULL THEN {new_id.format(f"a.anchor || '#{version}'")} ELSE {new_id.format("a.anchor")} END AS customer_id
            FROM id_anchors a ANTI JOIN kept k USING (cluster_id)
            LEFT JOIN taken t ON t.customer_id = {new_id.format("a.anchor")}
        )
        SELECT cluster_id, customer_id, true AS kept FROM kept UNION ALL SELECT cluster_id, customer_id, false FROM minted
    """)
    con.execute(f"""
        COPY (
            SELECT c.mention_id, i.customer_id, NULL::VARCHAR AS event, NULL::VARCHAR AS related_customer_id, NULL::BIGINT AS mentions,
                   NULL::BIGINT AS based_on_version, NULL::TIMESTAMPTZ AS recorded_at
            FROM {clusters} c JOIN id_assigned i USING (cluster_id)
            UNION ALL
            SELECT NULL, customer_id, event, related_customer_id, CAST(mentions AS BIGINT), {version}, current_timestamp FROM (
                SELECT 'merged' AS event, o.old_id AS customer_id, i.customer_id AS related_customer_id, o.n AS mentions
                FROM id_overlap o JOIN id_assigned i USING (cluster_id)
                WHERE o.best_home AND i.customer_id <> o.old_id AND o.old_id NOT IN (SELECT customer_id FROM id_assigned WHERE kept)
                UNION ALL
                SELECT 'retired', old_id, NULL, sum(n) FROM id_cells
                WHERE old_id IS NOT NULL AND old_id NOT IN (SELECT old_id FROM id_overlap) GROUP BY old_id
                UNION ALL
                SELECT 'split', customer_id, old_id, n FROM (
                    SELECT i.customer_id, o.old_id, o.n, row_number() OVER (PARTITION BY o.cluster_id ORDER BY o.n DESC, o.old_id) AS rank
                    FROM id_overlap o JOIN id_assigned i USING (cluster_id) WHERE NOT i.kept
                ) WHERE rank = 1
            )
        ) TO '{out_path}' (FORMAT parquet)
    """)
