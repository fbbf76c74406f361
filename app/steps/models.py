"""Steps that train and apply models: `train_segments`, `segment`, `train_winback`, `winback`."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click
from pyspark.sql import functions as F

from activation.inputs import features_of, ownership_of
from activation.winback import WINBACK_FEATURES, build_training_rows, build_warranty_status, fit_winback, score_winback, snapshot_dates
from activation.winback_registry import EXPERIMENT as WINBACK_EXPERIMENT
from activation.winback_registry import log_winback_run
from app.context import RunContext
from app.options import as_of_option
from app.registry import Step, StepReport, register
from app.steps.features import FEATURE_SOURCES, build_features_on, missing_dates
from cdp import catalog
from cdp.errors import MissingInputError
from cdp.lake import read_feed, read_latest, read_table, replace_partition
from cdp.tracking import get_model_version, promote_new_version
from features.catalog import segmentation_features
from features.sources import records_of

__all__ = ["SEGMENTATION_EXPERIMENT"]

SEGMENTATION_EXPERIMENT = "segmentation"

_AS_OF = as_of_option("features of this date (default: the latest)")
_PROMOTE = click.Option(["--promote"], is_flag=True, help="make the new version champion")
_VERSION = click.Option(["--model-version"], default="champion", show_default=True, help="alias or version number")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _train_segments(context: RunContext, options: dict[str, Any]) -> StepReport:
    # scikit-learn loads here, not with the CLI: every command imports the step registry.
    from segmentation import build_population_filter, log_segmentation_run, train_segmentation

    spark, settings = context.spark, context.config.segmentation
    table, as_of = read_latest(spark, context.lake, catalog.CUSTOMER_FEATURES, options.get("as_of") or context.as_of)
    features, money = segmentation_features()
    # A fixed-size sample ranked by a hash of the ID: the same customers whatever the
    # partitioning, so the same data and seed give the same model.
    sample = (
        table.filter(build_population_filter(settings.population))
        .select("customer_id", *features, *(c for c in ("lifecycle_stage", "lifetime_spend") if c not in features))
        .withColumn("_rank", F.xxhash64("customer_id", F.lit(settings.seed)))
        .orderBy("_rank", "customer_id")
        .limit(settings.train_sample_rows)
        .toPandas()
        .sort_values("customer_id")
        .reset_index(drop=True)
    )
    if len(sample) < 2 * settings.k_range[0]:
        raise MissingInputError(f"only {len(sample)} customers to segment as of {as_of} in {catalog.CUSTOMER_FEATURES.label}")
    trained = train_segmentation(sample, features, money, settings)
    context.tracker(SEGMENTATION_EXPERIMENT)
    params = {
        "as_of_date": as_of.isoformat(), "population": settings.population, "train_rows": len(sample),
        "algorithms": ",".join(settings.algorithms), "k_range": f"{settings.k_range[0]}-{settings.k_range[1]}",
        "bootstrap_rounds": settings.bootstrap_rounds, "stability_for": settings.stability_for, "min_stability": settings.min_stability,
        "selection_metric": settings.selection_metric, "seed": settings.seed, "features": ",".join(features),
        "money_features": ",".join(money),
    }
    run_id, version = log_segmentation_run(
        trained.selection, trained.summaries, trained.profile, features, params, settings.model_name,
        sample[features].head(20).astype("float64"),
    )
    champion = promote_new_version(context.config, settings.model_name, version, bool(options.get("promote")))
    chosen = trained.selection.chosen
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in chosen.metrics().items())
    status = "champion" if champion else f"not promoted (cdp model promote {version})"
    lines = [
        f"as of {as_of}: {len(sample)} customers, chose {chosen.key} ({metrics}); {trained.selection.reason}",
        *(f"  {s.segment_id:>2} {s.name:<28} {s.size:>8} {s.share:6.1%}  dormant/lost {_share(s.lapsed_share)}  "
          f"value {_money(s.mean_value)}  {s.play}; {s.rule}" for s in trained.summaries),
        f"registered {settings.model_name} version {version}, {status}; MLflow run {run_id}",
    ]
    data = {"as_of": as_of, "rows": len(sample), "chosen": chosen.key, "metrics": chosen.metrics(), "segments": trained.summaries,
            "run_id": run_id, "version": version, "champion": champion}
    return StepReport("train_segments", lines, data, rows_read=len(sample))


def _segment(context: RunContext, options: dict[str, Any]) -> StepReport:
    # scikit-learn loads here, not with the CLI: every command imports the step registry.
    from segmentation import build_population_filter, load_segmentation_model, score_customers

    spark, settings = context.spark, context.config.segmentation
    context.tracker(SEGMENTATION_EXPERIMENT)
    reference = options.get("model_version") or "champion"
    get_model_version(context.config, settings.model_name, reference)
    model = load_segmentation_model(settings.model_name, reference)
    table, as_of = read_latest(spark, context.lake, catalog.CUSTOMER_FEATURES, options.get("as_of") or context.as_of)
    scored = score_customers(table.filter(build_population_filter(settings.population)), model, _now(), on_driver=context.small_lake)
    path = context.lake.path(catalog.CUSTOMER_SEGMENTS)
    replace_partition(spark, scored, path, "as_of_date", as_of)
    written = read_table(spark, path).filter(F.col("as_of_date") == F.lit(as_of))
    sizes = {row["segment_name"]: int(row["count"]) for row in written.groupBy("segment_name").count().collect()}
    total = sum(sizes.values())
    lines = [f"as of {as_of}: {total} customers scored with version {model.version}"]
    lines += [f"  {name:<28} {n:>8} {n / max(total, 1):6.1%}" for name, n in sorted(sizes.items(), key=lambda item: -item[1])]
    return StepReport("segment", lines, {"as_of": as_of, "model_version": model.version, "customers": total, "sizes": sizes}, rows_written=total)


def _winback_snapshots(context: RunContext) -> list[dt.date]:
    """The snapshot dates a pipeline run's training will read: its features date is the run's."""
    return snapshot_dates(context.today(), context.config.activation.winback)


def _train_winback(context: RunContext, options: dict[str, Any]) -> StepReport:
    spark, lake, settings = context.spark, context.lake, context.config.activation.winback
    _, as_of = features_of(spark, lake, options.get("as_of") or context.as_of)
    dates = snapshot_dates(as_of, settings)
    build_features_on(context, missing_dates(context, dates))
    snapshots = read_table(spark, lake.path(catalog.CUSTOMER_FEATURES)).filter(F.col("as_of_date").isin(*dates))
    xref = read_table(spark, lake.path(catalog.CUSTOMER_XREF))
    visits = records_of(read_feed(spark, lake, "service_orders"), xref, "service_orders").select(
        "customer_id", F.col("opened_at").cast("timestamp").alias("visit_at")
    )
    rows = build_training_rows(snapshots, visits, settings)
    # A hash-ranked sample: the same rows whatever the partitioning, so reruns fit the same model.
    sample = (
        rows.select("customer_id", "as_of_date", "returned", *WINBACK_FEATURES)
        .withColumn("_rank", F.xxhash64("customer_id", "as_of_date", F.lit(settings.seed)))
        .orderBy("_rank", "customer_id", "as_of_date")
        .limit(settings.train_sample_rows)
        .drop("_rank")
        .toPandas()
        .sort_values(["as_of_date", "customer_id"])
        .reset_index(drop=True)
    )
    holdout = sample["as_of_date"] == dates[0]
    try:
        model = fit_winback(sample[~holdout], sample[holdout], settings.seed)
    except ValueError as exc:
        raise MissingInputError(f"cannot train the win-back model as of {as_of}: {exc}") from exc
    params = {
        "as_of_date": as_of.isoformat(), "holdout_date": dates[0].isoformat(),
        "train_dates": ",".join(d.isoformat() for d in dates[1:]), "horizon_months": settings.horizon_months,
        "stages": ",".join(settings.stages), "seed": settings.seed, "classifier": type(model.classifier).__name__,
    }
    run_id, version = log_winback_run(model, params, context.config, sample.head(20))
    champion = promote_new_version(context.config, settings.model_name, version, bool(options.get("promote")))
    m = model.metrics
    status = "champion" if champion else f"not promoted (cdp model promote --name {settings.model_name} {version})"
    lines = [
        f"as of {as_of}: trained on {', '.join(map(str, dates[1:]))}, held out {dates[0]}; "
        f"{int(m['train_rows'])} train / {int(m['test_rows'])} holdout rows",
        f"holdout AUC {m['test_auc']:.3f}, lift at top decile {m['test_lift_top_decile']:.2f}, base return rate {m['test_base_rate']:.3f}",
        f"most-recent-first ranking: AUC {m['recency_auc']:.3f}, lift {m['recency_lift_top_decile']:.2f}; the model adds "
        f"{m['auc_gain_over_recency']:+.3f} AUC and {m['lift_gain_over_recency']:+.2f} lift; calibration error {m['calibration_error']:.3f}",
        f"registered {settings.model_name} version {version}, {status}; MLflow run {run_id}",
    ]
    data = {"as_of": as_of, "dates": dates, "metrics": m, "version": version, "champion": champion, "run_id": run_id}
    return StepReport("train_winback", lines, data, rows_read=len(sample))


def _winback(context: RunContext, options: dict[str, Any]) -> StepReport:
    import mlflow.sklearn

    spark, lake, settings = context.spark, context.lake, context.config.activation.winback
    context.tracker(WINBACK_EXPERIMENT)
    version = get_model_version(context.config, settings.model_name, options.get("model_version") or "champion").version
    classifier = mlflow.sklearn.load_model(f"models:/{settings.model_name}/{version}")
    features, as_of = features_of(spark, lake, options.get("as_of") or context.as_of)
    owners, vehicles, dealers = ownership_of(spark, lake, as_of)
    warranty = build_warranty_status(owners, vehicles, as_of, context.config.activation.reminders.default_rules.warranty_years)
    candidates = (
        features.join(dealers, "customer_id", "left")
        .join(warranty, "customer_id", "left")
        .withColumn("warranty_ended", F.coalesce("warranty_ended", F.lit(False)))
    )
    ranked = score_winback(candidates, classifier, version, _now(), as_of, settings, on_driver=context.small_lake)
    path = lake.path(catalog.WINBACK)
    replace_partition(spark, ranked, path, "as_of_date", as_of)
    written = read_table(spark, path).filter(F.col("as_of_date") == F.lit(as_of))
    by_stage = {r["lifecycle_stage"]: int(r["count"]) for r in written.groupBy("lifecycle_stage").count().collect()}
    mix = ", ".join(f"{stage} {n}" for stage, n in sorted(by_stage.items()))
    lines = [f"as of {as_of}: ranked {sum(by_stage.values())} owners ({mix}) with winback version {version}"]
    return StepReport("winback", lines, {"as_of": as_of, "model_version": version, "by_stage": by_stage},
                      rows_written=sum(by_stage.values()))


# What the steps import that takes seconds to load (`Step.preload`).
_SEGMENTATION = ("mlflow.sklearn", "segmentation")
_WINBACK = ("mlflow.sklearn", "skops.io", "sklearn.ensemble", "sklearn.inspection")

register(Step(
    "train_segments", "Search, choose, name and register a segmentation model in MLflow.", _train_segments,
    params=(_AS_OF, _PROMOTE), reads=(catalog.CUSTOMER_FEATURES,), trains=True, tracks=True, preload=_SEGMENTATION,
))
register(Step(
    "segment", "Score customers with the champion segmentation model.", _segment,
    params=(_AS_OF, _VERSION), reads=(catalog.CUSTOMER_FEATURES,), writes=(catalog.CUSTOMER_SEGMENTS,),
    after=("train_segments",), tracks=True, preload=_SEGMENTATION,
))
register(Step(
    "train_winback", "Train the win-back model on past dates and register it in MLflow.", _train_winback,
    params=(_AS_OF, _PROMOTE), reads=(catalog.CUSTOMER_FEATURES, *FEATURE_SOURCES),
    backfills=(catalog.CUSTOMER_FEATURES,), backfill_dates=_winback_snapshots, trains=True, tracks=True,
    preload=(*_WINBACK, "great_expectations"),
))
register(Step(
    "winback", "Rank dormant and lost owners by p(return) x expected value.", _winback,
    params=(_AS_OF, _VERSION),
    reads=(catalog.CUSTOMER_FEATURES, catalog.PERSON_MENTIONS, catalog.CUSTOMER_XREF, catalog.VEHICLE_OWNERS, catalog.HOME_DEALERS),
    writes=(catalog.WINBACK,), after=("train_winback",), tracks=True, preload=_WINBACK,
))
