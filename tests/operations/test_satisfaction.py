"""Satisfaction by dealer and month, and the call-back list, on hand-built surveys: weighted
scores against hand computations, bands, change on last month, ranks in region and group."""

from __future__ import annotations

import datetime as dt

import pytest

from cdp.operations_config import DealersConfig, SatisfactionConfig
from operations.satisfaction import build_callbacks, build_satisfaction_monthly, dealer_regions, scored_surveys

pytestmark = pytest.mark.spark

T = dt.datetime
AS_OF = dt.date(2026, 7, 1)
SCHEMA = "record_id string, survey_id string, survey_type string, dealer_code string, surveyed_at timestamp, vin string, overall_score int, item_scores string"
CONFIG = SatisfactionConfig(
    item_weights={
        "default": {"csi": {"process": 45, "staff": 35, "facility": 20}},
        "Lux": {"csi": {"process": 10, "staff": 10, "facility": 80}},
    },
    callback_below=75, callback_days=30, callback_channel="phone",
)
DEALERS = DealersConfig(regions={"south": ["GZ*", "SZ002"], "north": ["BJ*"]})


def _survey(sid, dealer, when, overall, items=None, vin=None, kind="csi"):
    return (f"r{sid}", sid, kind, dealer, when, vin, overall, items)


@pytest.fixture(scope="module")
def built(spark):
    surveys = spark.createDataFrame([
        # GZ001, June: a Lux car (its brand's weights), an Aurora car (default weights), no items.
        _survey("A", "GZ001", T(2026, 6, 3, 10), 78, '{"process": 80, "staff": 60, "facility": 90}', vin="V1"),
        _survey("B", "GZ001", T(2026, 6, 9, 10), 100, '{"process": 70, "staff": 50, "facility": 100}', vin="V2"),
        _survey("C", "GZ001", T(2026, 6, 20, 10), 40),
        # GZ001, May: only one weighted item, which then carries the whole weight.
        _survey("D", "GZ001", T(2026, 5, 20, 10), 88, '{"process": 90}'),
        # SZ002, June: an item without a weight is left out; scores given as text count.
        _survey("E", "SZ002", T(2026, 6, 10, 10), 95, '{"process": 90, "staff": 90, "facility": 90, "extra": 10}'),
        _survey("J", "SZ002", T(2026, 6, 25, 10), 50, '{"process": "40", "staff": 80}'),
        # BJ003: an unreadable item score; ZZ9: in no region.
        _survey("F", "BJ003", T(2026, 6, 11, 10), 60, '{"process": "x"}'),
        _survey("H", "ZZ9", T(2026, 6, 12, 10), 20),
        # On D: not known yet. May, low: older than the call-back window.
        _survey("G", "GZ001", T(2026, 7, 1, 9), 10, kind="ssi"),
        _survey("I", "GZ001", T(2026, 5, 30, 10), 30),
        # No score at all: not a scored survey.
        _survey("N", "GZ001", T(2026, 6, 5, 10), None),
    ], SCHEMA)
    brands = spark.createDataFrame([("V1", "Lux"), ("V2", "Aurora")], "vin string, brand string")
    scored = scored_surveys(spark, surveys, brands, CONFIG, AS_OF)
    monthly = build_satisfaction_monthly(scored, dealer_regions(spark, scored, DEALERS), AS_OF)
    owners = spark.createDataFrame([("rC", "CUST_C"), ("rF", "CUST_F"), ("rJ", "CUST_J"), ("rI", "CUST_I")], "record_id string, customer_id string")
    consent = spark.createDataFrame(
        [("CUST_F", "phone", True), ("CUST_C", "sms", True), ("CUST_J", "phone", False)], "customer_id string, channel string, opted_out boolean"
    )
    callbacks = build_callbacks(scored, owners, consent, CONFIG, AS_OF)
    return (
        {r["survey_id"]: r.asDict() for r in scored.collect()},
        {(r["dealer_code"], str(r["month"])[:7], r["survey_type"]): r.asDict() for r in monthly.collect()},
        {r["survey_id"]: r.asDict() for r in callbacks.collect()},
    )


def test_weighted_score_of_each_survey(built):
    scored, _, _ = built
    assert set(scored) == set("ABCDEFHIJ")
    assert scored["A"]["weighted_score"] == pytest.approx((10 * 80 + 10 * 60 + 80 * 90) / 100)  # Lux weights: 86
    assert scored["B"]["weighted_score"] == pytest.approx((45 * 70 + 35 * 50 + 20 * 100) / 100)  # default: 69
    assert scored["D"]["weighted_score"] == 90
    assert scored["E"]["weighted_score"] == 90
    assert scored["J"]["weighted_score"] == pytest.approx((45 * 40 + 35 * 80) / 80)  # 57.5
    # Nothing weighted: the overall score stands in, and says so.
    assert (scored["C"]["weighted_score"], scored["C"]["weighted"]) == (40, False)
    assert (scored["F"]["weighted_score"], scored["F"]["weighted"]) == (60, False)
    assert scored["A"]["weighted"]


