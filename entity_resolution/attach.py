"""Records that name nobody belong to the vehicle's owner at that date.

A workshop record often carries only the car and a form of address (王先生 on a repair order's
owner line), or no person at all (a warranty claim with only the VIN). Linkage has nothing to
compare for such a mention, so it ends in a cluster of its own and would become a customer of
its own: a person who does not exist, inflating every count downstream.

A cluster is *weak* when none of its mentions holds a mobile, an ID number, an e-mail or a full
name. A weak mention that names another record (a claim's repair order, `refers_to`) points at
that record's customer when that customer is identified. Any other weak mention with a VIN in
an owner's role (buyer, workshop owner, warranty claimant) points at the owner of that VIN at
its date: the identified cluster with the latest owner's mention of the VIN on or before that
date (or, when the car's history starts later, the earliest after it). The weak cluster joins
that owner when all its mentions point at the same one and its surname, if it has one, is among
the owner's surnames (王先生 never joins 李伟's car); otherwise it is left as it was.

A weak cluster that joined nobody is not a customer: nobody can be told apart by it, and as a
customer it would inflate every count, segment and KPI. `split_unidentified` sets such records
aside (`gold/unidentified_records`); a later run that finds their vehicle's owner, or a record
of the same person that names them, takes them in.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

__all__ = ["OWNER_ROLES", "attach_weak_clusters", "flag_identified", "is_strong", "split_unidentified"]

OWNER_ROLES = ("buyer", "owner", "customer")


def is_strong() -> Column:
    """A mention that identifies a person by itself: a mobile, an ID number, an e-mail or a full name."""
    return (
        F.col("mobile").isNotNull() | F.col("mobile_alt").isNotNull() | F.col("id_number").isNotNull()
        | F.col("email").isNotNull() | F.col("name_simplified").isNotNull()
    )


def attach_weak_clusters(mentions: DataFrame, clusters: DataFrame) -> DataFrame:
    """(mention_id, cluster_id) with every weak cluster that points at exactly one owner moved
    into that owner's cluster (see the module docstring). Other clusters are unchanged."""
    tagged = mentions.select(
        "mention_id", "role", "seen_at", "vin", "surname_pinyin", "customer_type", "refers_to", is_strong().alias("strong")
    ).join(clusters, "mention_id")
    kind = tagged.groupBy("cluster_id").agg(
        F.max(F.col("strong").cast("int")).alias("strong"),
        F.collect_set("surname_pinyin").alias("surnames"),
    )
    with_kind = tagged.drop("strong").join(kind, "cluster_id")
    weak = with_kind.filter(F.col("strong") == 0)
    # By reference: the customer of the record this one names, when that customer is identified.
    identified = kind.filter(F.col("strong") == 1).select(F.col("cluster_id").alias("target"), F.col("surnames").alias("target_surnames"))
    referenced = (
        weak.filter(F.col("refers_to").isNotNull())
        .join(clusters.select(F.col("mention_id").alias("refers_to"), F.col("cluster_id").alias("target")), "refers_to")
        .join(identified, "target")
        .select("mention_id", "target", "target_surnames")
    )
    # By the car: its owner at the record's date.
    owners = with_kind.filter((F.col("strong") == 1) & F.col("role").isin(*OWNER_ROLES) & F.col("vin").isNotNull()).select(
        "vin", F.col("seen_at").alias("owner_seen_at"), F.col("cluster_id").alias("owner_cluster"), F.col("surnames").alias("owner_surnames")
    )
    before = F.col("owner_seen_at") <= F.col("seen_at")
    gap = F.abs(F.unix_timestamp("seen_at") - F.unix_timestamp("owner_seen_at"))
    nearest = Window.partitionBy("mention_id").orderBy(before.desc(), gap, "owner_cluster")
    by_car = (
        weak.filter(F.col("role").isin(*OWNER_ROLES) & F.col("vin").isNotNull())
        .select("mention_id", "vin", "seen_at")
        .join(owners, "vin")
        .withColumn("_rank", F.row_number().over(nearest))
        .filter(F.col("_rank") == 1)
        .select("mention_id", "owner_cluster", "owner_surnames")
    )
    by_reference = F.col("target").isNotNull()
    pointed = (
        weak.select("mention_id", "cluster_id", "surname_pinyin", "customer_type")
        .join(referenced, "mention_id", "left")
        .join(by_car, "mention_id", "left")
        .select(
            "cluster_id", "surname_pinyin", "customer_type",
            F.when(by_reference, F.col("target")).otherwise(F.col("owner_cluster")).alias("owner_cluster"),
            F.when(by_reference, F.col("target_surnames")).otherwise(F.col("owner_surnames")).alias("owner_surnames"),
        )
        .filter(F.col("owner_cluster").isNotNull())
        .withColumn(
            "agrees",
            # A record with no customer type is a person: its surname counts (a null here would be skipped by the min below).
            F.col("surname_pinyin").isNull() | F.coalesce(F.col("customer_type") == "company", F.lit(False))
            | F.array_contains("owner_surnames", F.col("surname_pinyin")),
        )
    )
    # Every mention of the weak cluster must point at an owner, the same one, with a matching surname.
    weak_sizes = weak.groupBy("cluster_id").agg(F.count("*").alias("size"))
    moves = (
        pointed.groupBy("cluster_id")
        .agg(
            F.count("*").alias("pointed"),
            F.countDistinct("owner_cluster").alias("owners"),
            F.min(F.col("agrees").cast("int")).alias("agrees"),
            F.first("owner_cluster").alias("owner_cluster"),
        )
        .join(weak_sizes, "cluster_id")
        .filter((F.col("owners") == 1) & (F.col("agrees") == 1) & (F.col("pointed") == F.col("size")))
        .select("cluster_id", "owner_cluster")
    )
    return (
        clusters.join(F.broadcast(moves), "cluster_id", "left")
        .select("mention_id", F.coalesce("owner_cluster", "cluster_id").alias("cluster_id"))
    )


def flag_identified(mentions: DataFrame, clusters: DataFrame) -> DataFrame:
    """(mention_id, cluster_id, identified): whether a mention of the cluster identifies a
    person (`is_strong`), still after `attach_weak_clusters`. One join and one window, so the
    result can be materialised once and split by `split_unidentified` without reading the
    mentions again. A mention missing from `mentions` counts for neither."""
    strong = mentions.select("mention_id", is_strong().cast("int").alias("_strong"))
    cluster = Window.partitionBy("cluster_id")
    return clusters.join(strong, "mention_id", "left").select(
        "mention_id", "cluster_id", F.coalesce(F.max("_strong").over(cluster) == 1, F.lit(True)).alias("identified"),
    )


def split_unidentified(flagged: DataFrame) -> tuple[DataFrame, DataFrame]:
    """`flag_identified`'s rows -> (clusters of identified people, mention_id of every record
    in a cluster that is still weak: no mention of it names anybody)."""
    return (
        flagged.filter(F.col("identified")).select("mention_id", "cluster_id"),
        flagged.filter(~F.col("identified")).select("mention_id"),
    )
