"""Incremental resolution: new and changed mentions linked to existing customers with the
saved model, and only the customers they touch rewritten in the gold tables."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp import catalog
from cdp.config import ResolutionConfig
from cdp.contract import PII_COLUMNS
from cdp.lake import (
    Lake,
    append_once,
    commit_metadata,
    noting_commits,
    overwrite_table,
    read_table,
    replace_rows,
    side_by_side,
    table_exists,
    table_version,
)
from cdp.reader import text_table
from cdp.table_log import table_files, table_rows
from entity_resolution.crosswalk import build_review_pairs
from entity_resolution.mentions import MENTION_COLUMNS, MENTION_SOURCES, build_person_mentions
from entity_resolution.overrides import Overrides
from entity_resolution.work import ResolutionTables, checkpoint, decided_pairs

if TYPE_CHECKING:
    from entity_resolution.engines import LinkageEngine

log = logging.getLogger(__name__)

__all__ = ["build_mentions", "incremental_clusters", "incremental_scope", "incremental_scope_in_duckdb", "write_touched_golden"]


def build_mentions(spark: SparkSession, lake: Lake, tables: ResolutionTables, incremental: bool, based_on: int) -> tuple[DataFrame, DataFrame | None]:
    """Write `gold/person_mentions` from silver; return it and, on an incremental run, the
    ids of mentions that are new, changed or gone since the previous run.

    The table's latest commit records the silver versions it was built from. When it does,
    only the silver rows written since (the files added to silver) are built again and
    compared; the rest, unchanged, keep their mentions. A count of every silver row tells
    whether a record went meanwhile; then, or with no record, every mention is built and
    compared with the table's."""
    versions = {
        feed: version for feed in sorted({s.feed for s in MENTION_SOURCES})
        if (version := table_version(spark, lake.path(catalog.silver(feed)))) >= 0
    }
    silver = {feed: read_table(spark, lake.path(catalog.silver(feed)), version=version) for feed, version in versions.items()}
    stamp = json.dumps({"silver_versions": versions}, sort_keys=True)
    if not (incremental and table_exists(spark, tables.mentions)):
        overwrite_table(spark, build_person_mentions(silver), tables.mentions, no_stats_columns=sorted(PII_COLUMNS), user_metadata=stamp)
        return read_table(spark, tables.mentions), None
    stored_version = table_version(spark, tables.mentions)
    stored = read_table(spark, tables.mentions, version=stored_version)
    added = _written_since(spark, lake, commit_metadata(spark, tables.mentions), versions)
    diff = None
    if added is not None:
        # Only the rows written since, against their stored mentions.
        diff = _mention_diff(spark, build_person_mentions(added) if added else None, stored, tables, outer=False)
        inserted = diff.filter(F.col("_old").isNull()).count()
        expected = sum(table_rows(spark, lake.path(catalog.silver(s.feed)), versions[s.feed]) for s in MENTION_SOURCES if s.feed in versions)
        if table_rows(spark, tables.mentions, stored_version) + inserted != expected:
            log.info("mentions: silver lost records since the last build: every mention compared")
            diff = None
    if diff is None:
        diff = _mention_diff(spark, build_person_mentions(silver), stored, tables, outer=True)
    upserts = diff.filter(~F.col("_gone")).select(*MENTION_COLUMNS)
    gone = diff.filter(F.col("_gone")).select("mention_id")
    # Kept per crosswalk version, so a run that stops after replacing the mentions still
    # knows on its re-run which of them changed.
    changed_path = f"{tables.work}/changed_mentions"
    diff.select("mention_id").withColumn("based_on", F.lit(based_on)).write.mode("append").parquet(changed_path)
    changed = spark.read.parquet(changed_path).filter(F.col("based_on") == based_on).select("mention_id").distinct()
    if not diff.isEmpty():
        with noting_commits(spark, stamp):
            if diff.filter(F.col("_old").isNotNull() | F.col("_gone")).isEmpty():  # new mentions only
                append_once(spark, upserts, tables.mentions, "resolution-mentions", stored_version)
            else:
                replace_rows(spark, upserts, tables.mentions, ["mention_id"], gone, f"{tables.work}/mentions_source")
    return read_table(spark, tables.mentions), changed


