"""Resolution of identities: silver feeds -> person mentions -> Splink linkage -> golden customers.

Full run (default): train the model, score all blocked pairs, cluster, keep IDs stable
against the previous crosswalk. Incremental run: score only new mentions against existing
ones (and each other) with the saved model, then update clusters and IDs and rewrite only
the customers it touched (`entity_resolution.incremental`).
Both honour the reviewers' overrides file and write the same tables:
`gold/person_mentions`, `gold/match_pairs`, `gold/customer_xref`, `gold/customers`,
`gold/customer_vehicles`, `gold/customer_id_history`, `gold/resolution_review`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.config import AppConfig
from cdp.contract import PII_COLUMNS
from cdp.errors import MissingInputError
from cdp.lake import Lake, append_once, merge_into, overwrite_table, read_table, side_by_side, table_exists, table_version
from entity_resolution.attach import split_unidentified
from entity_resolution.crosswalk import build_review_pairs, build_unidentified_records
from entity_resolution.engines import PAIR_COLUMNS, PAIR_SCHEMA, Prediction, choose_engine
from entity_resolution.evaluation import crosswalk_clusters, pairwise_scores, truth_mentions
from entity_resolution.incremental import build_mentions, incremental_clusters, write_touched_golden
from entity_resolution.model import load_model, save_model
from entity_resolution.overrides import (
    Overrides,
    apply_changes,
    load_overrides,
    override_changes,
    with_overrides,
)
from entity_resolution.work import ResolutionTables, checkpoint, decided_pairs

__all__ = ["ResolveError", "ResolveReport", "resolve_identities"]

log = logging.getLogger(__name__)

_PII = sorted(PII_COLUMNS)


class ResolveError(MissingInputError):
    """The lake is not in a state this run can start from."""


@dataclass
class ResolveReport:
    mode: str
    engine: str
    mentions: int = 0
    new_mentions: int = 0
    customers: int = 0
    unidentified: int = 0  # records that name nobody and joined no owner: not customers
    pairs: int = 0
    events: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    model_version: str | None = None  # the registered version the run scored with
    model_source: str = "saved"  # champion | trained | saved (incremental: the lake's model)


# Row groups of a few MB (Spark writes 128 MB ones, a million pairs each): a lookup's filter
# skips all but the few row groups that hold the mentions it asks for.
_PAIRS_ROW_GROUP_BYTES = 4 * 1024 * 1024


@contextmanager
def _row_groups_of(spark: SparkSession, size: int) -> Iterator[None]:
    """Parquet row groups of about `size` bytes for the writes inside, then the setting as it was."""
    before = spark.conf.get("parquet.block.size", None)
    spark.conf.set("parquet.block.size", str(size))
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset("parquet.block.size")
        else:
            spark.conf.set("parquet.block.size", before)


def resolve_identities(
    spark: SparkSession,
    config: AppConfig,
    *,
    incremental: bool = False,
    truth: str | None = None,
    track: bool = True,
    retrain: bool = False,
) -> ResolveReport:
    """Resolve identities and write the gold tables (see the module docstring). A full run
    scores with the registered champion model when there is one, unless `retrain`; a model it
    trains is registered (when tracked) and made champion: the customers are built with it."""
    lake = Lake(config.resolve(config.lake.root))
    tables = ResolutionTables(lake)
    resolution = config.resolution
    threshold = resolution.match_threshold
    overrides = load_overrides(config.conf_path(resolution.overrides_file))
    mode = "incremental" if incremental else "full"
    if incremental and not table_exists(spark, tables.xref):
        raise ResolveError(f"no customer crosswalk at {tables.xref}: run a full `cdp run resolve` first")

    timings: dict[str, float] = {}
    started = time.perf_counter()
    based_on = table_version(spark, tables.xref)
    # The crosswalk as this run found it, by version: replacing the table later does not change it.
    previous = read_table(spark, tables.xref, version=based_on).select("mention_id", "customer_id") if based_on >= 0 else None
    mentions, changed_mentions = build_mentions(spark, lake, tables, incremental, based_on)
    count = mentions.count()
    _warn_unknown_mentions(spark, overrides, mentions)
    timings["mentions"] = time.perf_counter() - started

    engine = choose_engine(spark, resolution, count, tables.work)
    report = ResolveReport(mode=mode, engine=engine.name, mentions=count)
    # What the cluster phase and the IDs work on: every mention on a full run; on an
    # incremental run, those `incremental_scope` finds (the rest keep their customers).
    linked, linked_previous = mentions, previous
    scope_path = f"{tables.work}/scope"
    try:
        if incremental:
            assert previous is not None and changed_mentions is not None
            model = load_model(spark, tables.model)
            new = checkpoint(spark, mentions.select("mention_id").join(previous, "mention_id", "left_anti"), f"{tables.work}/new_ids")
            # Unidentified records are not in the crosswalk: they are linked again whenever new
            # records come (a vehicle's owner or a record naming them may be among them), but
            # are not new themselves. With nothing new, nothing about them can change.
            prior = read_table(spark, tables.unidentified).select("mention_id") if table_exists(spark, tables.unidentified) else None
            report.new_mentions = (new.join(prior, "mention_id", "left_anti") if prior is not None else new).count()
            if report.new_mentions:
                prediction = engine.predict_new(mentions, new, model, resolution, tables.mentions)
            else:
                prediction = Prediction(spark.createDataFrame([], PAIR_SCHEMA), model, {}, None)
            timings.update(prediction.timings)
            started = time.perf_counter()
            # Records that named nobody were scored again with the new ones: a pair the table
            # holds from an earlier run keeps its row (and a model's score, its score), so the
            # clusters are made of the links the table holds.
            keys = ["mention_id_l", "mention_id_r"]
            stored = engine.stored_pairs(tables.pairs, prediction.pairs, f"{tables.work}/stored_pairs")
            by_model = stored.filter(F.col("origin") == "model")
            scored = prediction.pairs.join(by_model.select(keys), keys, "left_anti").unionByName(by_model.select(*PAIR_COLUMNS))
            new_pairs = checkpoint(spark, with_overrides(spark, scored, overrides, mentions), f"{tables.work}/new_pairs")
            # The model's other pairs each hold a mention new to the table: appended, once per
            # crosswalk version. Reviewers' must-links may pair known mentions: merged.
            unstored = new_pairs.filter(F.col("origin") == "model").join(stored.select(keys), keys, "left_anti")
            append_once(spark, unstored, tables.pairs, "resolution-incremental", based_on)
            if overrides.must_link:
                merge_into(spark, new_pairs.filter(F.col("origin") != "model"), tables.pairs, ["mention_id_l", "mention_id_r"])
            fresh = changed_mentions.union(new)
            scope = engine.scope(tables.mentions, tables.xref, based_on, fresh, new_pairs, overrides, threshold, scope_path)
            linked = mentions.join(scope, "mention_id", "left_semi")
            # Read by the clusters three times and by the golden phase: its rows once, from the crosswalk's 2 million.
            linked_previous = checkpoint(spark, previous.join(scope, "mention_id", "left_semi"), f"{tables.work}/linked_previous")
            log.info("incremental scope: %d of %d mentions clustered again", scope.count(), count)
            still_present = checkpoint(spark, linked_previous.join(linked.select("mention_id"), "mention_id", "left_semi"), f"{tables.work}/still_present")
            clusters = checkpoint(spark, incremental_clusters(engine, new, still_present, new_pairs, threshold), f"{tables.work}/linked_clusters")
        else:
            from entity_resolution.registry import champion_model

            champion = None if retrain else champion_model(config)
            if champion is not None:
                report.model_version, model = champion
                report.model_source = "champion"
                prediction = engine.predict_with(mentions, model, resolution, tables.mentions)
            else:
                report.model_source = "trained"
                prediction = engine.train_and_predict(mentions, resolution, tables.mentions)
            timings.update(prediction.timings)
            started = time.perf_counter()
            changes = override_changes(spark, overrides, mentions)
            # Sorted by mention within each file (the engine sorted them): a lookup of one customer's
            # links (`cdp customer explain`, the web app) reads a few row groups of millions of pairs.
            scored = apply_changes(prediction.pairs, changes)
            with _row_groups_of(spark, _PAIRS_ROW_GROUP_BYTES):
                overwrite_table(spark, scored, tables.pairs)
            # The same pairs, clustered where the engine holds them (DuckDB: not read back from the table).
            clusters = engine.cluster_scored(prediction, mentions.select(F.col("mention_id").alias("id")), changes, threshold)
        # Conflicts kept apart (a reviewer's must-link outranks the rules), records that name
        # nobody joined to their vehicle's owner, reviewers' cannot-links kept apart.
        flagged = engine.settle(linked, clusters, tables.pairs, overrides, resolution)
        _, unidentified = split_unidentified(flagged)
        unidentified = checkpoint(spark, build_unidentified_records(linked, unidentified), f"{tables.work}/unidentified")
        timings["cluster"] = time.perf_counter() - started
    finally:
        engine.close()

    started = time.perf_counter()
    # An incremental run's IDs: against the previous customers of its scope, and IDs held
    # outside the scope are taken too.
    assigned, events = engine.assign_ids(
        flagged, tables.xref, based_on, tables.history, tables.ids, tables.id_cells, scope=scope_path if incremental else None
    )
    # History and the other tables before the crosswalk, which is what the next run starts
    # from: if the run stops before it is replaced, a re-run computes the same events from the
    # same previous crosswalk and the merge keeps one copy.
    report.events = {r.event: r["count"] for r in events.groupBy("event").count().collect()}

    def history() -> None:
        if report.events or not table_exists(spark, tables.history):  # no events: nothing to merge
            merge_into(spark, events, tables.history, ["event", "customer_id", "related_customer_id", "based_on_version"], update=False)

    def unidentified_records() -> None:
        # Rewritten whole on every run (a fraction of a percent of the records).
        overwrite_table(spark, unidentified, tables.unidentified)
        report.unidentified = unidentified.count()

    if incremental:
        assert previous is not None and linked_previous is not None and changed_mentions is not None
        # Outside the scope every mention keeps its customer.
        everyone = assigned.unionByName(previous.join(linked_previous.select("mention_id"), "mention_id", "left_anti"))
        write_touched_golden(
            spark, engine, tables, mentions, assigned, linked_previous, everyone, changed_mentions, resolution, overrides,
            beside=(history, unidentified_records),
        )
    else:
        resolved = mentions.join(assigned, "mention_id")

        def review() -> DataFrame:
            """The review queue; returns the crosswalk's rows. The queue reads only pairs below
            the review band's top: at 100,000 customers 1.1 million of 20.6 million. The engine
            labels them, finds each mention's strongest links and gives the crosswalk's rows
            where it runs best (DuckDB reads the pairs' and the mentions' files on one machine)."""
            decided = decided_pairs(spark, overrides)
            links = engine.label_links(tables.pairs, tables.ids, tables.mentions, resolution, decided)
            overwrite_table(spark, build_review_pairs(links.band, assigned, resolution, decided, links.strongest), tables.review)
            return links.xref

        xref, *_ = side_by_side(
            review,
            history,
            unidentified_records,
            lambda: overwrite_table(spark, engine.customers(resolved, resolution, tables.mentions, tables.ids), tables.customers, no_stats_columns=_PII),
            lambda: overwrite_table(spark, engine.vehicles(resolved, tables.mentions, tables.ids), tables.vehicles),
        )
        assert isinstance(xref, DataFrame)
        overwrite_table(spark, xref, tables.xref)
        save_model(spark, prediction.model, tables.model)
    timings["golden"] = time.perf_counter() - started

    report.customers = read_table(spark, tables.customers).count()
    report.pairs = read_table(spark, tables.pairs).count()
    report.timings = timings
    if truth:
        clusters = crosswalk_clusters(read_table(spark, tables.xref), read_table(spark, tables.unidentified))
        report.scores = pairwise_scores(clusters, truth_mentions(spark.read.option("header", True).csv(truth)))
    if track:
        report.mlflow_run_id = _track(config, report, prediction)
    log.info(
        "resolution (%s, %s): %d mentions (%d new), %d customers, %d unidentified records, events %s, timings %s",
        mode, engine.name, count, report.new_mentions, report.customers, report.unidentified, report.events,
        {k: round(v, 1) for k, v in timings.items()},
    )
    return report


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
    # A model trained by this run is the one the lake's customers are now built with: a new
    # version, champion.
    register_as = config.resolution.model_name if report.model_source == "trained" else None
    run_id, version = log_resolution_run(
        config.resolution, engine=report.engine, mode=report.mode, metrics=metrics, model=prediction.model, register_as=register_as,
        lake_root=config.resolve(config.lake.root) if report.mode == "full" else None,
    )
    if version is not None:
        from cdp.tracking import promote_model_version

        promote_model_version(config, config.resolution.model_name, version)
        report.model_version = version
    return run_id
