"""Each feature family on a hand-built history, and point-in-time correctness at the boundary."""

from __future__ import annotations

import datetime as dt

import pytest

from cdp.analytics_config import FeaturesConfig, LifecycleConfig
from features.build import FEATURE_TABLE_COLUMNS, build_customer_features
from features.catalog import FEATURES, segmentation_features
from tests.features.conftest import AS_OF

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def rows(history):
    features = build_customer_features(history, AS_OF, FeaturesConfig())
    return {r["customer_id"]: r.asDict() for r in features.collect()}


def test_table_has_the_catalogued_columns_and_only_customers_seen_before_the_date(history, rows):
    features = build_customer_features(history, AS_OF, FeaturesConfig())
    assert tuple(features.columns) == FEATURE_TABLE_COLUMNS
    assert tuple(FEATURE_TABLE_COLUMNS[2:]) == tuple(f.name for f in FEATURES)
    assert sorted(rows) == ["CA", "CB", "CC", "CD", "CE", "CF", "CH"]
    assert {r["as_of_date"] for r in rows.values()} == {AS_OF}


def test_demographics(rows):
    a, b, e = rows["CA"], rows["CB"], rows["CE"]
    assert (a["age"], a["age_band"], a["gender"], a["city"], a["customer_type"]) == (35, "35-44", "M", "广州市", "individual")
    assert (b["age"], b["age_band"]) == (51, "45-54")  # 51st birthday on the date
    assert (e["age"], e["age_band"]) == (25, "25-34")
    assert rows["CC"]["age"] is None and rows["CC"]["age_band"] is None
    assert a["first_seen_date"] == dt.date(2024, 3, 1)
    assert a["tenure_days"] == (AS_OF - dt.date(2024, 3, 1)).days
    assert rows["CF"]["customer_type"] == "company"


def test_service_behaviour_excludes_the_visit_at_midnight_of_the_date(rows):
    a = rows["CA"]
    assert (a["service_visits_total"], a["service_visits_12m"]) == (4, 2)
    assert a["days_since_last_visit"] == (AS_OF - dt.date(2025, 9, 1)).days
    # maintenance gaps 2024-06-10 -> 2024-12-10 -> 2025-06-10 (the repair is not maintenance)
    assert a["avg_maintenance_interval_days"] == pytest.approx((183 + 182) / 2)
    # delivery 2024-03-10 at 0 km to 17,000 km on 2025-09-01
    assert a["km_per_day"] == pytest.approx(17000 / (dt.date(2025, 9, 1) - dt.date(2024, 3, 10)).days)
    assert (a["share_paid_customer"], a["share_paid_warranty"], a["share_paid_insurance"]) == (0.5, 0.25, 0.0)
    assert (a["warranty_claims_total"], a["warranty_claims_12m"]) == (1, 1)
    e = rows["CE"]
    assert (e["service_visits_total"], e["days_since_last_visit"], e["share_paid_customer"], e["km_per_day"]) == (0, None, None, None)


def test_complaints_judged_as_they_stood_before_the_date(rows):
    b = rows["CB"]
    assert b["complaints_total"] == 3  # C3 arrives after the date
    assert b["complaints_open"] == 2  # C2 open, C4 closed only after the date
    assert b["complaints_response_breaches"] == 2  # C1 after 26 h, C2 still waiting after 63 h
    assert b["complaints_closure_breaches"] == 2  # C1 after 14 working days, C4 open after 42


def test_holidays_are_not_working_days(spark, history):
    """The calendar of the complaint cases: days off added in conf are not working days."""
    import dataclasses

    from cdp.operations_config import CalendarConfig
    from operations.complaints import calendar_for

    holidays = [dt.date(2025, 12, day) for day in (2, 3, 4, 5)]
    calendar = calendar_for(spark, AS_OF, CalendarConfig(holidays=holidays))
    b = build_customer_features(dataclasses.replace(history, calendar=calendar), AS_OF, FeaturesConfig()).filter("customer_id = 'CB'").first()
    assert b["complaints_closure_breaches"] == 1  # C1 now closed on its 10th working day, the deadline


def test_surveys_and_leads(rows):
    b = rows["CB"]
    assert (b["survey_count"], b["avg_survey_score"], b["last_survey_score"], b["last_survey_band"]) == (2, 70.0, 80, "satisfied")
    c = rows["CC"]
    # L2 was marked lost only after the date: open then; L3 is created after it.
    assert (c["leads_total"], c["lead_status"], c["purchase_horizon"]) == (2, "open", "hot")
    assert rows["CD"]["lead_status"] == "lost"


def test_value(rows):
    a, b, e = rows["CA"], rows["CB"], rows["CE"]
    assert (a["vehicles_bought"], a["vehicle_spend"], a["service_spend"], a["service_spend_12m"]) == (1, 200000.0, 1800.0, 1000.0)
    assert (a["lifetime_spend"], a["spend_12m"], a["transactions_total"]) == (201800.0, 1000.0, 5)
    assert (a["newest_vehicle_price_band"], b["newest_vehicle_price_band"], e["newest_vehicle_price_band"]) == ("mid", "luxury", "entry")
    assert (e["spend_12m"], e["newest_vehicle_model"]) == (120000.0, "A3")
    assert a["days_since_last_transaction"] == (AS_OF - dt.date(2025, 9, 1)).days
    # RFM: the most transactions and the most recent score highest, the biggest spender on money.
    assert a["f_score"] > e["f_score"] and a["f_score"] > b["f_score"]
    assert e["r_score"] > b["r_score"]
    assert b["m_score"] > e["m_score"]
    assert rows["CC"]["r_score"] is None and rows["CC"]["lifetime_spend"] == 0.0


def test_lifecycle_stages(rows):
    stages = {customer: row["lifecycle_stage"] for customer, row in rows.items()}
    assert stages == {
        "CA": "active", "CB": "lost", "CC": "prospect", "CD": "defeated_lead",
        "CE": "new_owner", "CF": "dormant", "CH": "contact",
    }


def test_lifecycle_thresholds_come_from_conf(history):
    # A brand that calls an owner lost after 6 months and dormant after 3.
    config = FeaturesConfig(lifecycle=LifecycleConfig(dormant_after_months=3, lost_after_months=6))
    stages = {r["customer_id"]: r["lifecycle_stage"] for r in build_customer_features(history, AS_OF, config).collect()}
    assert (stages["CA"], stages["CF"]) == ("dormant", "lost")


def test_a_day_later_the_boundary_events_count(history):
    later = {r["customer_id"]: r for r in build_customer_features(history, AS_OF + dt.timedelta(days=1), FeaturesConfig()).collect()}
    assert later["CA"]["service_visits_total"] == 5
    assert later["CA"]["warranty_claims_total"] == 2
    assert later["CB"]["last_survey_score"] == 10


def test_segmentation_reads_only_behaviour_and_value():
    driving, money = segmentation_features()
    families = {f.name: f.family for f in FEATURES}
    assert driving and {families[name] for name in driving} <= {"behaviour", "value"}
    assert set(money) <= set(driving) and "lifetime_spend" in money


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"lifecycle": {"dormant_after_months": 12, "lost_after_months": 12}}, "must be less than lost_after_months"),
        ({"age_bands": [35, 25]}, "ascending"),
        ({"price_bands": {"mid": 100000}}, "one band starting at 0"),
    ],
)
def test_invalid_feature_settings_are_rejected(settings, message):
    with pytest.raises(ValueError, match=message):
        FeaturesConfig.model_validate(settings)