def _written_since(spark: SparkSession, lake: Lake, recorded: str | None, versions: dict[str, int]) -> dict[str, DataFrame] | None:
    """The rows of each silver feed (as of `versions`) in files added since the versions
    `recorded` (a mentions commit's metadata) names, by feed with any; None when there is no
    such record or an older version cannot be read."""
    if not recorded:
        return None
    try:
        since: dict[str, int] = json.loads(recorded)["silver_versions"]
    except (ValueError, KeyError, TypeError):  # another writer's metadata
        return None
    if set(since) - set(versions):  # a feed's silver table went
        return None
    added: dict[str, DataFrame] = {}
    for feed, version in versions.items():
        if since.get(feed) == version:
            continue
        path = lake.path(catalog.silver(feed))
        try:
            before = table_files(spark, path, since[feed]) if feed in since else set()
        except Exception as exc:  # noqa: BLE001 - the log of that version is gone (cleaned up): every mention is compared
            log.info("mentions: silver %s as of version %d is unreadable (%s): every mention compared", feed, since[feed], type(exc).__name__)
            return None
        files = sorted(table_files(spark, path, version) - before)
        log.info("mentions: silver %s: %d file(s) written since version %s", feed, len(files), since.get(feed, "none"))
        if files:
            added[feed] = spark.read.schema(read_table(spark, path, version=version).schema).parquet(*files)
    return added


def _mention_diff(spark: SparkSession, built: DataFrame | None, stored: DataFrame, tables: ResolutionTables, *, outer: bool) -> DataFrame:
    """The mentions of `built` that are new or differ from `stored`'s (with their values,
    `_old` null when new), and with `outer` (when `built` holds every mention) the stored
    ones it lacks (`_gone`), materialised once for the writes."""
    if built is None:
        built = spark.createDataFrame([], stored.select(*MENTION_COLUMNS).schema)
    new_print, old_print = _fingerprint().alias("_new"), _fingerprint().alias("_old")
    ours = built.select("*", new_print)
    theirs = stored.select("mention_id", old_print)
    if not outer:
        # Materialised first: its size then tells Spark to send its ids to every task of the
        # stored mentions' scan, not to shuffle both.
        ours = checkpoint(spark, ours, f"{tables.work}/mentions_written_since")
        ids = ours.select("mention_id")
        if stored.select("mention_id").join(ids, "mention_id", "left_semi").isEmpty():
            theirs = theirs.limit(0)  # new mentions only: no stored values to read
        else:
            theirs = stored.join(ids, "mention_id", "left_semi").select("mention_id", old_print)
    diff = ours.join(theirs, "mention_id", "full_outer" if outer else "left").filter(~F.col("_new").eqNullSafe(F.col("_old")))
    return checkpoint(spark, diff.select(*MENTION_COLUMNS, "_old", F.col("_new").isNull().alias("_gone")), f"{tables.work}/mention_diff")


def _fingerprint() -> Column:
    """A 64-bit hash of a mention's values and of which of them are null (the hash skips nulls:
    without the mask, a value moved to the next column would not count as a change)."""
    nulls = F.concat(*[F.when(F.col(c).isNull(), F.lit("0")).otherwise(F.lit("1")) for c in MENTION_COLUMNS])
    return F.xxhash64(*MENTION_COLUMNS, nulls)


def incremental_scope(
    mentions: DataFrame, previous: DataFrame, fresh: DataFrame, new_pairs: DataFrame, overrides: Overrides, threshold: float
) -> DataFrame:
    """mention_id of every mention an incremental run must cluster again; every other mention
    keeps its customer as it is.

    `previous` is the crosswalk the run started from (mention_id, customer_id) and `fresh`
    the ids of mentions that are new, changed or gone. The scope holds them and every
    mention of a customer that
    - holds one of them, has a mention on a new link of at least `threshold` (a must-link
      among them) or on a reviewer's cannot-link: these customers can grow, merge or split;
    - holds a VIN that a mention of those customers or a fresh one holds, or the record such
      a mention refers to: a record that names nobody may join its car's owner or the
      customer of the record it names, wherever that customer is.
    Outside the scope nothing can change: such a customer is one node no new link touches,
    it holds no pair that must stay apart (the run that made it kept them apart), and no
    record that names nobody can join it."""
    spark = mentions.sparkSession
    fresh = fresh.select("mention_id")
    linked = new_pairs.filter(F.col("match_probability") >= threshold)
    seeds = fresh.union(linked.select(F.col("mention_id_l").alias("mention_id"))).union(linked.select(F.col("mention_id_r").alias("mention_id")))
    decided = sorted({m for d in overrides.cannot_link for m in (d.left, d.right)})
    if decided:
        seeds = seeds.union(spark.createDataFrame([(m,) for m in decided], "mention_id string"))
    grown = previous.join(seeds, "mention_id", "left_semi").select("customer_id")
    members = previous.join(grown, "customer_id", "left_semi").select("mention_id").union(fresh)
    clustered = mentions.join(members, "mention_id", "left_semi")
    vins = clustered.filter(F.col("vin").isNotNull()).select("vin")
    hosts = (
        mentions.filter(F.col("vin").isNotNull()).join(vins, "vin", "left_semi").select("mention_id")
        .union(clustered.filter(F.col("refers_to").isNotNull()).select(F.col("refers_to").alias("mention_id")))
    )
    hosting = previous.join(hosts, "mention_id", "left_semi").select("customer_id")
    return previous.join(grown.union(hosting), "customer_id", "left_semi").select("mention_id").union(fresh).distinct()


