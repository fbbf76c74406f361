"""The crosswalk of every source record to its customer, and the review queue of uncertain pairs."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from cdp.config import ResolutionConfig

__all__ = [
    "REVIEW_COLUMNS", "UNIDENTIFIED_COLUMNS", "XREF_COLUMNS", "build_customer_xref", "build_review_pairs", "build_unidentified_records",
    "label_pairs", "strongest_links",
]

XREF_COLUMNS = ("feed", "record_id", "role", "mention_role", "mention_id", "customer_id", "match_probability")
UNIDENTIFIED_COLUMNS = ("feed", "record_id", "role", "mention_role", "mention_id", "has_vin")
REVIEW_COLUMNS = (
    "kind", "mention_id_l", "mention_id_r", "customer_id_l", "customer_id_r", "match_probability", "match_weight",
)


def label_pairs(pairs: DataFrame, customer_ids: DataFrame, floor: float = 0.0) -> DataFrame:
    """Pairs scoring at least `floor`, with the customer of each side (`customer_id_l`,
    `customer_id_r`). Both builders below take pairs labelled or not; labelling once and
    passing the result to both saves joining every pair to the crosswalk twice."""
    ids = customer_ids.select("mention_id", "customer_id")
    return (
        pairs.filter(F.col("match_probability") >= floor)
        .join(ids.withColumnRenamed("mention_id", "mention_id_l").withColumnRenamed("customer_id", "customer_id_l"), "mention_id_l")
        .join(ids.withColumnRenamed("mention_id", "mention_id_r").withColumnRenamed("customer_id", "customer_id_r"), "mention_id_r")
    )


def _labelled(pairs: DataFrame, customer_ids: DataFrame) -> DataFrame:
    return pairs if {"customer_id_l", "customer_id_r"} <= set(pairs.columns) else label_pairs(pairs, customer_ids)


def _link_ends(links: DataFrame) -> DataFrame:
    """Each link twice, once per end (`mention_id`), with all its columns: in one pass."""
    return links.select(F.explode(F.array("mention_id_l", "mention_id_r")).alias("mention_id"), *links.columns)


def strongest_links(pairs: DataFrame, customer_ids: DataFrame, match_threshold: float, decided: DataFrame | None = None) -> DataFrame:
    """Per mention joined to its customer by links of at least `match_threshold`: the strongest
    of them (`match_probability`, the crosswalk's) and the strongest the model scored and no
    reviewer decided (`reviewable_probability`, null when none: the review queue's weak joins).
    One aggregation over every link, which the two builders share when given it."""
    links = (
        _labelled(pairs.filter(F.col("match_probability") >= match_threshold), customer_ids)
        .filter(F.col("customer_id_l") == F.col("customer_id_r"))
    )
    reviewable = F.col("origin") == "model" if "origin" in links.columns else F.lit(True)
    if decided is not None:
        flags = F.broadcast(decided.select("mention_id_l", "mention_id_r", F.lit(True).alias("_decided")))
        links = links.join(flags, ["mention_id_l", "mention_id_r"], "left")
        reviewable = reviewable & F.col("_decided").isNull()
    return _link_ends(links).groupBy("mention_id").agg(
        F.max("match_probability").alias("match_probability"),
        F.max(F.when(reviewable, F.col("match_probability"))).alias("reviewable_probability"),
    )


def build_customer_xref(
    mentions: DataFrame, customer_ids: DataFrame, pairs: DataFrame, match_threshold: float, strongest: DataFrame | None = None
) -> DataFrame:
    """One row per person mention: feed, record_id, role (`primary` for the record's own
    customer, `contact` for a repair order's contact person), mention_role, mention_id,
    customer_id, match_probability (the strongest link that joined it to its customer; null
    when it stands alone or joined its vehicle's owner without a scored pair, see
    `entity_resolution.attach`). `strongest`: `strongest_links` of the same pairs, if built."""
    ids = customer_ids.select("mention_id", "customer_id")
    if strongest is None:
        strongest = strongest_links(pairs, ids, match_threshold)
    return (
        mentions.select("mention_id", "feed", "record_id", F.col("role").alias("mention_role"))
        .join(ids, "mention_id")
        .join(strongest.select("mention_id", "match_probability"), "mention_id", "left")
        .withColumn("role", F.when(F.col("mention_role") == "contact", "contact").otherwise("primary"))
        .select(*XREF_COLUMNS)
    )


def build_unidentified_records(mentions: DataFrame, unidentified: DataFrame) -> DataFrame:
    """One row per person mention that names nobody and joined no owner (`split_unidentified`):
    feed, record_id, role and mention_role as in the crosswalk, and whether it carries a VIN
    (one whose owner is not known yet) or nothing at all."""
    return (
        mentions.join(unidentified.select("mention_id"), "mention_id", "left_semi")
        .select("mention_id", "feed", "record_id", F.col("role").alias("mention_role"), F.col("vin").isNotNull().alias("has_vin"))
        .withColumn("role", F.when(F.col("mention_role") == "contact", "contact").otherwise("primary"))
        .select(*UNIDENTIFIED_COLUMNS)
    )


def build_review_pairs(
    pairs: DataFrame, customer_ids: DataFrame, config: ResolutionConfig, decided: DataFrame | None = None, strongest: DataFrame | None = None
) -> DataFrame:
    """Decisions worth a reviewer's look, not yet decided (see `REVIEW_COLUMNS`), of two kinds:

    - `near_miss`: two customers kept apart although a pair of their mentions scored in
      [review low, match threshold); one row per customer pair, its strongest pair;
    - `weak_join`: a mention joined to its customer only by links in [match threshold,
      review high); one row per such mention, its strongest link.

    `strongest`: `strongest_links` of the same pairs and `decided`, if built.
    """
    low, high = config.review_band
    threshold = config.match_threshold
    ids = customer_ids.select("mention_id", "customer_id")
    scored = pairs.filter(F.col("origin") == "model")
    if decided is not None:
        scored = scored.join(decided.select("mention_id_l", "mention_id_r"), ["mention_id_l", "mention_id_r"], "left_anti")
    scored = _labelled(scored.filter(F.col("match_probability") >= min(low, threshold)), ids)
    strongest_first = [F.desc("match_probability"), "mention_id_l", "mention_id_r"]
    near = scored.filter(
        (F.col("match_probability") >= low) & (F.col("match_probability") < threshold) & (F.col("customer_id_l") != F.col("customer_id_r"))
    ).withColumn("_pair", F.array_sort(F.array("customer_id_l", "customer_id_r")))
    near = (
        near.withColumn("_rank", F.row_number().over(Window.partitionBy("_pair").orderBy(*strongest_first)))
        .filter("_rank = 1")
        .withColumn("kind", F.lit("near_miss"))
    )
    joined = scored.filter((F.col("customer_id_l") == F.col("customer_id_r")) & (F.col("match_probability") >= threshold))
    # Nearly every joined mention has a strong link: find the few whose strongest is weak
    # with an aggregate, and rank links only for them (a window over all would sort every
    # link); their links are all weak, so only the weak ones are read again.
    if strongest is None:
        strongest = strongest_links(pairs, ids, threshold, decided)
    weakest = strongest.filter(F.col("reviewable_probability") < high).select("mention_id", F.col("reviewable_probability").alias("match_probability"))
    weak = (
        _link_ends(joined).filter(F.col("match_probability") < high).join(weakest, ["mention_id", "match_probability"], "left_semi")
        .withColumn("_rank", F.row_number().over(Window.partitionBy("mention_id").orderBy(*strongest_first)))
        .filter(F.col("_rank") == 1)
        .withColumn("kind", F.lit("weak_join"))
    )
    return near.select(*REVIEW_COLUMNS).unionByName(weak.select(*REVIEW_COLUMNS)).dropDuplicates(["kind", "mention_id_l", "mention_id_r"])
