"""Win-back: labels from history, the time-based holdout, lift, reason codes and ranking."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from activation.winback import WINBACK_FEATURES, calibration_error, fit_winback, lift_at_top_decile, snapshot_dates
from cdp.activation_config import WinbackConfig


def test_snapshot_dates_end_their_outcome_window_by_d():
    config = WinbackConfig(horizon_months=6, snapshot_step_months=3, snapshots=4)
    assert snapshot_dates(dt.date(2026, 8, 31), config) == [
        dt.date(2026, 2, 28), dt.date(2025, 11, 30), dt.date(2025, 8, 31), dt.date(2025, 5, 31),
    ]


def test_lift_at_top_decile_against_a_direct_count():
    rng = np.random.default_rng(1)
    for _ in range(20):
        y = rng.integers(0, 2, 200)
        p = rng.random(200)
        top = np.argsort(-p)[:20]
        assert lift_at_top_decile(y, p) == pytest.approx(y[top].mean() / y.mean())
    assert lift_at_top_decile(np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), np.linspace(1, 0, 10)) == pytest.approx(10.0)


def _history(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=n) for name in WINBACK_FEATURES})
    frame["days_since_last_visit"] = rng.uniform(180, 900, n)
    # Owners who lapsed longer ago come back less often.
    p = 1 / (1 + np.exp((frame["days_since_last_visit"] - 400) / 80))
    frame["returned"] = (rng.random(n) < p).astype(int)
    return frame


def test_fit_reports_holdout_auc_lift_and_deciles():
    model = fit_winback(_history(3000, 1), _history(1000, 2), seed=3)
    m = model.metrics
    assert m["test_auc"] > 0.75 and m["test_lift_top_decile"] > 1.5
    assert m["train_rows"] == 3000 and m["test_rows"] == 1000
    assert list(model.deciles["decile"]) == list(range(1, 11)) and model.deciles["customers"].sum() == 1000
    assert model.importance.iloc[0]["feature"] == "days_since_last_visit"


def _history_beyond_recency(n: int, seed: int) -> pd.DataFrame:
    """Returns driven by recency and, as much, by a complaint resolved well (surveyed high)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=n) for name in WINBACK_FEATURES})
    frame["days_since_last_transaction"] = rng.uniform(180, 900, n)
    frame["last_survey_score"] = rng.uniform(0, 100, n)
    logit = -(frame["days_since_last_transaction"] - 500) / 150 + (frame["last_survey_score"] - 50) / 12
    frame["returned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def test_the_model_is_judged_against_most_recent_first():
    recency_only = fit_winback(_history(1500, 1), _history(600, 2), seed=3).metrics
    # days_since_last_transaction is noise there: recency ranks no better than chance.
    assert abs(recency_only["recency_auc"] - 0.5) < 0.06
    beyond = fit_winback(_history_beyond_recency(1500, 1), _history_beyond_recency(600, 2), seed=3).metrics
    assert 0.6 < beyond["recency_auc"] < beyond["test_auc"]
    assert beyond["auc_gain_over_recency"] == pytest.approx(beyond["test_auc"] - beyond["recency_auc"]) and beyond["auc_gain_over_recency"] > 0.1
    assert beyond["lift_gain_over_recency"] > 0 and 0 <= beyond["calibration_error"] < 0.1


def test_calibration_error_against_a_hand_computation():
    deciles = pd.DataFrame({"customers": [10, 30], "mean_p": [0.5, 0.1], "return_rate": [0.3, 0.2]})
    assert calibration_error(deciles) == pytest.approx(0.25 * 0.2 + 0.75 * 0.1)


def test_fit_refuses_a_holdout_with_one_class():
    test = _history(200, 2).assign(returned=0)
    with pytest.raises(ValueError, match="both the training dates and the holdout date need owners who returned"):
        fit_winback(_history(500, 1), test, seed=3)


@pytest.mark.spark
def test_training_label_is_a_visit_within_the_horizon(spark):
    from activation.winback import build_training_rows

    columns = ["customer_id", "as_of_date", "lifecycle_stage", *[f for f in WINBACK_FEATURES if f != "is_lost"]]
    def row(cid, day, stage):
        return (cid, day, stage, *[1.0] * (len(columns) - 3))
    d1, d2 = dt.date(2025, 1, 1), dt.date(2025, 4, 1)
    snapshots = spark.createDataFrame(
        [row("A", d1, "lost"), row("B", d1, "dormant"), row("C", d1, "active"), row("A", d2, "lost"), row("D", d1, "dormant")],
        ", ".join(f"`{c}` {'date' if c == 'as_of_date' else 'string' if c in ('customer_id', 'lifecycle_stage') else 'double'}" for c in columns),
    )
    visits = spark.createDataFrame(
        [
            ("A", dt.datetime(2025, 3, 1)),  # within 6 months of d1, and before d2
            ("B", dt.datetime(2025, 7, 1)),  # 6 months after d1 exactly: outside
            ("C", dt.datetime(2025, 2, 1)),  # active: not a candidate
            ("D", dt.datetime(2024, 12, 31, 23)),  # before d1
        ],
        "customer_id string, visit_at timestamp",
    )
    labelled = build_training_rows(snapshots, visits, WinbackConfig(horizon_months=6))
    got = {(r["customer_id"], r["as_of_date"]): (r["returned"], r["is_lost"]) for r in labelled.collect()}
    assert got == {("A", d1): (1, 1.0), ("B", d1): (0, 0.0), ("A", d2): (0, 1.0), ("D", d1): (0, 0.0)}


@pytest.mark.spark
@pytest.mark.parametrize("on_driver", [False, True], ids=["executors", "driver"])
def test_scoring_ranks_by_value_times_probability_with_reasons(spark, on_driver):
    from activation.winback import score_winback

    class Fixed:
        """A stand-in classifier: p(return) read from one feature column."""

        def predict_proba(self, X):
            p = X["share_paid_customer"].to_numpy()
            return np.column_stack([1 - p, p])

    base = {f: 0.0 for f in WINBACK_FEATURES if f != "is_lost"}
    people = [
        # id, stage, p, service spend, tenure days, open complaints, m_score, last survey, warranty ended, dealer
        ("A", "lost", 0.9, 1000.0, 730.5, 0.0, 2.0, 80.0, True, "GZ1"),
        ("B", "dormant", 0.3, 20000.0, 730.5, 2.0, 5.0, 40.0, False, "GZ1"),
        ("C", "dormant", 0.5, 0.0, 100.0, 1.0, 1.0, None, False, "SZ1"),
        ("Z", "active", 0.99, 99999.0, 730.5, 0.0, 5.0, 90.0, False, "SZ1"),  # not lapsed: not listed
    ]
    rows = []
    for cid, stage, p, spend, tenure, complaints, m, survey, ended, dealer in people:
        values = dict(base, share_paid_customer=p, service_spend=spend, tenure_days=tenure, complaints_open=complaints,
                      m_score=m, last_survey_score=survey, days_since_last_visit=400.0)
        rows.append({"customer_id": cid, "lifecycle_stage": stage, "warranty_ended": ended, "dealer_code": dealer, **values})
    frame = spark.createDataFrame(pd.DataFrame(rows))
    ranked = score_winback(frame, Fixed(), "7", dt.datetime(2026, 7, 1), dt.date(2026, 7, 1), WinbackConfig(min_expected_value=800), on_driver).collect()
    by_id = {r["customer_id"]: r for r in ranked}
    assert set(by_id) == {"A", "B", "C"}
    # Yearly paid spend: A 500 -> floor 800; B 10000; C (under a year) 0 -> 800.
    assert [by_id[c]["expected_value"] for c in "ABC"] == [800.0, 10000.0, 800.0]
    assert [r["customer_id"] for r in sorted(ranked, key=lambda r: r["rank"])] == ["B", "A", "C"]
    assert (by_id["A"]["dealer_rank"], by_id["B"]["dealer_rank"], by_id["C"]["dealer_rank"]) == (2, 1, 1)
    assert by_id["A"]["reason_codes"] == ["no visit for 13 months", "warranty ended"]
    assert by_id["B"]["reason_codes"] == ["no visit for 13 months", "2 complaints unresolved", "high lifetime spend", "low satisfaction (last survey 40)"]
    assert by_id["C"]["reason_codes"] == ["no visit for 13 months", "1 complaint unresolved"]
    assert by_id["B"]["model_version"] == "7"