def incremental_scope_in_duckdb(con: Any, mentions: str, previous: str, fresh: str, new_pairs: str, overrides: Overrides, threshold: float) -> str:
    """`incremental_scope` as a DuckDB query on `con` (returned, not run): `mentions`
    (mention_id, vin, refers_to), `previous`, `fresh` and `new_pairs` name relations there."""
    text_table(con, "scope_decided", ("mention_id",), [(m,) for m in sorted({m for d in overrides.cannot_link for m in (d.left, d.right)})])
    return f"""
        WITH fresh AS (SELECT DISTINCT f.mention_id FROM {fresh} f),
        linked AS (SELECT p.mention_id_l, p.mention_id_r FROM {new_pairs} p WHERE p.match_probability >= {float(threshold)!r}),
        seeds AS (
            SELECT mention_id FROM fresh UNION SELECT mention_id_l FROM linked UNION SELECT mention_id_r FROM linked
            UNION SELECT mention_id FROM scope_decided
        ),
        previous AS (SELECT x.mention_id, x.customer_id FROM {previous} x),
        grown AS (SELECT DISTINCT customer_id FROM previous SEMI JOIN seeds USING (mention_id)),
        members AS (SELECT mention_id FROM previous SEMI JOIN grown USING (customer_id) UNION SELECT mention_id FROM fresh),
        everyone AS (SELECT m.mention_id, m.vin, m.refers_to FROM {mentions} m),
        clustered AS (SELECT * FROM everyone SEMI JOIN members USING (mention_id)),
        vins AS (SELECT DISTINCT vin FROM clustered WHERE vin IS NOT NULL),
        hosts AS (
            SELECT mention_id FROM everyone SEMI JOIN vins USING (vin)
            UNION SELECT refers_to FROM clustered WHERE refers_to IS NOT NULL
        ),
        hosting AS (SELECT DISTINCT customer_id FROM previous SEMI JOIN hosts USING (mention_id))
        SELECT mention_id FROM previous SEMI JOIN (SELECT customer_id FROM grown UNION SELECT customer_id FROM hosting) USING (customer_id)
        UNION SELECT mention_id FROM fresh
    """


def incremental_clusters(
    engine: LinkageEngine, new: DataFrame, previous: DataFrame, new_pairs: DataFrame, threshold: float
) -> DataFrame:
    """Clusters of all mentions when only `new_pairs` (touching new mentions) are scored:
    each existing customer is one node, so new links can grow or merge customers but never
    split them."""
    node_of = previous.select("mention_id", F.concat(F.lit("customer:"), "customer_id").alias("node"))
    node_l = node_of.select(F.col("mention_id").alias("mention_id_l"), F.col("node").alias("node_l"))
    node_r = node_of.select(F.col("mention_id").alias("mention_id_r"), F.col("node").alias("node_r"))
    edges = (
        new_pairs.filter(F.col("match_probability") >= threshold)
        .join(node_l, "mention_id_l", "left")
        .join(node_r, "mention_id_r", "left")
        .select(
            F.coalesce("node_l", "mention_id_l").alias("id_l"),
            F.coalesce("node_r", "mention_id_r").alias("id_r"),
            "match_probability",
        )
        .filter(F.col("id_l") != F.col("id_r"))
    )
    touched = edges.select(F.col("id_l").alias("id")).union(edges.select(F.col("id_r").alias("id")))
    nodes = new.select(F.col("mention_id").alias("id")).union(touched.filter(F.col("id").startswith("customer:"))).distinct()
    components = engine.cluster(nodes, edges, threshold).select("id", F.col("cluster_id").cast("string"))
    existing = (
        node_of.join(components.withColumnRenamed("id", "node"), "node", "left")
        .select("mention_id", F.coalesce("cluster_id", "node").alias("cluster_id"))
    )
    fresh = components.filter(~F.col("id").startswith("customer:")).select(F.col("id").alias("mention_id"), "cluster_id")
    return existing.unionByName(fresh)


