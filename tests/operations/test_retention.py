"""The monthly dealer figures on hand-built customers: owners by stage at each month's end,
new owners, first visits, owners won back, leads and defeated leads, first-time fix, and the
region and group roll-ups."""

from __future__ import annotations

import datetime as dt

import pytest

from cdp.analytics_config import LifecycleConfig
from cdp.operations_config import DealersConfig, RetentionConfig
from operations.retention import build_dealer_kpis, kpi_months
from operations.satisfaction import dealer_regions

pytestmark = pytest.mark.spark

D = dt.date
T = dt.datetime
AS_OF = D(2026, 7, 1)


@pytest.fixture(scope="module")
def kpis(spark):
    sales = spark.createDataFrame([
        ("C1", "GZ001", "VC1", "A5", D(2025, 1, 10)),
        ("C2", "GZ001", "VC2", "X3", D(2026, 5, 20)),
        ("C9", "GZ001", "VC9", "A3", D(2026, 7, 1)),  # delivered on D: not known yet
    ], "customer_id string, dealer_code string, vin string, model string, delivered_on date")
    visits = spark.createDataFrame([
        ("C1", "GZ001", D(2025, 3, 1)), ("C1", "GZ001", D(2026, 6, 15)), ("C2", "SZ002", D(2026, 6, 25)), ("C3", "GZ001", D(2025, 12, 1)),
    ], "customer_id string, dealer_code string, visit_date date")
    service = spark.createDataFrame([
        ("RO1", "VC1", "GZ001", T(2025, 3, 1, 9), "maintenance"), ("RO2", "VC1", "GZ001", T(2026, 6, 15, 9), "maintenance"),
        ("RO3", "VC2", "SZ002", T(2026, 6, 25, 9), "first_maintenance"), ("RO4", "VC3", "GZ001", T(2025, 12, 1, 9), "maintenance"),
        # V9: repaired again 18 days later (not a first-time fix), then 36 days after that.
        ("R1", "V9", "GZ001", T(2026, 5, 2, 9), "repair"), ("R2", "V9", "GZ001", T(2026, 5, 20, 9), "warranty"),
        ("R3", "V9", "GZ001", T(2026, 6, 25, 9), "repair"),
    ], "ro_id string, vin string, dealer_code string, opened_at timestamp, service_type string")
    leads = spark.createDataFrame([
        ("L1", "GZ001", T(2026, 6, 1, 9), "won", None), ("L2", "GZ001", T(2026, 6, 2, 9), "lost", "price"),
        ("L3", "GZ001", T(2026, 6, 3, 9), "lost", " "), ("L4", "GZ001", T(2026, 6, 4, 9), "open", None),
        ("L5", "BJ003", T(2026, 6, 5, 9), "open", None), ("L6", "GZ001", T(2026, 7, 1, 9), "lost", "price"),
    ], "lead_id string, dealer_code string, created_at timestamp, status string, lost_reason string")
    winback = spark.createDataFrame([
        ("C1", "GZ001", D(2026, 6, 1)), ("C3", "GZ001", D(2026, 6, 1)), ("C1", "GZ001", D(2026, 2, 1)),
    ], "customer_id string, dealer_code string, as_of_date date")
    codes = spark.createDataFrame([("GZ001",), ("SZ002",), ("BJ003",)], "dealer_code string")
    regions = dealer_regions(spark, codes, DealersConfig(regions={"south": ["GZ*", "SZ*"], "north": ["BJ*"]}))
    sources = {"sales": sales, "visits": visits, "service": service, "leads": leads, "winback": winback}
    built = build_dealer_kpis(spark, sources, regions, AS_OF, LifecycleConfig(), RetentionConfig(months=3))
    return {(r["level"], r["dealer_code"], f"{r['month']:%Y-%m}"): r.asDict() for r in built.collect()}


def test_months_end_before_the_as_of_date(spark):
    months = [(r["month"], r["month_end"]) for r in kpi_months(spark, D(2026, 7, 15), 2).collect()]
    assert months == [(D(2026, 6, 1), D(2026, 7, 1)), (D(2026, 7, 1), D(2026, 7, 15))]
    assert [r["month"] for r in kpi_months(spark, AS_OF, 3).collect()] == [D(2026, 4, 1), D(2026, 5, 1), D(2026, 6, 1)]


