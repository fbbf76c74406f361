"""Score a crosswalk (mention -> cluster) against ground truth (mention -> person).

Pair counts come from group sizes (n choose 2), so no pairs are ever materialised: a
true-positive pair is two mentions sharing both their predicted cluster and their person.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

__all__ = ["crosswalk_clusters", "pairwise_scores", "truth_mentions"]


def _pairs(df: DataFrame, *keys: str) -> int:
    n = F.count("*")
    value = df.groupBy(*keys).agg((n * (n - 1) / 2).alias("pairs")).agg(F.sum("pairs")).first()[0]
    return int(value or 0)


def crosswalk_clusters(xref: DataFrame, unidentified: DataFrame | None = None) -> DataFrame:
    """(mention_id, cluster_id) of a resolved lake: each customer's mentions one cluster
    (`gold/customer_xref`), each unidentified record one of its own
    (`gold/unidentified_records`): it was joined to nobody, so it is scored that way."""
    clusters = xref.select("mention_id", F.col("customer_id").alias("cluster_id"))
    if unidentified is None:
        return clusters
    return clusters.unionByName(unidentified.select("mention_id", F.concat(F.lit("unidentified:"), "mention_id").alias("cluster_id")))


def truth_mentions(truth: DataFrame) -> DataFrame:
    """`truth/mentions.csv` rows (feed, record_id, role, person_id) -> (mention_id, person_id)."""
    return truth.select(F.concat_ws(":", "feed", "record_id", "role").alias("mention_id"), "person_id")


def pairwise_scores(xref: DataFrame, truth: DataFrame) -> dict[str, float]:
    """Pairwise precision, recall and F1 plus cluster-level figures.

    `xref` has (mention_id, cluster_id); `truth` has (mention_id, person_id). Mentions present
    in only one of them are left out.
    """
    joined = xref.select("mention_id", "cluster_id").join(truth.select("mention_id", "person_id"), "mention_id").cache()
    true_positive = _pairs(joined, "cluster_id", "person_id")
    predicted = _pairs(joined, "cluster_id")
    actual = _pairs(joined, "person_id")
    precision = true_positive / predicted if predicted else 1.0
    recall = true_positive / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    # A person is resolved exactly when their mentions form one cluster holding nobody else.
    per_person = joined.groupBy("person_id").agg(F.countDistinct("cluster_id").alias("clusters"), F.count("*").alias("n"))
    per_cluster = joined.groupBy("cluster_id").agg(F.countDistinct("person_id").alias("people"))
    clean_clusters = joined.join(per_cluster.filter("people = 1"), "cluster_id").select("person_id").distinct()
    exact = per_person.filter("clusters = 1").join(clean_clusters, "person_id").count()
    people = per_person.count()
    scores = {
        "pairwise_precision": precision,
        "pairwise_recall": recall,
        "pairwise_f1": f1,
        "true_positive_pairs": float(true_positive),
        "predicted_pairs": float(predicted),
        "true_pairs": float(actual),
        "mentions": float(joined.count()),
        "clusters": float(joined.select("cluster_id").distinct().count()),
        "people": float(people),
        "exact_cluster_share": exact / people if people else 1.0,
    }
    joined.unpersist()
    return scores