def write_touched_golden(
    spark: SparkSession,
    engine: LinkageEngine,
    tables: ResolutionTables,
    mentions: DataFrame,
    assigned: DataFrame,
    previous: DataFrame,
    everyone: DataFrame,
    changed_mentions: DataFrame,
    resolution: ResolutionConfig,
    overrides: Overrides,
    beside: tuple[Callable[[], object], ...] = (),
) -> None:
    """Rewrite only the customers an incremental run touched: those whose mentions were
    added, changed, moved or removed, under their old and new IDs. Their profiles, vehicles
    (every owner of a VIN they hold, for the current-owner flag), review rows and crosswalk
    rows are rebuilt from all their mentions; every other row is left as it is. The result
    equals a rebuild of the whole tables from the same crosswalk. `assigned` and `previous`
    (mention_id, customer_id) are the new and the previous customers of the mentions the run
    clustered again (`incremental_scope`), `everyone` the new customer of every mention.
    The engine labels the touched customers' links (`LinkageEngine.label_links`) and builds
    their profiles (`customers`) and the links of the VINs they hold (`vehicles`).
    `beside`: the caller's writes to other tables, run at the same time as the profiles,
    vehicles and review rows; the crosswalk comes after all of them."""
    work = tables.work
    everyone_path, members_path = f"{work}/everyone", f"{work}/touched_members"
    everyone = checkpoint(spark, everyone.withColumn("event", F.lit(None).cast("string")), everyone_path).select("mention_id", "customer_id")
    moved = (
        assigned.join(previous.withColumnRenamed("customer_id", "old_id"), "mention_id", "full_outer")
        .filter(~F.col("customer_id").eqNullSafe(F.col("old_id")))
        .select("mention_id")
    )
    # Each read by two later queries: computed once.
    touched_mentions = checkpoint(spark, moved.union(changed_mentions).distinct(), f"{work}/touched_mentions")
    touched_ids = (
        assigned.join(touched_mentions, "mention_id", "left_semi").select("customer_id")
        .union(previous.join(touched_mentions, "mention_id", "left_semi").select("customer_id"))
        .distinct()
    )
    touched_ids = checkpoint(spark, touched_ids, f"{work}/touched_customers")
    members = checkpoint(spark, assigned.join(touched_ids, "customer_id", "left_semi"), members_path)
    resolved = mentions.join(members, "mention_id")

    def customers() -> None:
        replace_rows(
            spark, engine.customers(resolved, resolution, tables.mentions, members_path), tables.customers, ["customer_id"], touched_ids,
            f"{work}/customers_source",
        )

    def vehicles() -> None:
        held = read_table(spark, tables.vehicles)
        vins = (
            resolved.filter(F.col("vin").isNotNull()).select("vin")
            .union(held.join(touched_ids, "customer_id", "left_semi").select("vin"))
            .distinct()
        )
        vins_path = f"{work}/touched_vins"
        vins = checkpoint(spark, vins, vins_path)
        owners = mentions.join(vins, "vin", "left_semi").join(everyone, "mention_id")
        replace_rows(
            spark, engine.vehicles(owners, tables.mentions, everyone_path, vins_path), tables.vehicles, ["customer_id", "vin", "role"],
            held.join(vins, "vin", "left_semi"), f"{work}/vehicles_source",
        )

    def review() -> DataFrame:
        """The review rows of touched customers; returns their crosswalk rows. Every review
        row and link of a touched customer comes from pairs with a mention of it."""
        decided = decided_pairs(spark, overrides)
        links = engine.label_links(tables.pairs, everyone_path, tables.mentions, resolution, decided, within=members_path)
        held = read_table(spark, tables.review)
        touched_l = touched_ids.withColumnRenamed("customer_id", "customer_id_l")
        touched_r = touched_ids.withColumnRenamed("customer_id", "customer_id_r")
        replace_rows(
            spark, build_review_pairs(links.band, everyone, resolution, decided, links.strongest), tables.review,
            ["kind", "mention_id_l", "mention_id_r"],
            held.join(touched_l, "customer_id_l", "left_semi").unionByName(held.join(touched_r, "customer_id_r", "left_semi")),
            f"{work}/review_source",
        )
        return links.xref

    # Independent tables, written at once (with the caller's own writes, `beside`).
    rows = cast(DataFrame, side_by_side(review, customers, vehicles, *beside)[0])

    # The crosswalk last: it is what the next run starts from.
    xref = read_table(spark, tables.xref)
    replace_rows(
        spark, rows, tables.xref, ["mention_id"],
        xref.join(touched_ids, "customer_id", "left_semi").unionByName(xref.join(touched_mentions, "mention_id", "left_semi")),
        f"{work}/xref_source",
    )
