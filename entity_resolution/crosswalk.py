"""From clusters to customer IDs and the crosswalk of every source record to its customer."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

__all__ = ["build_customer_xref", "with_cluster_customer_id"]


def with_cluster_customer_id(clusters: DataFrame) -> DataFrame:
    """(mention_id, cluster_id) -> adds `customer_id`, a hash of the cluster's smallest
    mention id: the same data always gives the same IDs, whatever the engine's cluster labels."""
    anchor = F.min("mention_id").over(Window.partitionBy("cluster_id"))
    return clusters.withColumn("customer_id", F.concat(F.lit("CU"), F.substring(F.sha2(anchor, 256), 1, 16)))


def build_customer_xref(mentions: DataFrame, clusters: DataFrame, pairs: DataFrame, match_threshold: float) -> DataFrame:
    """One row per person mention: feed, record_id, role (`primary` for the record's own
    customer, else the mention's role), mention_role, customer_id, match_probability (the
    strongest link that joined it to its customer; null when it stands alone)."""
    ids = with_cluster_customer_id(clusters).select("mention_id", "customer_id")
    links = pairs.filter(F.col("match_probability") >= match_threshold)
    best = (
        links.select(F.col("mention_id_l").alias("mention_id"), "match_probability")
        .unionByName(links.select(F.col("mention_id_r").alias("mention_id"), "match_probability"))
        .groupBy("mention_id")
        .agg(F.max("match_probability").alias("match_probability"))
    )
    return (
        mentions.select("mention_id", "feed", "record_id", F.col("role").alias("mention_role"))
        .join(ids, "mention_id", "left")
        .join(best, "mention_id", "left")
        .withColumn("customer_id", F.coalesce("customer_id", F.concat(F.lit("CU"), F.substring(F.sha2("mention_id", 256), 1, 16))))
        .withColumn("role", F.when(F.col("mention_role") == "contact", "contact").otherwise("primary"))
        .select("feed", "record_id", "role", "mention_role", "mention_id", "customer_id", "match_probability")
    )
