"""Reminder dates on hand-built vehicle histories, as of 2026-07-01."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.testing import assertDataFrameEqual

from activation.history import build_current_owners, build_visits
from activation.reminders import REMINDER_COLUMNS, build_reminders
from cdp.activation_config import RemindersConfig, ServiceRules

pytestmark = pytest.mark.spark

D = dt.date(2026, 7, 1)
d = dt.date.fromisoformat


@pytest.fixture(scope="module")
def reminders(spark):
    owners = spark.createDataFrame(
        [("V1", "C1"), ("V2", "C2"), ("V3", "C3")], "vin string, customer_id string"
    )
    vehicles = spark.createDataFrame(
        [
            ("V1", d("2025-01-10"), "Aurora", "A3", "GZ001"),
            ("V2", d("2026-03-15"), "Aurora", "A5", "SZ001"),
            ("V3", d("2016-05-20"), "Aurora EV", "Nova", "BJ001"),
        ],
        "vin string, delivered_on date, brand string, model string, selling_dealer string",
    )
    orders = spark.createDataFrame(
        [
            ("V1", dt.datetime(2025, 7, 5, 9), 6000, "first_maintenance", "GZ002"),
            ("V1", dt.datetime(2026, 1, 2, 9), 12000, "maintenance", "GZ002"),
            ("V3", dt.datetime(2025, 9, 1, 9), 150000, "maintenance", "BJ002"),
            # After D: not known yet.
            ("V2", dt.datetime(2026, 7, 1, 0), 900, "first_maintenance", "SZ001"),
        ],
        "vin string, opened_at timestamp, mileage_km int, service_type string, dealer_code string",
    )
    customers = spark.createDataFrame(
        [("C1", d("1990-07-20")), ("C2", d("1988-02-29")), ("C3", None)], "customer_id string, birth_date date"
    )
    dealers = spark.createDataFrame([("C1", "GZ002"), ("C2", "SZ001"), ("C3", "BJ002")], "customer_id string, dealer_code string")
    config = RemindersConfig(brands={"Aurora EV": ServiceRules(maintenance_interval_days=365)})
    return build_reminders(owners, vehicles, build_visits(orders, D), customers, dealers, D, config)


def test_reminder_dates(spark, reminders):
    v1_rate = 12000 / (d("2026-01-02") - d("2025-01-10")).days
    v3_rate = 150000 / (d("2025-09-01") - d("2016-05-20")).days
    import math

    v3_by_km = d("2025-09-01") + dt.timedelta(days=math.ceil(10000 / v3_rate))
    assert v3_by_km < d("2026-09-01")  # far driver: distance comes first
    expected = [
        # Own interval (181 days between the two maintenance visits) beats the distance limit.
        ("C1", "V1", "maintenance", d("2026-01-02") + dt.timedelta(days=181)),
        ("C1", "V1", "insurance_renewal", d("2027-01-10")),
        ("C1", None, "birthday", d("2026-07-20")),
        # No maintenance yet (the visit on D does not count): 6 months after delivery.
        ("C2", "V2", "first_maintenance", d("2026-09-15")),
        ("C2", "V2", "insurance_renewal", d("2027-03-15")),
        # Born on 29 February: 28 February in a common year.
        ("C2", None, "birthday", d("2027-02-28")),
        # One maintenance visit only: the brand's interval and the km rate; overdue is kept.
        ("C3", "V3", "maintenance", v3_by_km),
        ("C3", "V3", "insurance_renewal", d("2027-05-20")),
        # Ten years old on 2026-05-20, so yearly inspections: next on 2027-05-20.
        ("C3", "V3", "annual_inspection", d("2027-05-20")),
    ]
    rows = [(c, v, k, due, (due - D).days) for c, v, k, due in expected]
    expected_df = spark.createDataFrame(rows, "customer_id string, vin string, kind string, due_date date, days_until_due int")
    actual = reminders.select("customer_id", "vin", "kind", "due_date", "days_until_due")
    assertDataFrameEqual(actual, expected_df)
    assert v1_rate > 0  # documents the rate the first vehicle runs at


def test_reminders_carry_dealer_basis_and_stable_ids(reminders):
    rows = {(r["customer_id"], r["kind"]): r for r in reminders.collect()}
    assert tuple(reminders.columns) == REMINDER_COLUMNS
    assert rows[("C1", "maintenance")]["dealer_code"] == "GZ002"  # where it was last serviced
    assert rows[("C2", "first_maintenance")]["dealer_code"] == "SZ001"  # where it was sold
    assert rows[("C1", "maintenance")]["basis"].startswith("last maintenance 2026-01-02, own interval 181 days")
    assert rows[("C3", "maintenance")]["basis"].startswith("last maintenance 2025-09-01, brand interval 365 days")
    assert len({r["reminder_id"] for r in rows.values()}) == len(rows)


def test_warranty_expiry_within_the_horizon(spark):
    owners = spark.createDataFrame([("V9", "C9")], "vin string, customer_id string")
    vehicles = spark.createDataFrame(
        [("V9", d("2023-09-01"), "Aurora", "A3", "GZ001")], "vin string, delivered_on date, brand string, model string, selling_dealer string"
    )
    orders = spark.createDataFrame([], "vin string, opened_at timestamp, mileage_km int, service_type string, dealer_code string")
    customers = spark.createDataFrame([], "customer_id string, birth_date date")
    dealers = spark.createDataFrame([], "customer_id string, dealer_code string")
    rows = build_reminders(owners, vehicles, build_visits(orders, D), customers, dealers, D, RemindersConfig(horizon_days=90))
    # Three years to the day, like the insurance; the first service, long overdue, is dropped.
    assert {(r["kind"], r["due_date"]) for r in rows.collect()} == {
        ("warranty_expiry", d("2026-09-01")), ("insurance_renewal", d("2026-09-01")),
    }


def test_current_owner_is_the_latest_owner_before_d(spark):
    mentions = spark.createDataFrame(
        [
            ("m1", "buyer", "V1", dt.datetime(2020, 1, 1), "A"),
            ("m2", "owner", "V1", dt.datetime(2024, 5, 1), "B"),  # bought it used
            ("m3", "contact", "V1", dt.datetime(2025, 1, 1), "C"),  # a driver, not an owner
            ("m4", "owner", "V1", dt.datetime(2026, 8, 1), "D"),  # after D
        ],
        "mention_id string, role string, vin string, seen_at timestamp, customer_id string",
    )
    owners = build_current_owners(mentions, D)
    assert [(r["vin"], r["customer_id"], r["owner_since"]) for r in owners.collect()] == [("V1", "B", d("2024-05-01"))]
