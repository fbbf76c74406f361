"""Complaint cases on hand-built complaints: deadlines on China's calendar, status and
breaches on the as-of date, escalation and the repeat rule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cdp.operations_config import CalendarConfig, ComplaintRulesConfig
from operations.complaints import build_complaint_cases, calendar_table

pytestmark = pytest.mark.spark

T = dt.datetime
AS_OF = dt.date(2026, 10, 15)
SCHEMA = (
    "record_id string, complaint_id string, dealer_code string, channel string, category string, severity string, "
    "received_at timestamp, first_response_at timestamp, closed_at timestamp, status string"
)


def _complaint(cid, received, responded=None, closed=None, dealer="GZ001", category="service", severity="normal", status=None):
    status = status or ("closed" if closed else "open")
    return (f"r{cid}", cid, dealer, "hotline_400", category, severity, received, responded, closed, status)


@pytest.fixture(scope="module")
def cases(spark):
    rows = [
        # Friday evening: the weekend does not move the response; closure on the 10th working
        # day, past the Dragon Boat holiday (Jun 19-21).
        _complaint("FRI", T(2026, 6, 5, 20, 0), T(2026, 6, 6, 21, 0), T(2026, 6, 22, 17, 0)),
        # The day before National Day: the response deadline falls on Oct 1 and moves to Oct 8.
        _complaint("PRE", T(2026, 9, 30, 10, 0), T(2026, 10, 8, 9, 0), None, severity="media"),
        # Received on a make-up working Saturday: that day counts, Sunday does not move the response.
        _complaint("SAT", T(2026, 10, 10, 9, 0), None, None),
        # Open, response due later on the as-of date's morning: not breached, due soon.
        _complaint("NEW", T(2026, 10, 14, 18, 0), None, None),
        # Responded and closed after D: on D both are unknown.
        _complaint("LATE", T(2026, 10, 13, 8, 0), T(2026, 10, 16, 8, 0), T(2026, 10, 20, 8, 0)),
        # Received on D or later: not a case yet.
        _complaint("FUTURE", T(2026, 10, 15, 8, 0)),
        # Marked closed by the source without a closing time: closed, no verdict on closure.
        _complaint("UNDATED", T(2026, 8, 3, 9, 0), T(2026, 8, 3, 10, 0), None, dealer="ZH004", status="closed"),
    ]
    # The repeat rule: 4 of one category at one dealer in July (all valid), 3 at another in August (not);
    # 6 parts complaints in Q2 at another dealer, at most 3 a month (valid by the quarter);
    # 5 in Q2 of a third category (not).
    rows += [_complaint(f"JUL{i}", T(2026, 7, 1 + i * 7, 10), T(2026, 7, 1 + i * 7, 11), T(2026, 7, 2 + i * 7, 10), category="sales")
             for i in range(4)]
    rows += [_complaint(f"AUG{i}", T(2026, 8, 3 + i, 10), T(2026, 8, 3 + i, 11), T(2026, 8, 4 + i, 10), dealer="FS003", category="sales")
             for i in range(3)]
    rows += [_complaint(f"Q2P{i}", T(2026, 4 + i // 2, 10 + i, 10), T(2026, 4 + i // 2, 10 + i, 11), T(2026, 4 + i // 2, 11 + i, 10),
                        dealer="SZ002", category="parts") for i in range(6)]
    rows += [_complaint(f"Q2Q{i}", T(2026, 4 + i // 2, 10 + i, 10), T(2026, 4 + i // 2, 10 + i, 11), T(2026, 4 + i // 2, 11 + i, 10),
                        dealer="SZ002", category="product_quality") for i in range(5)]
    complaints = spark.createDataFrame(rows, SCHEMA)
    owners = spark.createDataFrame([("rFRI", "CUST1")], "record_id string, customer_id string")
    calendar = calendar_table(spark, dt.date(2026, 3, 1), dt.date(2026, 12, 31), CalendarConfig())
    built = build_complaint_cases(complaints, owners, calendar, AS_OF, ComplaintRulesConfig())
    return {r["complaint_id"]: r for r in built.collect()}


def test_deadlines_follow_the_calendar(cases):
    fri, pre, sat = cases["FRI"], cases["PRE"], cases["SAT"]
    assert fri["response_due_at"] == T(2026, 6, 6, 20, 0) and fri["closure_due_on"] == dt.date(2026, 6, 22)
    assert pre["response_due_at"] == T(2026, 10, 8, 10, 0) and pre["closure_due_on"] == dt.date(2026, 10, 20)
    assert sat["response_due_at"] == T(2026, 10, 11, 9, 0) and sat["closure_due_on"] == dt.date(2026, 10, 23)
    assert all(c["calendar_published"] for c in cases.values())


def test_status_and_breaches_on_the_as_of_date(cases):
    fri, pre, sat, new, late = (cases[k] for k in ("FRI", "PRE", "SAT", "NEW", "LATE"))
    # Responded an hour late, closed on its due day.
    assert (fri["status"], fri["response_breached"], fri["closure_breached"], fri["hours_to_response"]) == ("closed", True, False, 25.0)
    assert fri["working_days_used"] == 10 and fri["customer_id"] == "CUST1"
    # Responded on the moved deadline's day, before its hour: on time; media: reported to the region.
    assert (pre["status"], pre["response_breached"], pre["closure_breached"]) == ("responded", False, False)
    assert pre["report_to_region"] and pre["region_report_due_at"] == T(2026, 10, 1, 10, 0)
    assert (sat["status"], sat["response_breached"], sat["closure_breached"]) == ("open", True, False)
    assert sat["working_days_used"] == 3  # after the day of receipt: Oct 12, 13, 14
    assert (new["status"], new["response_breached"], new["due_within_hours"]) == ("open", False, 18.0)
    assert (late["status"], late["first_response_at"], late["closed_at"], late["response_breached"]) == ("open", None, None, True)
    assert "FUTURE" not in cases and not cases["NEW"]["report_to_region"]
    undated = cases["UNDATED"]
    assert (undated["status"], undated["closure_breached"], undated["working_days_used"], undated["due_within_hours"]) == ("closed", False, None, None)


def test_the_repeat_rule_makes_the_group_valid(cases):
    assert {cases[f"JUL{i}"]["valid_reason"] for i in range(4)} == {"repeat: more than 3 of sales at the dealer in 2026-07"}
    assert cases["JUL3"]["repeat_in_month"] == 4
    assert {cases[f"AUG{i}"]["valid_reason"] for i in range(3)} == {None}
    assert {cases[f"Q2P{i}"]["valid_reason"] for i in range(6)} == {"repeat: more than 5 of parts at the dealer in 2026-Q2"}
    assert max(cases[f"Q2P{i}"]["repeat_in_month"] for i in range(6)) <= 3
    assert {cases[f"Q2Q{i}"]["valid_reason"] for i in range(5)} == {None}


def test_the_step_writes_the_cases_and_the_due_list_needs_no_jvm(spark, app_config, tmp_path, monkeypatch, capsys):
    import yaml

    import cdp.spark
    from app.cli import main
    from cdp import catalog
    from cdp.config import LakeConfig
    from cdp.lake import Lake, read_table
    from tests.steps import run_step

    root = Path(__file__).resolve().parents[2]
    config = app_config.model_copy(update={"lake": LakeConfig(root=str(tmp_path / "lake"), raw_root=str(tmp_path / "raw"))})
    rows = [_complaint("SAT", T(2026, 10, 10, 9, 0)), _complaint("NEW", T(2026, 10, 14, 18, 0), dealer="SZ002"),
            _complaint("FRI", T(2026, 6, 5, 20, 0), T(2026, 6, 6, 21, 0), T(2026, 6, 22, 17, 0))]
    spark.createDataFrame(rows, SCHEMA).write.format("delta").save(Lake(config.lake.root).path(catalog.silver("complaints")))
    report = run_step(spark, config, "complaint_cases", as_of=AS_OF)
    assert report.cases == 3 and report.response_breached == 2 and report.open == 2
    assert read_table(spark, Lake(config.lake.root).path(catalog.COMPLAINT_CASES)).count() == 3
    run_step(spark, config, "complaint_cases", as_of=AS_OF)  # a re-run replaces the date's cases
    assert read_table(spark, Lake(config.lake.root).path(catalog.COMPLAINT_CASES)).count() == 3

    profile = yaml.safe_load((root / "conf" / "local.yaml").read_text(encoding="utf-8"))
    profile["lake"] = {"root": config.lake.root, "raw_root": config.lake.raw_root}
    (tmp_path / "local.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    (tmp_path / "feeds.yaml").write_text((root / "conf" / "feeds.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    capsys.readouterr()

    def refuse(*_args, **_kwargs):
        raise AssertionError("a SparkSession was started")

    monkeypatch.setattr(cdp.spark, "build_spark_session", refuse)
    assert main(["complaints", "due", "--conf", str(tmp_path / "local.yaml")]) == 0
    out = capsys.readouterr().out
    assert "SAT" in out and "NEW" in out and "FRI" not in out and "2 breached or due within 24 h" in out
    assert main(["complaints", "due", "--dealer", "SZ002", "--conf", str(tmp_path / "local.yaml")]) == 0
    out = capsys.readouterr().out
    assert "NEW" in out and "SAT" not in out
    assert main(["complaints", "due", "--dealer", "SZ02", "--conf", str(tmp_path / "local.yaml")]) == 2
    assert "SZ002" in capsys.readouterr().err
