"""Train the win-back model on past as-of dates, log it to MLflow's `winback` experiment and
register it as a new version (the first becomes `champion`; later ones with `--promote` or
`cdp model promote --name winback VERSION`).

Feature partitions of the past dates are built first when missing.

    cdp run train_winback [--as-of DATE] [--promote]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from activation.winback import WINBACK_FEATURES, WinbackModel, build_training_rows, fit_winback, snapshot_dates
from cdp.config import AppConfig
from cdp.lake import read_table, table_exists
from cdp.tracking import promote_new_version, use_experiment
from features.sources import records_of
from jobs import build_features as features_job
from jobs.activation_common import ActivationError, features_of, lake_of, load_feed

__all__ = ["EXPERIMENT", "TrainWinbackReport", "main", "run"]

log = logging.getLogger(__name__)

EXPERIMENT = "winback"


@dataclass
class TrainWinbackReport:
    as_of: dt.date
    dates: list[dt.date]
    metrics: dict[str, float]
    version: str
    champion: bool
    run_id: str
    seconds: float


def _ensure_features(spark: SparkSession, config: AppConfig, dates: list[dt.date]) -> None:
    path = lake_of(config).table("gold", "customer_features")
    built = set()
    if table_exists(spark, path):
        built = {r[0] for r in read_table(spark, path).select("as_of_date").distinct().collect()}
    for day in sorted(set(dates) - built):
        log.info("building features as of %s for win-back training", day)
        features_job.run(spark, config, day)


def _log_run(model: WinbackModel, params: dict[str, object], config: AppConfig, sample: pd.DataFrame) -> tuple[str, str]:
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    use_experiment(config, EXPERIMENT)
    features = list(WINBACK_FEATURES)
    with mlflow.start_run(run_name="winback") as run:
        mlflow.log_params(params)
        mlflow.log_metrics(model.metrics)
        with tempfile.TemporaryDirectory() as tmp:
            model.deciles.to_csv(Path(tmp, "holdout_deciles.csv"), index=False)
            model.importance.to_csv(Path(tmp, "permutation_importance.csv"), index=False)
            mlflow.log_artifacts(tmp, artifact_path="evaluation")
        signature = infer_signature(sample[features], model.classifier.predict_proba(sample[features])[:, 1])
        info = mlflow.sklearn.log_model(
            model.classifier, name="model", signature=signature, registered_model_name=config.activation.winback.model_name,
            metadata={"features": features},
            # The classifier's trees are ours, trained in this run: trusted for skops.
            skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
        )
    return run.info.run_id, str(info.registered_model_version)


def run(spark: SparkSession, config: AppConfig, as_of: dt.date | None = None, promote: bool = False) -> TrainWinbackReport:
    started = time.perf_counter()
    settings = config.activation.winback
    lake = lake_of(config)
    _, as_of = features_of(spark, lake, as_of)
    dates = snapshot_dates(as_of, settings)
    _ensure_features(spark, config, dates)
    snapshots = read_table(spark, lake.table("gold", "customer_features")).filter(F.col("as_of_date").isin(*dates))
    xref = read_table(spark, lake.table("gold", "customer_xref"))
    visits = records_of(load_feed(spark, lake, "service_orders"), xref, "service_orders").select(
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
        raise ActivationError(f"cannot train the win-back model as of {as_of}: {exc}") from exc
    params = {
        "as_of_date": as_of.isoformat(), "holdout_date": dates[0].isoformat(),
        "train_dates": ",".join(d.isoformat() for d in dates[1:]), "horizon_months": settings.horizon_months,
        "stages": ",".join(settings.stages), "seed": settings.seed, "classifier": type(model.classifier).__name__,
    }
    run_id, version = _log_run(model, params, config, sample.head(20))
    champion = promote_new_version(config, settings.model_name, version, promote)
    return TrainWinbackReport(as_of, dates, model.metrics, version, champion, run_id, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp run train_winback", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="the present; training dates lie before it (default: latest features)")
    parser.add_argument("--promote", action="store_true", help="make the new version champion")
    args = parser.parse_args(argv)
    config = config_from_args(args)
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    try:
        report = run(spark, config, args.as_of, args.promote)
    except ActivationError as exc:
        print(f"cdp run train_winback: {exc}", file=sys.stderr)
        return 2
    m = report.metrics
    print(
        f"as of {report.as_of}: trained on {', '.join(map(str, report.dates[1:]))}, held out {report.dates[0]}; "
        f"{int(m['train_rows'])} train / {int(m['test_rows'])} holdout rows"
    )
    print(f"holdout AUC {m['test_auc']:.3f}, lift at top decile {m['test_lift_top_decile']:.2f}, base return rate {m['test_base_rate']:.3f}")
    status = "champion" if report.champion else f"not promoted (cdp model promote --name {config.activation.winback.model_name} {report.version})"
    print(f"registered {config.activation.winback.model_name} version {report.version}, {status}; MLflow run {report.run_id}; {report.seconds:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
