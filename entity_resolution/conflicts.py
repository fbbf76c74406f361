"""Mentions that cannot be one person, whatever links chain them together.

A couple shares a phone and a car. Each is strong evidence, and the match weight adds them as if
they were independent, so a spouse's records outweigh a clearly different name and join the
owner's customer. Two mentions *conflict* when:
- both carry a valid resident ID number and the numbers differ; or
- both carry a personal name written in Chinese characters and the names cannot be spellings of
  one name: no syllable in common (王伟 / 李娜), or the same surname with given names that share
  no syllable (王志强 / 王丽华, 王伟 / 王强: a father and son on one phone). Homophones (王伟 /
  王玮), traditional forms and romanised spellings share syllables and never conflict, nor does a
  given name with a character left out (王志强 / 王强). A given name typed as another sound
  altogether is taken for another person.
A cluster holding a conflicting pair is rebuilt from its links, strongest first, never joining
two mentions that conflict (as a reviewer's cannot-link is kept).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

__all__ = ["conflicting_pairs", "names_conflict"]

# A personal name in Chinese characters only: 2 to 4 of them (companies and romanised names excluded).
_HAN_NAME = r"^[\x{4e00}-\x{9fff}]{2,4}$"


def names_conflict(left: Column, right: Column) -> Column:
    """True when two syllable arrays (a Han name's pinyin, surname first) are different people's
    names by the rules in the module docstring."""
    disjoint = ~F.arrays_overlap(left, right)
    given_apart = (
        (F.size(left) >= 2) & (F.size(right) >= 2) & (left.getItem(0) == right.getItem(0))
        & ~F.arrays_overlap(F.slice(left, 2, 3), F.slice(right, 2, 3))
    )
    return disjoint | given_apart


def conflicting_pairs(mentions: DataFrame, clusters: DataFrame) -> DataFrame:
    """(mention_id_l, mention_id_r), mention_id_l < mention_id_r: the conflicting pairs inside
    `clusters` (mention_id, cluster_id). Names are compared once per distinct name per cluster,
    so a large cluster costs its number of names squared, not its number of mentions."""
    tagged = mentions.select(
        "mention_id",
        F.when(
            F.col("name_simplified").rlike(_HAN_NAME) & F.coalesce(F.col("customer_type") != "company", F.lit(True)),
            F.split("name_pinyin", " "),
        ).alias("syllables"),
        "id_number",
    ).join(clusters, "mention_id")
    named = tagged.filter(F.col("syllables").isNotNull()).select("cluster_id", "mention_id", F.array_join("syllables", " ").alias("name"), "syllables")
    names = named.select("cluster_id", "name", "syllables").distinct()
    name_pairs = (
        names.alias("l").join(names.alias("r"), "cluster_id")
        .filter((F.col("l.name") < F.col("r.name")) & names_conflict(F.col("l.syllables"), F.col("r.syllables")))
        .select("cluster_id", F.col("l.name").alias("name_l"), F.col("r.name").alias("name_r"))
    )
    by_name = named.select("cluster_id", "mention_id", "name")
    by_names = (
        name_pairs.join(by_name.withColumnRenamed("name", "name_l").withColumnRenamed("mention_id", "a"), ["cluster_id", "name_l"])
        .join(by_name.withColumnRenamed("name", "name_r").withColumnRenamed("mention_id", "b"), ["cluster_id", "name_r"])
        .select("a", "b")
    )
    ids = tagged.filter(F.col("id_number").isNotNull()).select("cluster_id", "mention_id", "id_number")
    with_two_ids = ids.groupBy("cluster_id").agg(F.countDistinct("id_number").alias("n")).filter("n > 1").select("cluster_id")
    carried = ids.join(with_two_ids, "cluster_id", "left_semi")
    by_ids = (
        carried.alias("l").join(carried.alias("r"), "cluster_id")
        .filter(F.col("l.id_number") != F.col("r.id_number"))
        .select(F.col("l.mention_id").alias("a"), F.col("r.mention_id").alias("b"))
    )
    both = by_names.unionByName(by_ids)
    return both.select(
        F.least("a", "b").alias("mention_id_l"), F.greatest("a", "b").alias("mention_id_r")
    ).distinct()
