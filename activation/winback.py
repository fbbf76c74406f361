"""The win-back model and list: which dormant and lost owners are likely to come back, and
what they are worth.

Training looks back in time. At each of several past as-of dates D_k, owners who were
dormant or lost at D_k are labelled 1 if they had a repair order within `horizon_months`
after D_k. Features are the point-in-time features of D_k, so nothing from after D_k leaks in.
The latest D_k is held out whole (a time-based holdout): the model is fitted on the earlier
dates and judged on the latest by AUC and lift in the top decile.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.activation_config import WinbackConfig
from cdp.pandas_map import map_in_pandas

__all__ = [
    "WINBACK_COLUMNS",
    "WINBACK_FEATURES",
    "WinbackModel",
    "build_reason_codes",
    "build_training_rows",
    "build_warranty_status",
    "calibration_error",
    "fit_winback",
    "lift_at_top_decile",
    "recency_scores",
    "score_winback",
    "snapshot_dates",
]

log = logging.getLogger(__name__)

WINBACK_FEATURES = (
    "days_since_last_visit", "days_since_last_transaction", "service_visits_total", "service_visits_12m",
    "avg_maintenance_interval_days", "km_per_day", "share_paid_customer", "share_paid_warranty", "share_paid_insurance",
    "warranty_claims_total", "complaints_total", "complaints_open", "complaints_response_breaches",
    "complaints_closure_breaches", "survey_count", "avg_survey_score", "last_survey_score", "vehicles_bought",
    "vehicle_spend", "service_spend", "lifetime_spend", "newest_vehicle_price", "tenure_days", "age",
    "r_score", "f_score", "m_score", "is_lost",
)
WINBACK_COLUMNS = (
    "customer_id", "rank", "dealer_rank", "lifecycle_stage", "p_return", "expected_value", "score", "reason_codes",
    "dealer_code", "model_version", "scored_at", "as_of_date",
)


def snapshot_dates(as_of: dt.date, config: WinbackConfig) -> list[dt.date]:
    """Past as-of dates whose outcome window ends by D, latest first (the holdout)."""
    return [_shift(as_of, -(config.horizon_months + k * config.snapshot_step_months)) for k in range(config.snapshots)]


def _shift(day: dt.date, months: int) -> dt.date:
    year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def with_model_columns(features: DataFrame) -> DataFrame:
    """Feature rows -> the same plus `is_lost` and every `WINBACK_FEATURES` column as double."""
    df = features.withColumn("is_lost", (F.col("lifecycle_stage") == "lost").cast("double"))
    for name in WINBACK_FEATURES:
        df = df.withColumn(name, F.col(name).cast("double"))
    return df


def build_training_rows(snapshots: DataFrame, visits: DataFrame, config: WinbackConfig) -> DataFrame:
    """Feature rows of past as-of dates (restricted to `config.stages`) and repair-order
    times (customer_id, visit_at) -> the rows plus `returned` (1 if a visit fell within
    `horizon_months` from the row's as-of date). Grain: (customer_id, as_of_date)."""
    candidates = snapshots.filter(F.col("lifecycle_stage").isin(*config.stages))
    window_end = F.add_months(F.col("as_of_date"), config.horizon_months).cast("timestamp")
    returned = (
        candidates.select("customer_id", "as_of_date")
        .join(visits.select("customer_id", "visit_at"), "customer_id")
        .filter((F.col("visit_at") >= F.col("as_of_date").cast("timestamp")) & (F.col("visit_at") < window_end))
        .select("customer_id", "as_of_date")
        .distinct()
        .withColumn("returned", F.lit(1))
    )
    return (
        candidates.join(returned, ["customer_id", "as_of_date"], "left")
        .withColumn("returned", F.coalesce("returned", F.lit(0)))
        .transform(with_model_columns)
    )


def lift_at_top_decile(y: np.ndarray, p: np.ndarray) -> float:
    """Return rate among the 10% highest-scored over the overall return rate."""
    base = float(np.mean(y))
    if base == 0:
        return float("nan")
    top = max(1, int(np.ceil(len(p) * 0.1)))
    order = np.argsort(-p, kind="stable")[:top]
    return float(np.mean(y[order]) / base)


@dataclass
class WinbackModel:
    classifier: Any
    metrics: dict[str, float]
    deciles: pd.DataFrame
    importance: pd.DataFrame


def calibration_error(deciles: pd.DataFrame) -> float:
    """Expected calibration error: the customer-weighted mean gap between the predicted and
    the observed return rate over the deciles."""
    weights = deciles["customers"] / max(float(deciles["customers"].sum()), 1.0)
    return float((weights * (deciles["mean_p"] - deciles["return_rate"]).abs()).sum())


def recency_scores(rows: pd.DataFrame) -> np.ndarray:
    """The ranking a call centre uses without a model: most recent transaction first."""
    return -rows["days_since_last_transaction"].astype("float64").fillna(1e9).to_numpy()


def _deciles(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({"y": y, "p": p}).sort_values("p", ascending=False, kind="stable").reset_index(drop=True)
    frame["decile"] = (np.arange(len(frame)) * 10 // max(len(frame), 1)) + 1
    table = frame.groupby("decile").agg(customers=("y", "size"), returned=("y", "sum"), mean_p=("p", "mean"))
    table["return_rate"] = table["returned"] / table["customers"]
    table["lift"] = table["return_rate"] / max(frame["y"].mean(), 1e-12)
    return table.reset_index()


def fit_winback(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> WinbackModel:
    """Fit a gradient-boosted classifier on `train` and judge it on `test` (the later date).
    Both hold `WINBACK_FEATURES` and `returned`."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import average_precision_score, roc_auc_score

    features = list(WINBACK_FEATURES)
    y_train, y_test = train["returned"].to_numpy(), test["returned"].to_numpy()
    if len(set(y_train)) < 2 or len(set(y_test)) < 2:
        raise ValueError("both the training dates and the holdout date need owners who returned and owners who did not")
    classifier = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, max_leaf_nodes=31, l2_regularization=1.0, random_state=seed)
    classifier.fit(train[features].astype("float64"), y_train)
    p_test = classifier.predict_proba(test[features].astype("float64"))[:, 1]
    p_train = classifier.predict_proba(train[features].astype("float64"))[:, 1]
    recency = recency_scores(test)
    deciles = _deciles(y_test, p_test)
    metrics = {
        "test_auc": float(roc_auc_score(y_test, p_test)),
        "test_lift_top_decile": lift_at_top_decile(y_test, p_test),
        # The same holdout ranked by recency alone, and what the model adds over it.
        "recency_auc": float(roc_auc_score(y_test, recency)),
        "recency_lift_top_decile": lift_at_top_decile(y_test, recency),
        "calibration_error": calibration_error(deciles),
        "test_average_precision": float(average_precision_score(y_test, p_test)),
        "test_base_rate": float(np.mean(y_test)),
        "train_auc": float(roc_auc_score(y_train, p_train)),
        "train_rows": float(len(train)),
        "test_rows": float(len(test)),
    }
    sample = test.sample(n=min(len(test), 5000), random_state=seed)
    permuted = permutation_importance(
        classifier, sample[features].astype("float64"), sample["returned"].to_numpy(), scoring="roc_auc", n_repeats=3, random_state=seed
    )
    importance = pd.DataFrame({"feature": features, "auc_drop": permuted.importances_mean}).sort_values("auc_drop", ascending=False)
    metrics["auc_gain_over_recency"] = metrics["test_auc"] - metrics["recency_auc"]
    metrics["lift_gain_over_recency"] = metrics["test_lift_top_decile"] - metrics["recency_lift_top_decile"]
    return WinbackModel(classifier, metrics, deciles, importance)


def build_reason_codes() -> Column:
    """Why a customer is on the list, in words a call agent can use, strongest first.
    Needs the feature columns and `warranty_ended`."""
    months = F.floor(F.col("days_since_last_visit") / F.lit(30.44)).cast("int")
    no_visit = F.when(F.col("days_since_last_visit").isNotNull(), F.concat(F.lit("no visit for "), months, F.lit(" months"))).otherwise(
        F.lit("never serviced here")
    )
    open_complaints = F.col("complaints_open")
    codes = [
        no_visit,
        F.when(F.col("warranty_ended"), F.lit("warranty ended")),
        F.when(open_complaints == 1, F.lit("1 complaint unresolved")).when(
            open_complaints > 1, F.concat(open_complaints.cast("int").cast("string"), F.lit(" complaints unresolved"))
        ),
        F.when(F.col("m_score") >= 5, F.lit("high lifetime spend")),
        F.when(F.col("last_survey_score") < 60, F.concat(F.lit("low satisfaction (last survey "), F.col("last_survey_score").cast("int"), F.lit(")"))),
        F.when(F.col("complaints_response_breaches") > 0, F.lit("complaint answered late")),
    ]
    return F.filter(F.array(*codes), lambda code: code.isNotNull())


def score_winback(
    candidates: DataFrame, classifier: Any, model_version: str, scored_at: dt.datetime, as_of: dt.date, config: WinbackConfig,
    on_driver: bool = False,
) -> DataFrame:
    """Feature rows of D for dormant and lost owners, with `dealer_code` and `warranty_ended`
    -> `WINBACK_COLUMNS`, ranked by p_return x expected_value (overall and per dealer).

    The classifier travels to the executors in the closure: no MLflow access is needed there.
    `on_driver`: a small lake's rows are scored on the driver instead (`cdp.pandas_map`).
    Expected value is the customer's yearly customer-paid service spend over their tenure,
    at least `min_expected_value`.
    """
    features = list(WINBACK_FEATURES)
    rows = with_model_columns(candidates.filter(F.col("lifecycle_stage").isin(*config.stages)))

    def predict(batches):  # type: ignore[no-untyped-def]
        for batch in batches:
            p = classifier.predict_proba(batch[features].astype("float64"))[:, 1] if len(batch) else []
            yield pd.DataFrame({"customer_id": batch["customer_id"], "p_return": p})

    scored = map_in_pandas(rows.select("customer_id", *features), predict, "customer_id string, p_return double", on_driver=on_driver)
    years = F.greatest(F.col("tenure_days") / F.lit(365.25), F.lit(1.0))
    valued = (
        rows.join(scored, "customer_id")
        .withColumn("expected_value", F.round(F.greatest(F.coalesce(F.col("service_spend"), F.lit(0.0)) / years, F.lit(config.min_expected_value)), 2))
        .withColumn("score", F.round(F.col("p_return") * F.col("expected_value"), 4))
        .withColumn("reason_codes", build_reason_codes())
    )
    overall = Window.orderBy(F.desc("score"), "customer_id")
    per_dealer = Window.partitionBy("dealer_code").orderBy(F.desc("score"), "customer_id")
    return (
        valued.withColumn("rank", F.row_number().over(overall))
        .withColumn("dealer_rank", F.row_number().over(per_dealer))
        .withColumn("model_version", F.lit(model_version))
        .withColumn("scored_at", F.lit(scored_at).cast("timestamp"))
        .withColumn("as_of_date", F.lit(as_of))
        .select(*WINBACK_COLUMNS)
    )


def build_warranty_status(owners: DataFrame, vehicles: DataFrame, as_of: dt.date, warranty_years: int) -> DataFrame:
    """Owners (vin, customer_id) and vehicle facts (vin, delivered_on) -> customer_id,
    warranty_ended: every vehicle the customer owns is past its time-based warranty at D."""
    ended = F.add_months(F.col("delivered_on"), warranty_years * 12) < F.lit(as_of)
    return owners.join(vehicles, "vin").groupBy("customer_id").agg(F.min(ended).alias("warranty_ended"))
