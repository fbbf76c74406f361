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

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.config import ConfigError

__all__ = ["Decision", "Overrides", "drop_confirmed", "enforce_cannot_link", "greedy_components", "keep_apart", "load_overrides", "record_decision", "with_overrides"]

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


def with_overrides(spark: SparkSession, pairs: DataFrame, overrides: Overrides, mention_ids: DataFrame) -> DataFrame:
    """Scored pairs (mention_id_l < mention_id_r, match_probability, match_weight) ->
    the same plus `origin` (`model` | `must_link`): cannot-link pairs removed, must-link
    pairs between known mentions (`mention_ids`: mention_id) set to probability 1."""
    pairs = pairs.withColumn("origin", F.lit("model"))
    if overrides.cannot_link:
        pairs = pairs.join(_pairs_frame(spark, overrides.cannot_link), ["mention_id_l", "mention_id_r"], "left_anti")
    if not overrides.must_link:
        return pairs
    known = mention_ids.select("mention_id")
    forced = (
        _pairs_frame(spark, overrides.must_link)
        .join(known.withColumnRenamed("mention_id", "mention_id_l"), "mention_id_l", "left_semi")
        .join(known.withColumnRenamed("mention_id", "mention_id_r"), "mention_id_r", "left_semi")
        .select(
            "mention_id_l",
            "mention_id_r",
            F.lit(1.0).alias("match_probability"),
            F.lit(None).cast("double").alias("match_weight"),
            F.lit("must_link").alias("origin"),
        )
    )
    return pairs.join(forced.select("mention_id_l", "mention_id_r"), ["mention_id_l", "mention_id_r"], "left_anti").unionByName(forced)


def enforce_cannot_link(
    spark: SparkSession, clusters: DataFrame, edges: DataFrame, overrides: Overrides, threshold: float
) -> DataFrame:
    """(mention_id, cluster_id) with no cluster holding both mentions of a reviewer's cannot-link
    pair. `edges` are the scored pairs with overrides applied."""
    if not overrides.cannot_link:
        return clusters
    return keep_apart(spark, clusters, edges, _pairs_frame(spark, overrides.cannot_link), threshold)


def drop_confirmed(spark: SparkSession, pairs: DataFrame, overrides: Overrides) -> DataFrame:
    """`pairs` (mention_id_l < mention_id_r) without those a reviewer confirmed as one person:
    a must-link outranks any rule that would keep two mentions apart."""
    if not overrides.must_link:
        return pairs
    return pairs.join(_pairs_frame(spark, overrides.must_link), ["mention_id_l", "mention_id_r"], "left_anti")


def keep_apart(spark: SparkSession, clusters: DataFrame, edges: DataFrame, forbidden: DataFrame, threshold: float) -> DataFrame:
    """(mention_id, cluster_id) with no cluster holding both mentions of a `forbidden` pair
    (mention_id_l < mention_id_r).

    Only clusters that hold such a pair are rebuilt, greedily from their links of at least
    `threshold`, on the driver: they are small clusters, never the whole table.
    """
    cluster_l = clusters.select(F.col("mention_id").alias("mention_id_l"), F.col("cluster_id").alias("cluster_l"))
    cluster_r = clusters.select(F.col("mention_id").alias("mention_id_r"), F.col("cluster_id").alias("cluster_r"))
    inside = (
        forbidden.join(cluster_l, "mention_id_l").join(cluster_r, "mention_id_r")
        .filter(F.col("cluster_l") == F.col("cluster_r"))
        .select("mention_id_l", "mention_id_r", F.col("cluster_l").alias("cluster_id"))
    )
    inside_rows = inside.collect()
    if not inside_rows:
        return clusters
    broken = spark.createDataFrame(sorted({(r.cluster_id,) for r in inside_rows}), "cluster_id string")
    members = clusters.join(broken, "cluster_id", "left_semi")
    cluster_of = {r.mention_id: r.cluster_id for r in members.collect()}
    links = (
        edges.filter(F.col("match_probability") >= threshold)
        .join(members.select(F.col("mention_id").alias("mention_id_l")), "mention_id_l", "left_semi")
        .join(members.select(F.col("mention_id").alias("mention_id_r")), "mention_id_r", "left_semi")
        .select("mention_id_l", "mention_id_r", "match_probability")
        .collect()
    )
    rebuilt = greedy_components(
        sorted(cluster_of),
        sorted(((r.mention_id_l, r.mention_id_r, r.match_probability) for r in links), key=lambda e: (-e[2], e[0], e[1])),
        {(r.mention_id_l, r.mention_id_r) for r in inside_rows},
    )
    log.info("kept apart: rebuilt %d cluster(s) into %d", len(set(cluster_of.values())), len(set(rebuilt.values())))
    fixed = spark.createDataFrame(sorted(rebuilt.items()), "mention_id string, cluster_id string")
    return clusters.join(fixed.select("mention_id"), "mention_id", "left_anti").unionByName(fixed)


def greedy_components(nodes: list[str], edges: list[tuple[str, str, float]], forbidden: set[tuple[str, str]]) -> dict[str, str]:
    """Union-find over edges strongest first, refusing any union that joins a forbidden pair.
    Each component is labelled by its smallest member."""
    parent = {n: n for n in nodes}
    members = {n: {n} for n in nodes}

    def find(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for left, right, _ in edges:
        a, b = find(left), find(right)
        if a == b:
            continue
        if any((min(x, y), max(x, y)) in forbidden for x in members[a] for y in members[b]):
            continue
        if len(members[a]) < len(members[b]):
            a, b = b, a
        parent[b] = a
        members[a] |= members.pop(b)
    return {n: "cl:" + min(members[find(n)]) for n in nodes}
