"""Resolve job: silver feeds -> person mentions -> Splink linkage -> golden customers.

Full run (default): train the model, score all blocked pairs, cluster, keep IDs stable
against the previous crosswalk. Incremental run (`--incremental`): score only new mentions
against existing ones (and each other) with the saved model, then update clusters and IDs
and rewrite only the customers it touched.
Both honour the reviewers' overrides file and write the same tables:
`gold/person_mentions`, `gold/match_pairs`, `gold/customer_xref`, `gold/customers`,
`gold/customer_vehicles`, `gold/customer_id_history`, `gold/resolution_review`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.config import AppConfig, ResolutionConfig
from cdp.contract import PII_COLUMNS
from cdp.lake import Lake, merge_into, overwrite_table, read_table, replace_rows, table_exists, table_version
from entity_resolution.crosswalk import build_customer_xref, build_review_pairs, label_pairs
from entity_resolution.engines import PAIR_SCHEMA, LinkageEngine, Prediction, choose_engine
from entity_resolution.evaluation import pairwise_scores, truth_mentions
from entity_resolution.golden import build_customer_vehicles, build_customers
from entity_resolution.mentions import MENTION_COLUMNS, MENTION_SOURCES, build_person_mentions
from entity_resolution.model import ModelNotFoundError, load_model, save_model
from entity_resolution.overrides import Overrides, enforce_cannot_link, load_overrides, with_overrides
from entity_resolution.stable_ids import assign_customer_ids

__all__ = ["ResolveReport", "main", "run"]

log = logging.getLogger(__name__)

_PII = sorted(PII_COLUMNS)


class ResolveError(RuntimeError):
    """The lake is not in a state this run can start from."""


@dataclass
class ResolveReport:
    mode: str
    engine: str
    mentions: int = 0
    new_mentions: int = 0
    customers: int = 0
    pairs: int = 0
    events: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None


class _Tables:
    def __init__(self, lake: Lake) -> None:
        self.mentions = lake.table("gold", "person_mentions")
        self.pairs = lake.table("gold", "match_pairs")
        self.xref = lake.table("gold", "customer_xref")
        self.customers = lake.table("gold", "customers")
        self.vehicles = lake.table("gold", "customer_vehicles")
        self.history = lake.table("gold", "customer_id_history")
        self.review = lake.table("gold", "resolution_review")
        self.model = lake.table("_models", "resolution")
        self.work = lake.table("_work", "resolution")


def _build_mentions(spark: SparkSession, lake: Lake, tables: _Tables, incremental: bool, based_on: int) -> tuple[DataFrame, DataFrame | None]:
    """Write `gold/person_mentions` from silver; return it and, on an incremental run, the
    ids of mentions that are new, changed or gone since the previous run."""
    feeds = {s.feed for s in MENTION_SOURCES}
    silver = {f: read_table(spark, lake.silver(f)) for f in sorted(feeds) if table_exists(spark, lake.silver(f))}
    built = build_person_mentions(silver)
    if not (incremental and table_exists(spark, tables.mentions)):
        overwrite_table(spark, built, tables.mentions, no_stats_columns=_PII)
        return read_table(spark, tables.mentions), None
    fingerprint = F.sha2(F.to_json(F.struct(*MENTION_COLUMNS)), 256).alias("_fingerprint")
    existing = read_table(spark, tables.mentions).select("mention_id", fingerprint)
    upserts = built.join(built.select("mention_id", fingerprint).join(existing, ["mention_id", "_fingerprint"], "left_anti"), "mention_id", "left_semi")
    gone = existing.select("mention_id").join(built.select("mention_id"), "mention_id", "left_anti")
    # Kept per crosswalk version, so a run that stops after replacing the mentions still
    # knows on its re-run which of them changed.
    changed_path = f"{tables.work}/changed_mentions"
    upserts.select("mention_id").union(gone).withColumn("based_on", F.lit(based_on)).write.mode("append").parquet(changed_path)
    changed = spark.read.parquet(changed_path).filter(F.col("based_on") == based_on).select("mention_id").distinct()
    replace_rows(spark, upserts, tables.mentions, ["mention_id"], gone, f"{tables.work}/mentions_source")
    return read_table(spark, tables.mentions), changed


def _clusters(engine: LinkageEngine, nodes: DataFrame, pairs: DataFrame, threshold: float) -> DataFrame:
    edges = pairs.select(F.col("mention_id_l").alias("id_l"), F.col("mention_id_r").alias("id_r"), "match_probability")
    clustered = engine.cluster(nodes, edges, threshold)
    return clustered.select(F.col("id").alias("mention_id"), F.col("cluster_id").cast("string"))


def _incremental_clusters(
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


def _checkpoint(spark: SparkSession, df: DataFrame, path: str) -> DataFrame:
    """Materialise `df` (so later writes cannot change what it reads) and read it back."""
    df.write.mode("overwrite").parquet(path)
    return spark.read.parquet(path)


def run(
    spark: SparkSession,
    config: AppConfig,
    *,
    incremental: bool = False,
    truth: str | None = None,
    track: bool = True,
) -> ResolveReport:
    """Resolve identities and write the gold tables (see the module docstring)."""
    lake = Lake(config.resolve(config.lake.root))
    tables = _Tables(lake)
    resolution = config.resolution
    threshold = resolution.match_threshold
    overrides = load_overrides(config.conf_path(resolution.overrides_file))
    mode = "incremental" if incremental else "full"
    if incremental and not table_exists(spark, tables.xref):
        raise ResolveError(f"no customer crosswalk at {tables.xref}: run a full `cdp run resolve` first")

    timings: dict[str, float] = {}
    started = time.perf_counter()
    previous = read_table(spark, tables.xref).select("mention_id", "customer_id") if table_exists(spark, tables.xref) else None
    based_on = table_version(spark, tables.xref)
    if previous is not None:
        previous = _checkpoint(spark, previous, f"{tables.work}/previous_xref")
    mentions, changed_mentions = _build_mentions(spark, lake, tables, incremental, based_on)
    count = mentions.count()
    _warn_unknown_mentions(spark, overrides, mentions)
    timings["mentions"] = time.perf_counter() - started

    engine = choose_engine(spark, resolution, count, tables.work)
    report = ResolveReport(mode=mode, engine=engine.name, mentions=count)
    try:
        if incremental:
            assert previous is not None
            model = load_model(spark, tables.model)
            new = mentions.join(previous, "mention_id", "left_anti")
            existing = mentions.join(previous.select("mention_id"), "mention_id", "left_semi")
            report.new_mentions = new.count()
            if report.new_mentions:
                prediction = engine.predict_new(mentions, new, existing, model, resolution)
            else:
                prediction = Prediction(spark.createDataFrame([], PAIR_SCHEMA), model, {}, None)
            timings.update(prediction.timings)
            started = time.perf_counter()
            new_pairs = with_overrides(spark, prediction.pairs, overrides, mentions)
            merge_into(spark, new_pairs, tables.pairs, ["mention_id_l", "mention_id_r"])
            still_present = previous.join(mentions.select("mention_id"), "mention_id", "left_semi")
            clusters = _incremental_clusters(engine, new, still_present, new_pairs, threshold)
        else:
            prediction = engine.train_and_predict(mentions, resolution)
            timings.update(prediction.timings)
            started = time.perf_counter()
            overwrite_table(spark, with_overrides(spark, prediction.pairs, overrides, mentions), tables.pairs)
            clusters = _clusters(engine, mentions.select(F.col("mention_id").alias("id")), read_table(spark, tables.pairs), threshold)
        pairs = read_table(spark, tables.pairs)
        clusters = enforce_cannot_link(spark, clusters, pairs, overrides, threshold)
        clusters = _checkpoint(spark, clusters, f"{tables.work}/resolved_clusters")
        timings["cluster"] = time.perf_counter() - started
    finally:
        engine.close()

    started = time.perf_counter()
    issued = _issued_ids(spark, tables)
    assigned, events = assign_customer_ids(clusters, previous, issued, based_on)
    assigned = _checkpoint(spark, assigned, f"{tables.work}/customer_ids")
    # History first: if the run stops before the crosswalk is replaced, a re-run computes
    # the same events from the same previous crosswalk and the merge keeps one copy.
    events = events.withColumn("recorded_at", F.current_timestamp())
    merge_into(spark, events, tables.history, ["event", "customer_id", "related_customer_id", "based_on_version"], update=False)
    report.events = {r.event: r["count"] for r in events.groupBy("event").count().collect()}

    if incremental:
        assert previous is not None and changed_mentions is not None
        _write_touched_golden(spark, tables, mentions, assigned, previous, changed_mentions, pairs, resolution, overrides)
    else:
        resolved = mentions.join(assigned, "mention_id")
        overwrite_table(spark, build_customers(resolved, resolution), tables.customers, no_stats_columns=_PII)
        overwrite_table(spark, build_customer_vehicles(resolved), tables.vehicles)
        labelled = _labelled_pairs(spark, tables, pairs, assigned, resolution)
        overwrite_table(spark, build_review_pairs(labelled, assigned, resolution, _decided(spark, overrides)), tables.review)
        # The crosswalk last: it is what the next run starts from.
        overwrite_table(spark, build_customer_xref(mentions, assigned, labelled, threshold), tables.xref)
        save_model(spark, prediction.model, tables.model)
    timings["golden"] = time.perf_counter() - started

    report.customers = read_table(spark, tables.customers).count()
    report.pairs = pairs.count()
    report.timings = timings
    if truth:
        xref = read_table(spark, tables.xref).select("mention_id", F.col("customer_id").alias("cluster_id"))
        report.scores = pairwise_scores(xref, truth_mentions(spark.read.option("header", True).csv(truth)))
    if track:
        report.mlflow_run_id = _track(config, report, prediction)
    log.info(
        "resolution (%s, %s): %d mentions (%d new), %d customers, events %s, timings %s",
        mode, engine.name, count, report.new_mentions, report.customers, report.events,
        {k: round(v, 1) for k, v in timings.items()},
    )
    return report


def _labelled_pairs(spark: SparkSession, tables: _Tables, pairs: DataFrame, assigned: DataFrame, resolution: ResolutionConfig) -> DataFrame:
    """Pairs down to the review band with each side's customer, materialised once: the review
    queue and the crosswalk both read them."""
    floor = min(resolution.review_band[0], resolution.match_threshold)
    return _checkpoint(spark, label_pairs(pairs, assigned, floor), f"{tables.work}/labelled_pairs")


def _write_touched_golden(
    spark: SparkSession,
    tables: _Tables,
    mentions: DataFrame,
    assigned: DataFrame,
    previous: DataFrame,
    changed_mentions: DataFrame,
    pairs: DataFrame,
    resolution: ResolutionConfig,
    overrides: Overrides,
) -> None:
    """Rewrite only the customers an incremental run touched: those whose mentions were
    added, changed, moved or removed, under their old and new IDs. Their profiles, vehicles
    (every owner of a VIN they hold, for the current-owner flag), review rows and crosswalk
    rows are rebuilt from all their mentions; every other row is left as it is. The result
    equals a rebuild of the whole tables from the same crosswalk."""
    work = tables.work
    moved = (
        assigned.join(previous.withColumnRenamed("customer_id", "old_id"), "mention_id", "full_outer")
        .filter(~F.col("customer_id").eqNullSafe(F.col("old_id")))
        .select("mention_id")
    )
    touched_mentions = moved.union(changed_mentions).distinct()
    touched_ids = (
        assigned.join(touched_mentions, "mention_id", "left_semi").select("customer_id")
        .union(previous.join(touched_mentions, "mention_id", "left_semi").select("customer_id"))
        .distinct()
    )
    touched_ids = _checkpoint(spark, touched_ids, f"{work}/touched_customers")
    members = _checkpoint(spark, assigned.join(touched_ids, "customer_id", "left_semi"), f"{work}/touched_members")
    resolved = mentions.join(members, "mention_id")
    replace_rows(
        spark, build_customers(resolved, resolution), tables.customers, ["customer_id"], touched_ids, f"{work}/customers_source"
    )

    vehicles = read_table(spark, tables.vehicles)
    vins = (
        resolved.filter(F.col("vin").isNotNull()).select("vin")
        .union(vehicles.join(touched_ids, "customer_id", "left_semi").select("vin"))
        .distinct()
    )
    vins = _checkpoint(spark, vins, f"{work}/touched_vins")
    owners = mentions.join(vins, "vin", "left_semi").join(assigned, "mention_id")
    replace_rows(
        spark, build_customer_vehicles(owners), tables.vehicles, ["customer_id", "vin", "role"],
        vehicles.join(vins, "vin", "left_semi"), f"{work}/vehicles_source",
    )

    # Every review row and link of a touched customer comes from pairs with a mention of it.
    ids = members.select("mention_id")
    near = pairs.join(ids.withColumnRenamed("mention_id", "mention_id_l"), "mention_id_l", "left_semi").unionByName(
        pairs.join(ids.withColumnRenamed("mention_id", "mention_id_r"), "mention_id_r", "left_semi")
    ).distinct()
    labelled = _labelled_pairs(spark, tables, near, assigned, resolution)
    review = read_table(spark, tables.review)
    touched_l = touched_ids.withColumnRenamed("customer_id", "customer_id_l")
    touched_r = touched_ids.withColumnRenamed("customer_id", "customer_id_r")
    replace_rows(
        spark, build_review_pairs(labelled, assigned, resolution, _decided(spark, overrides)), tables.review,
        ["kind", "mention_id_l", "mention_id_r"],
        review.join(touched_l, "customer_id_l", "left_semi").unionByName(review.join(touched_r, "customer_id_r", "left_semi")),
        f"{work}/review_source",
    )

    # The crosswalk last: it is what the next run starts from.
    xref = read_table(spark, tables.xref)
    replace_rows(
        spark, build_customer_xref(mentions.join(members, "mention_id", "left_semi"), members, labelled, resolution.match_threshold),
        tables.xref, ["mention_id"],
        xref.join(touched_ids, "customer_id", "left_semi").unionByName(xref.join(touched_mentions, "mention_id", "left_semi")),
        f"{work}/xref_source",
    )


def _issued_ids(spark: SparkSession, tables: _Tables) -> DataFrame | None:
    if not table_exists(spark, tables.history):
        return None
    history = read_table(spark, tables.history)
    return history.select("customer_id").union(history.select(F.col("related_customer_id").alias("customer_id"))).filter(
        F.col("customer_id").isNotNull()
    )


def _decided(spark: SparkSession, overrides: Overrides) -> DataFrame | None:
    pairs = [d.pair for d in (*overrides.must_link, *overrides.cannot_link)]
    return spark.createDataFrame(pairs, "mention_id_l string, mention_id_r string") if pairs else None


def _warn_unknown_mentions(spark: SparkSession, overrides: Overrides, mentions: DataFrame) -> None:
    named = {m for d in (*overrides.must_link, *overrides.cannot_link) for m in (d.left, d.right)}
    if not named:
        return
    wanted = spark.createDataFrame([(m,) for m in sorted(named)], "mention_id string")
    unknown = [r.mention_id for r in wanted.join(mentions, "mention_id", "left_anti").collect()]
    if unknown:
        log.warning("overrides name %d mention(s) not in the data, ignored: %s", len(unknown), ", ".join(unknown[:10]))


def _track(config: AppConfig, report: ResolveReport, prediction: Prediction) -> str:
    from cdp.tracking import use_experiment
    from entity_resolution.tracking import EXPERIMENT, log_resolution_run

    use_experiment(config, EXPERIMENT)
    metrics: dict[str, float] = {
        "mentions": report.mentions,
        "new_mentions": report.new_mentions,
        "customers": report.customers,
        "scored_pairs": report.pairs,
        **{f"events_{k}": v for k, v in report.events.items()},
        **{f"seconds_{k}": v for k, v in report.timings.items()},
        **{k: v for k, v in report.scores.items()},
    }
    return log_resolution_run(
        config.resolution, engine=report.engine, mode=report.mode, metrics=metrics, model=prediction.model, linker=prediction.linker
    )


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp run resolve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--engine", choices=["auto", "duckdb", "spark"], help="override resolution.engine")
    parser.add_argument("--incremental", action="store_true", help="link only new records, with the saved model")
    parser.add_argument("--truth", help="ground-truth CSV (feed, record_id, role, person_id) to score the run with")
    parser.add_argument("--no-track", action="store_true", help="do not log the run to MLflow")
    args = parser.parse_args(argv)
    config = config_from_args(args)
    if args.engine:
        config = config.model_copy(update={"resolution": config.resolution.model_copy(update={"engine": args.engine})})
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    try:
        report = run(spark, config, incremental=args.incremental, truth=args.truth, track=not args.no_track)
    except (ResolveError, ModelNotFoundError) as exc:
        print(f"cdp run resolve: {exc}", file=sys.stderr)
        return 2
    print(f"mode {report.mode}, engine {report.engine}: {report.mentions} mentions ({report.new_mentions} new), "
          f"{report.customers} customers, {report.pairs} scored pairs")
    for event, n in sorted(report.events.items()):
        print(f"  {event:<10} {n:>8}")
    for stage, seconds in report.timings.items():
        print(f"{stage:<16} {seconds:8.1f}s")
    for key, value in report.scores.items():
        print(f"{key:<22} {value:.4f}")
    if report.mlflow_run_id:
        print(f"MLflow run {report.mlflow_run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
