"""Reviewers' must-link / cannot-link decisions, kept in a YAML file under `conf/`.

Decisions name person mentions by `feed:record_id:role` (no personal data in the file).
A must-link becomes an edge of probability 1; a cannot-link removes the pair's own edge and
then keeps the two apart even when other records chain them together: the affected clusters
are rebuilt greedily from their strongest links, skipping any link that would join a
cannot-link pair.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.config import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Decision",
    "Overrides",
    "apply_changes",
    "drop_confirmed",
    "enforce_cannot_link",
    "greedy_components",
    "keep_apart",
    "load_overrides",
    "override_changes",
    "record_decision",
    "with_overrides",
]

log = logging.getLogger(__name__)

_MENTION_ID = r"^[a-z_]+:[^:]+:[a-z_]+$"


class Decision(BaseModel):
    """One reviewer decision about two mentions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    left: str = Field(pattern=_MENTION_ID)
    right: str = Field(pattern=_MENTION_ID)
    note: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None

    @model_validator(mode="after")
    def _two_mentions(self) -> Decision:
        if self.left == self.right:
            raise ValueError("left and right must be different mentions")
        return self

    @property
    def pair(self) -> tuple[str, str]:
        return (min(self.left, self.right), max(self.left, self.right))


class Overrides(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    must_link: list[Decision] = Field(default_factory=list)
    cannot_link: list[Decision] = Field(default_factory=list)

    @model_validator(mode="after")
    def _no_contradiction(self) -> Overrides:
        both = {d.pair for d in self.must_link} & {d.pair for d in self.cannot_link}
        if both:
            raise ValueError(f"pairs in both must_link and cannot_link: {sorted(both)}")
        return self

    def is_empty(self) -> bool:
        return not (self.must_link or self.cannot_link)


def load_overrides(path: str | Path) -> Overrides:
    """The decisions file; a missing file means no decisions. Errors name the file and entry."""
    path = Path(path)
    if not path.exists():
        return Overrides()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    try:
        return Overrides.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()]
        raise ConfigError("\n".join(lines)) from exc


