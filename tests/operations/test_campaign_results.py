"""Campaign lift against the control group on a planted effect and on hand-counted cases,
and reminders' follow-through."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest

from operations.campaign_results import Z_95, build_campaign_results, build_reminder_followthrough

pytestmark = pytest.mark.spark

D = dt.date
AS_OF = D(2026, 7, 1)
AUDIENCE = "campaign string, version int, customer_id string, holdout boolean, as_of_date date"
EVENTS = "customer_id string, day date"


@pytest.fixture(scope="module")
def results(spark):
    rng = random.Random(20261202)
    audience, repairs, purchases = [], [], []
    listed_day = D(2026, 3, 2)
    # A planted effect: listed customers come with probability 0.30, the control group 0.20.
    for i in range(4000):
        holdout = i % 2 == 1
        customer = f"P{i}"
        audience.append(("maintenance_due_sms", 1, customer, holdout, listed_day))
        if rng.random() < (0.20 if holdout else 0.30):
            repairs.append((customer, listed_day + dt.timedelta(days=rng.randrange(60))))
        elif rng.random() < 0.5:
            # Outside the 60-day window (the day before the list, or its end): not a response.
            repairs.append((customer, rng.choice([listed_day - dt.timedelta(days=1), listed_day + dt.timedelta(days=60)])))
    # Hand-counted: 5 of 10 listed responded, 2 of 10 in the control group; a purchase campaign
    # where only purchases count; a version whose window is still open.
    for i in range(10):
        audience.append(("vip_sales", 1, f"S{i}", False, D(2026, 4, 1)))
        audience.append(("vip_sales", 1, f"T{i}", True, D(2026, 4, 1)))
        audience.append(("vip_sales", 2, f"S{i}", False, D(2026, 6, 1)))
        if i < 5:
            purchases.append((f"S{i}", D(2026, 4, 10)))
        if i < 2:
            purchases.append((f"T{i}", D(2026, 5, 1)))
        repairs.append((f"T{i}", D(2026, 4, 5)))  # a repair is no response to a sales campaign
    # A small list: 24 of 80 listed came, none of a control group of 6.
    for i in range(86):
        audience.append(("birthday_wechat", 1, f"B{i}", i >= 80, D(2026, 4, 1)))
        if i < 24:
            repairs.append((f"B{i}", D(2026, 4, 20)))
    # A list with no control group at all: no interval, no division by zero.
    for i in range(5):
        audience.append(("no_holdout", 1, f"N{i}", False, D(2026, 4, 1)))
    windows = {"maintenance_due_sms": ("repair_order", 60), "vip_sales": ("purchase", 45), "birthday_wechat": ("repair_order", 45)}
    built = build_campaign_results(
        spark, spark.createDataFrame(audience, AUDIENCE), spark.createDataFrame(repairs, EVENTS), spark.createDataFrame(purchases, EVENTS),
        windows, AS_OF,
    )
    return {(r["campaign"], r["version"]): r.asDict() for r in built.collect()}, audience, repairs


def test_a_planted_lift_is_recovered_within_its_interval(results):
    measured, audience, repairs = results
    row = measured[("maintenance_due_sms", 1)]
    assert (row["listed"], row["control"]) == (2000, 2000)
    # The counts are the ones planted (inside the window only).
    window = {c for c, day in repairs if D(2026, 3, 2) <= day < D(2026, 5, 1)}
    assert row["listed_responders"] == sum(1 for name, _, c, h, _ in audience if name == "maintenance_due_sms" and not h and c in window)
    assert row["control_responders"] == sum(1 for name, _, c, h, _ in audience if name == "maintenance_due_sms" and h and c in window)
    assert row["lift_ci_low"] < 0.10 < row["lift_ci_high"] and row["significant"]
    assert row["window_end"] == D(2026, 5, 1) and row["as_of_date"] == AS_OF


def test_lift_and_interval_against_a_hand_computation(results):
    measured, _, _ = results
    row = measured[("vip_sales", 1)]
    assert (row["listed"], row["listed_responders"], row["control"], row["control_responders"]) == (10, 5, 10, 2)
    # Wilson intervals of 5/10 and 2/10, combined by Newcombe's method, by hand.
    def wilson(p, n):
        z2 = Z_95**2
        centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), Z_95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
        return centre - half, centre + half

    (l1, u1), (l0, u0) = wilson(0.5, 10), wilson(0.2, 10)
    assert (round(l1, 4), round(u1, 4), round(l0, 4), round(u0, 4)) == (0.2366, 0.7634, 0.0567, 0.5098)  # published Wilson bounds
    assert row["lift"] == pytest.approx(0.3)
    low, high = 0.3 - math.sqrt((0.5 - l1) ** 2 + (u0 - 0.2) ** 2), 0.3 + math.sqrt((u1 - 0.5) ** 2 + (0.2 - l0) ** 2)
    assert (row["lift_ci_low"], row["lift_ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert row["relative_lift"] == pytest.approx(1.5) and not row["significant"]
    # Version 2's 45 days are not over on D.
    assert ("vip_sales", 2) not in measured


def test_a_control_group_of_six_with_no_responder_proves_nothing(results):
    """0 of 6 has a rate of 0 and, by the normal approximation, no uncertainty at all: the lift
    would look certain. The score interval keeps the control rate's doubt."""
    measured, _, _ = results
    row = measured[("birthday_wechat", 1)]
    assert (row["listed"], row["listed_responders"], row["control"], row["control_responders"]) == (80, 24, 6, 0)
    wald = Z_95 * math.sqrt(0.3 * 0.7 / 80)
    assert 0.3 - wald > 0  # what the normal approximation would claim
    assert row["lift_ci_low"] < 0 < 0.3 < row["lift_ci_high"] and not row["significant"]


