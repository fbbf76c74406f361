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

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

__all__ = ["HISTORY_COLUMNS", "assign_customer_ids", "build_new_customer_id"]

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
