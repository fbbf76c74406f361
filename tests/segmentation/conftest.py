"""Synthetic feature rows with three planted customer groups (no Spark needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.catalog import segmentation_features

_GROUPS = {
    # share, then feature means
    "loyal": (0.5, dict(service_visits_12m=3, service_visits_total=12, days_since_last_visit=40, avg_maintenance_interval_days=170,
                        km_per_day=35, share_paid_customer=0.85, share_paid_warranty=0.05, share_paid_insurance=0.05,
                        warranty_claims_total=0.3, complaints_total=0.1, avg_survey_score=92, vehicles_bought=2,
                        service_spend_12m=4000, lifetime_spend=650000, newest_vehicle_price=420000)),
    "lapsed": (0.3, dict(service_visits_12m=0, service_visits_total=3, days_since_last_visit=800, avg_maintenance_interval_days=260,
                         km_per_day=30, share_paid_customer=0.7, share_paid_warranty=0.05, share_paid_insurance=0.1,
                         warranty_claims_total=0.2, complaints_total=0.2, avg_survey_score=75, vehicles_bought=1,
                         service_spend_12m=0, lifetime_spend=150000, newest_vehicle_price=140000)),
    "warranty": (0.2, dict(service_visits_12m=2, service_visits_total=5, days_since_last_visit=120, avg_maintenance_interval_days=200,
                           km_per_day=45, share_paid_customer=0.1, share_paid_warranty=0.8, share_paid_insurance=0.05,
                           warranty_claims_total=4, complaints_total=1.5, avg_survey_score=60, vehicles_bought=1,
                           service_spend_12m=300, lifetime_spend=210000, newest_vehicle_price=200000)),
}


def planted(n: int = 600, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    features, _ = segmentation_features()
    rng = np.random.default_rng(seed)
    frames, truth = [], []
    for index, (share, means) in enumerate(_GROUPS.values()):
        size = int(n * share)
        frame = pd.DataFrame({f: np.abs(rng.normal(means[f], abs(means[f]) * 0.12 + 0.05, size)) for f in features})
        frames.append(frame)
        truth += [index] * size
    X = pd.concat(frames, ignore_index=True)
    X.loc[rng.choice(len(X), 30, replace=False), "avg_survey_score"] = np.nan  # never surveyed
    X.insert(0, "customer_id", [f"CU{i:05d}" for i in range(len(X))])
    return X, np.array(truth)


@pytest.fixture(scope="module")
def planted_rows():
    return planted()