def test_a_list_without_a_control_group_has_no_interval(results):
    measured, _, _ = results
    row = measured[("no_holdout", 1)]
    assert (row["listed"], row["control"], row["control_rate"]) == (5, 0, None)
    assert row["lift"] is None and row["lift_ci_low"] is None and row["lift_ci_high"] is None and not row["significant"]


def test_follow_through_counts_each_reminder_once(spark):
    reminders = spark.createDataFrame([
        # Listed on two days: one reminder. Came 10 days after the due date.
        ("C1", "V1", "maintenance", D(2026, 5, 10), "GZ001", D(2026, 4, 20)),
        ("C1", "V1", "maintenance", D(2026, 5, 10), "GZ001", D(2026, 4, 21)),
        # Came 40 days late: not followed.
        ("C2", "V2", "maintenance", D(2026, 5, 10), "GZ001", D(2026, 4, 20)),
        # No VIN: the customer's own repair order counts.
        ("C3", None, "first_maintenance", D(2026, 5, 3), "SZ002", D(2026, 4, 20)),
        # Due too recently to judge; a kind that is not judged.
        ("C4", "V4", "maintenance", D(2026, 6, 20), "GZ001", D(2026, 6, 1)),
        ("C5", "V5", "birthday", D(2026, 5, 10), "GZ001", D(2026, 4, 20)),
    ], "customer_id string, vin string, kind string, due_date date, dealer_code string, as_of_date date")
    orders = spark.createDataFrame([
        ("C1", "V1", D(2026, 5, 20)), ("C2", "V2", D(2026, 6, 19)), ("C3", "V3", D(2026, 5, 1)), ("C4", "V4", D(2026, 6, 21)),
    ], "customer_id string, vin string, day date")
    rows = build_reminder_followthrough(reminders, orders, ["first_maintenance", "maintenance"], 30, AS_OF).collect()
    got = {(r["kind"], r["dealer_code"], f"{r['due_month']:%Y-%m}"): (r["reminded"], r["came"], r["came_share"]) for r in rows}
    assert got == {("maintenance", "GZ001", "2026-05"): (2, 1, 0.5), ("first_maintenance", "SZ002", "2026-05"): (1, 1, 1.0)}