def test_owner_base_by_stage_at_each_month_end(kpis):
    june, may, april = (kpis[("dealer", "GZ001", m)] for m in ("2026-06", "2026-05", "2026-04"))
    # June's end: C1 back in June (active), C3 idle 7 months (dormant); C2 now belongs to SZ002.
    assert (june["owners"], june["owners_active"], june["owners_dormant"], june["owners_lost"], june["owners_new"]) == (2, 1, 1, 0, 0)
    assert june["owners_by_model"] == {"A5": 1, "unknown": 1} and june["lost_rate"] == 0
    # May's end: C1 idle 15 months (lost), C2 delivered in May (new), C3 idle 6 months (dormant).
    assert (may["owners"], may["owners_lost"], may["owners_new"], may["owners_dormant"]) == (3, 1, 1, 1)
    assert may["lost_by_model"] == {"A5": 1, "X3": 0, "unknown": 0} and may["lost_rate"] == pytest.approx(round(1 / 3, 4))
    assert (april["owners"], april["owners_active"], april["owners_lost"]) == (2, 1, 1)
    assert all(r["complete"] for r in kpis.values())


def test_new_owners_first_visits_served_and_won_back(kpis):
    may, june = kpis[("dealer", "GZ001", "2026-05")], kpis[("dealer", "GZ001", "2026-06")]
    sz = kpis[("dealer", "SZ002", "2026-06")]
    assert (may["new_owners"], june["new_owners"]) == (1, 0)
    assert (sz["first_visits"], sz["owners_served"], sz["owners"], sz["owners_new"]) == (1, 1, 1, 1)
    assert (june["first_visits"], june["owners_served"]) == (0, 1)
    # C1, listed on Jun 1, came on Jun 15; C3 did not come; the February list is too old.
    assert (june["won_back"], may["won_back"]) == (1, 0)


def test_leads_and_first_time_fix(kpis):
    june, may = kpis[("dealer", "GZ001", "2026-06")], kpis[("dealer", "GZ001", "2026-05")]
    assert (june["leads"], june["leads_won"], june["leads_lost"]) == (4, 1, 2)
    assert (june["lead_conversion_rate"], june["defeated_rate"]) == (0.25, 0.5)
    assert june["lost_reasons"] == {"price": 1, "unknown": 1}
    # May: R1 repeated within 30 days, R2 not: 1 of 2. June's R3: its 30 days are not over.
    assert (may["repairs"], may["repairs_judged"], may["repeat_repairs"], may["first_time_fix_rate"]) == (2, 2, 1, 0.5)
    assert (june["repairs"], june["repairs_judged"], june["first_time_fix_rate"]) == (1, 0, None)


def test_region_and_group_roll_ups(kpis):
    group, south, north = kpis[("group", "group", "2026-06")], kpis[("region", "south", "2026-06")], kpis[("region", "north", "2026-06")]
    assert (group["owners"], group["owners_new"], group["leads"], group["won_back"]) == (3, 1, 5, 1)
    assert group["owners_by_model"] == {"A5": 1, "X3": 1, "unknown": 1}
    assert group["lead_conversion_rate"] == 0.2 and group["region"] is None
    assert (south["owners"], south["leads"], south["region"]) == (3, 4, "south")
    assert (north["owners"], north["leads"], north["lead_conversion_rate"]) == (0, 1, 0.0)
    dealers = [r for r in kpis.values() if r["level"] == "dealer" and r["month"] == D(2026, 6, 1)]
    assert sum(r["owners"] for r in dealers) == group["owners"]


def test_owner_state_on_a_day_with_several_events(spark):
    """Two events on one day: the higher dealer code is the home dealer; a latest purchase
    without a model counts as `unknown`, not as the model bought before it."""
    sales = spark.createDataFrame([
        ("C5", "GZ001", "V51", "A4", D(2026, 2, 10)), ("C5", "BJ003", "V52", None, D(2026, 4, 10)),
    ], "customer_id string, dealer_code string, vin string, model string, delivered_on date")
    visits = spark.createDataFrame([("C5", "SZ002", D(2026, 4, 10))], "customer_id string, dealer_code string, visit_date date")
    service = spark.createDataFrame([], "ro_id string, vin string, dealer_code string, opened_at timestamp, service_type string")
    leads = spark.createDataFrame([], "lead_id string, dealer_code string, created_at timestamp, status string, lost_reason string")
    winback = spark.createDataFrame([], "customer_id string, dealer_code string, as_of_date date")
    regions = dealer_regions(spark, spark.createDataFrame([("SZ002",)], "dealer_code string"), DealersConfig(regions={"south": ["SZ*"]}))
    sources = {"sales": sales, "visits": visits, "service": service, "leads": leads, "winback": winback}
    rows = build_dealer_kpis(spark, sources, regions, AS_OF, LifecycleConfig(), RetentionConfig(months=3)).collect()
    owners = {(r["level"], r["dealer_code"], f"{r['month']:%Y-%m}"): r["owners_by_model"] for r in rows if r["owners"]}
    assert owners == {
        (level, code, month): {"unknown": 1}
        for month in ("2026-04", "2026-05", "2026-06") for level, code in (("dealer", "SZ002"), ("region", "south"), ("group", "group"))
    }