def record_decision(path: str | Path, left: str, right: str, must_link: bool, user: str, at: dt.datetime) -> Overrides:
    """Add a reviewer's decision about two mentions to the file (replacing any earlier one about
    the same pair), with who made it and when; the next resolve run honours it. The file is
    rewritten atomically under a lock, so two reviewers deciding at once both count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = load_overrides(path)
        try:
            decision = Decision(left=left, right=right, decided_by=user, decided_at=at.isoformat(timespec="seconds"))
        except ValidationError as exc:
            raise ValueError(f"mentions are named feed:record_id:role, two different ones ({exc.errors()[0]['msg']})") from None
        keep = [d for d in current.must_link if d.pair != decision.pair], [d for d in current.cannot_link if d.pair != decision.pair]
        updated = Overrides(must_link=keep[0] + [decision] if must_link else keep[0], cannot_link=keep[1] if must_link else keep[1] + [decision])
        text = yaml.safe_dump(updated.model_dump(mode="json", exclude_none=True), allow_unicode=True, sort_keys=False)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    return updated


def _pairs_frame(spark: SparkSession, decisions: list[Decision]) -> DataFrame:
    return spark.createDataFrame([d.pair for d in decisions], "mention_id_l string, mention_id_r string")


def override_changes(spark: SparkSession, overrides: Overrides, mention_ids: DataFrame) -> DataFrame | None:
    """Every pair a reviewer decided (mention_id_l < mention_id_r, match_probability): 1.0 for
    a must-link between known mentions (`mention_ids`: mention_id), null for a cannot-link,
    whose own edge is removed. None when there are no decisions."""
    if overrides.is_empty():
        return None
    removed = _pairs_frame(spark, overrides.cannot_link).select("*", F.lit(None).cast("double").alias("match_probability"))
    if not overrides.must_link:
        return removed
    known = mention_ids.select("mention_id")
    forced = (
        _pairs_frame(spark, overrides.must_link)
        .join(known.withColumnRenamed("mention_id", "mention_id_l"), "mention_id_l", "left_semi")
        .join(known.withColumnRenamed("mention_id", "mention_id_r"), "mention_id_r", "left_semi")
        .select("mention_id_l", "mention_id_r", F.lit(1.0).alias("match_probability"))
    )
    return removed.unionByName(forced)


def apply_changes(pairs: DataFrame, changes: DataFrame | None) -> DataFrame:
    """Scored pairs (mention_id_l < mention_id_r, match_probability, match_weight) with
    `override_changes` applied, plus `origin` (`model` | `must_link`). Partitions of the pairs
    keep their order; the must-links come in partitions of their own, each in order too."""
    pairs = pairs.withColumn("origin", F.lit("model"))
    if changes is None:
        return pairs
    forced = changes.filter(F.col("match_probability").isNotNull()).select(
        "mention_id_l", "mention_id_r", "match_probability", F.lit(None).cast("double").alias("match_weight"), F.lit("must_link").alias("origin")
    )
    # The reviewers' few pairs go to every task: the scored pairs are not shuffled.
    decided = F.broadcast(changes.select("mention_id_l", "mention_id_r"))
    return pairs.join(decided, ["mention_id_l", "mention_id_r"], "left_anti").unionByName(
        forced.sortWithinPartitions("mention_id_l", "mention_id_r")
    )


def with_overrides(spark: SparkSession, pairs: DataFrame, overrides: Overrides, mention_ids: DataFrame) -> DataFrame:
    """Scored pairs (mention_id_l < mention_id_r, match_probability, match_weight) ->
    the same plus `origin` (`model` | `must_link`): cannot-link pairs removed, must-link
    pairs between known mentions (`mention_ids`: mention_id) set to probability 1."""
    return apply_changes(pairs, override_changes(spark, overrides, mention_ids))


def enforce_cannot_link(
    spark: SparkSession, clusters: DataFrame, edges: DataFrame, overrides: Overrides, threshold: float, work: str
) -> DataFrame:
    """(mention_id, cluster_id) with no cluster holding both mentions of a reviewer's cannot-link
    pair. `edges` are the scored pairs with overrides applied; `work`, a scratch folder."""
    if not overrides.cannot_link:
        return clusters
    return keep_apart(spark, clusters, edges, _pairs_frame(spark, overrides.cannot_link), threshold, work)


def drop_confirmed(spark: SparkSession, pairs: DataFrame, overrides: Overrides) -> DataFrame:
    """`pairs` (mention_id_l < mention_id_r) without those a reviewer confirmed as one person:
    a must-link outranks any rule that would keep two mentions apart."""
    if not overrides.must_link:
        return pairs
    return pairs.join(_pairs_frame(spark, overrides.must_link), ["mention_id_l", "mention_id_r"], "left_anti")


def keep_apart(spark: SparkSession, clusters: DataFrame, edges: DataFrame, forbidden: DataFrame, threshold: float, work: str) -> DataFrame:
    """(mention_id, cluster_id) with no cluster holding both mentions of a `forbidden` pair
    (mention_id_l < mention_id_r).

    Only clusters that hold such a pair are rebuilt, each greedily from its own links of at
    least `threshold`, one cluster per Python call on the executors: nothing passes through the
    driver, whatever the number or size of the clusters. `work` is a scratch folder.
    """
    from entity_resolution.work import checkpoint

    cluster_l = clusters.select(F.col("mention_id").alias("mention_id_l"), F.col("cluster_id").alias("cluster_l"))
    cluster_r = clusters.select(F.col("mention_id").alias("mention_id_r"), F.col("cluster_id").alias("cluster_r"))
    inside = checkpoint(
        spark,
        forbidden.join(cluster_l, "mention_id_l").join(cluster_r, "mention_id_r")
        .filter(F.col("cluster_l") == F.col("cluster_r"))
        .select(F.col("cluster_l").alias("cluster_id"), F.lit("forbidden").alias("kind"), F.col("mention_id_l").alias("a"),
                F.col("mention_id_r").alias("b"), F.lit(None).cast("double").alias("p")),
        f"{work}/forbidden_inside",
    )
    broken = inside.select("cluster_id").distinct()
    count = broken.count()
    if not count:
        return clusters
    log.info("kept apart: rebuilding %d cluster(s) that hold a pair that must stay apart", count)
    members = clusters.join(broken, "cluster_id", "left_semi")
    member_l = members.select(F.col("mention_id").alias("mention_id_l"), "cluster_id")
    member_r = members.select(F.col("mention_id").alias("mention_id_r"), F.col("cluster_id").alias("cluster_r"))
    links = (
        edges.filter(F.col("match_probability") >= threshold)
        .join(member_l, "mention_id_l").join(member_r, "mention_id_r")
        .filter(F.col("cluster_id") == F.col("cluster_r"))
        .select("cluster_id", F.lit("link").alias("kind"), F.col("mention_id_l").alias("a"), F.col("mention_id_r").alias("b"),
                F.col("match_probability").alias("p"))
    )
    nodes = members.select("cluster_id", F.lit("node").alias("kind"), F.col("mention_id").alias("a"), F.lit(None).cast("string").alias("b"),
                           F.lit(None).cast("double").alias("p"))
    fixed = checkpoint(
        spark,
        nodes.unionByName(links).unionByName(inside).groupBy("cluster_id").applyInPandas(_rebuild, "mention_id string, cluster_id string"),
        f"{work}/rebuilt_clusters",
    )
    return clusters.join(fixed.select("mention_id"), "mention_id", "left_anti").unionByName(fixed)


def _rebuild(rows: pd.DataFrame) -> pd.DataFrame:
    """One cluster's rows (cluster_id, kind `node` | `link` | `forbidden`, mention a, mention
    b, probability p) -> its mentions relabelled by `greedy_components`."""
    import pandas as pd  # here, not at the top: the web app imports this module without pandas

    nodes = sorted(rows.loc[rows["kind"] == "node", "a"])
    links = rows[rows["kind"] == "link"].sort_values(["p", "a", "b"], ascending=[False, True, True])
    forbidden = rows[rows["kind"] == "forbidden"]
    labels = greedy_components(nodes, list(zip(links["a"], links["b"], links["p"])), set(zip(forbidden["a"], forbidden["b"])))
    return pd.DataFrame({"mention_id": list(labels), "cluster_id": list(labels.values())})


def greedy_components(nodes: list[str], edges: list[tuple[str, str, float]], forbidden: set[tuple[str, str]]) -> dict[str, str]:
    """Union-find over edges strongest first, refusing any union that joins a forbidden pair.
    Each component is labelled by its smallest member."""
    parent = {n: n for n in nodes}
    members = {n: {n} for n in nodes}
    # Per component: every node some member of it must stay apart from.
    apart: dict[str, set[str]] = {n: set() for n in nodes}
    for left, right in forbidden:
        if left in apart and right in apart:
            apart[left].add(right)
            apart[right].add(left)

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for left, right, _ in edges:
        a, b = find(left), find(right)
        if a == b or not apart[a].isdisjoint(members[b]):
            continue
        if len(members[a]) < len(members[b]):
            a, b = b, a
        parent[b] = a
        members[a] |= members.pop(b)
        apart[a] |= apart.pop(b)
    return {n: "cl:" + min(members[find(n)]) for n in nodes}