def test_dealer_month_figures(built):
    _, monthly, _ = built
    june = monthly[("GZ001", "2026-06", "csi")]
    assert june["surveys"] == 3
    assert june["avg_overall"] == pytest.approx(round((78 + 100 + 40) / 3, 2))
    assert june["avg_weighted"] == pytest.approx((86 + 69 + 40) / 3)
    assert june["item_avgs"] == {"facility": 95.0, "process": 75.0, "staff": 55.0}
    assert june["very_satisfied_share"] == pytest.approx(round(1 / 3, 4))
    bands = {k: june[k] for k in ("band_very_satisfied", "band_satisfied", "band_neutral", "band_poor", "band_very_poor")}
    assert bands == {"band_very_satisfied": 1, "band_satisfied": 1, "band_neutral": 0, "band_poor": 1, "band_very_poor": 0}
    assert june["complete"] and june["as_of_date"] == AS_OF
    # Change on May: May's one survey weighted 90 (with I's 30: 60).
    may = monthly[("GZ001", "2026-05", "csi")]
    assert may["avg_weighted"] == 60 and may["prev_avg_weighted"] is None
    assert (june["prev_avg_weighted"], june["change_on_prev_month"]) == (60, pytest.approx(65 - 60))
    # Nothing surveyed on or after D.
    assert not [k for k in monthly if k[2] == "ssi"]


def test_ranks_in_region_and_group(built):
    _, monthly, _ = built
    june = {dealer: row for (dealer, month, kind), row in monthly.items() if month == "2026-06" and kind == "csi"}
    assert {d: r["region"] for d, r in june.items()} == {"GZ001": "south", "SZ002": "south", "BJ003": "north", "ZZ9": "unassigned"}
    assert june["SZ002"]["avg_weighted"] == pytest.approx((90 + 57.5) / 2)
    assert [(d, june[d]["rank_in_region"], june[d]["dealers_in_region"]) for d in ("SZ002", "GZ001", "BJ003")] == [
        ("SZ002", 1, 2), ("GZ001", 2, 2), ("BJ003", 1, 1),
    ]
    assert [june[d]["rank_in_group"] for d in ("SZ002", "GZ001", "BJ003", "ZZ9")] == [1, 2, 3, 4]
    assert {june[d]["dealers_in_group"] for d in june} == {4}
    # Region and group means are over surveys, not over dealers.
    assert june["GZ001"]["region_avg_weighted"] == pytest.approx((86 + 69 + 40 + 90 + 57.5) / 5)
    assert june["GZ001"]["group_avg_weighted"] == pytest.approx(round((86 + 69 + 40 + 90 + 57.5 + 60 + 20) / 7, 2))


def test_callbacks_are_recent_low_scores_of_customers_who_may_be_called(built):
    _, _, callbacks = built
    # C: low, opted out of sms only. J: low, said yes to calls. F opted out of calls; H is no
    # known customer; I is older than the window; A scored 78; G is not known on D.
    assert set(callbacks) == {"C", "J"}
    assert (callbacks["J"]["customer_id"], callbacks["J"]["lowest_item"], callbacks["J"]["lowest_item_score"]) == ("CUST_J", "process", 40)
    assert callbacks["C"]["lowest_item"] is None and callbacks["C"]["overall_score"] == 40


def test_weights_must_be_positive():
    with pytest.raises(ValueError, match="item_weights.default.csi"):
        SatisfactionConfig(item_weights={"default": {"csi": {"process": 0}}})
    assert DEALERS.region_of("GZ017") == "south" and DEALERS.region_of("SZ001") == "unassigned"


def test_the_step_writes_both_tables_and_a_rerun_replaces_them(spark, app_config, tmp_path):
    from cdp import catalog
    from cdp.config import LakeConfig
    from cdp.lake import Lake, read_table
    from tests.steps import run_step

    config = app_config.model_copy(update={"lake": LakeConfig(root=str(tmp_path / "lake"), raw_root=str(tmp_path / "raw"))})
    lake = Lake(config.lake.root)
    rows = [_survey("A", "GZ001", T(2026, 6, 3, 10), 78, '{"process": 80, "staff": 60, "facility": 90}'),
            _survey("C", "GZ001", T(2026, 6, 20, 10), 40), _survey("E", "SZ002", T(2026, 5, 10, 10), 95, kind="ssi"),
            _survey("G", "GZ001", T(2026, 7, 1, 9), 10)]
    spark.createDataFrame(rows, SCHEMA).write.format("delta").save(lake.path(catalog.silver("surveys")))
    report = run_step(spark, config, "satisfaction", as_of=AS_OF)
    # Not resolved yet: nobody to call back.
    assert (report.surveys, report.dealer_months, report.callbacks) == (3, 2, 0)
    run_step(spark, config, "satisfaction", as_of=AS_OF)
    monthly = read_table(spark, lake.path(catalog.SATISFACTION_MONTHLY))
    assert monthly.count() == 2 and monthly.agg({"surveys": "sum"}).first()[0] == 3
    gz = monthly.filter("dealer_code = 'GZ001'").first()
    assert gz["region"] == "south" and gz["avg_weighted"] == pytest.approx((round((45 * 80 + 35 * 60 + 20 * 90) / 100, 2) + 40) / 2)
    assert read_table(spark, lake.path(catalog.SATISFACTION_CALLBACKS)).count() == 0
