"""Complaint cases (客诉): one row per complaint received before the as-of date, with its
deadlines, its status on that date and the repeat rule.

Dealer practice:
- first response due `first_response_hours` (24) after receipt. A weekend does not move it;
  a statutory holiday does: a deadline falling on one moves to the same time on the first
  working day after it;
- closure due by the end of the `closure_working_days`-th (10th) working day after the day
  of receipt, on China's calendar (make-up working weekends count, holidays do not);
- major and media cases are reported to the region within `region_report_hours` (24);
- the repeat rule: more than `repeat_per_month` (3) complaints of one category at one dealer
  in a calendar month, or more than `repeat_per_quarter` (5) in a quarter, makes each of
  them valid automatically (`valid_reason`).

What is known on the as-of date D is what happened before D 00:00: a response or closure
stamped later counts as not yet given.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from cdp.operations_config import CalendarConfig, ComplaintRulesConfig
from operations.calendar import CALENDAR_SCHEMA, build_calendar

__all__ = ["CASE_COLUMNS", "build_complaint_cases", "calendar_for", "calendar_table", "with_deadlines"]

CALENDAR_START = dt.date(2000, 1, 1)

CASE_COLUMNS = (
    "complaint_id", "as_of_date", "dealer_code", "customer_id", "channel", "category", "severity", "received_at",
    "first_response_at", "closed_at", "response_due_at", "closure_due_on", "report_to_region", "region_report_due_at",
    "status", "response_breached", "closure_breached", "hours_to_response", "working_days_used", "due_within_hours",
    "repeat_in_month", "repeat_in_quarter", "valid_reason", "calendar_published",
)


def calendar_table(spark: SparkSession, first: dt.date, last: dt.date, config: CalendarConfig) -> DataFrame:
    """The working-day calendar from `first` to `last` as a small DataFrame (CALENDAR_SCHEMA)."""
    return spark.createDataFrame(build_calendar(first, last, config).rows(), CALENDAR_SCHEMA)


def _hours(later: Column, earlier: Column) -> Column:
    return (later.cast("long") - earlier.cast("long")) / 3600.0


def _repeats(cases: DataFrame, rules: ComplaintRulesConfig) -> DataFrame:
    """Per case: complaints of its category at its dealer in its month and quarter, and the
    reason it is valid by the repeat rule (null when the rule does not apply)."""
    group = ["dealer_code", "category"]
    month = Window.partitionBy(*group, F.date_trunc("month", "received_at"))
    quarter = Window.partitionBy(*group, F.date_trunc("quarter", "received_at"))
    counted = cases.withColumns({"repeat_in_month": F.count("*").over(month), "repeat_in_quarter": F.count("*").over(quarter)})
    return counted.withColumn(
        "valid_reason",
        F.when(F.col("repeat_in_month") > rules.repeat_per_month,
               F.concat(F.lit(f"repeat: more than {rules.repeat_per_month} of "), F.col("category"), F.lit(" at the dealer in "),
                        F.date_format("received_at", "yyyy-MM")))
        .when(F.col("repeat_in_quarter") > rules.repeat_per_quarter,
              F.concat(F.lit(f"repeat: more than {rules.repeat_per_quarter} of "), F.col("category"), F.lit(" at the dealer in "),
                       F.year("received_at").cast("string"), F.lit("-Q"), F.quarter("received_at").cast("string"))),
    )


def calendar_for(spark: SparkSession, as_of: dt.date, config: CalendarConfig) -> DataFrame:
    """The calendar every complaint deadline up to `as_of` needs: from 2000 (the official
    schedule starts in 2004) to 60 days after D (10 working days and the longest holiday)."""
    return calendar_table(spark, CALENDAR_START, as_of + dt.timedelta(days=60), config)


def with_deadlines(complaints: DataFrame, calendar: DataFrame, as_of: dt.date, rules: ComplaintRulesConfig) -> DataFrame:
    """Complaints (received_at, first_response_at, closed_at, status) received before D ->
    the same plus `response_due_at`, `closure_due_on` and, from what was known before D,
    `status`, `response_breached`, `closure_breached`, `hours_to_response`,
    `working_days_used`, `due_within_hours` and `calendar_published`. A complaint marked
    closed without a closing time is closed, with no verdict on its closure deadline."""
    cutoff = F.lit(dt.datetime.combine(as_of, dt.time()))
    stamps = ("received_at", "first_response_at", "closed_at")
    known = complaints.withColumns({c: F.col(c).cast("timestamp") for c in stamps}).filter(F.col("received_at") < cutoff)
    undated_closed = F.col("closed_at").isNull() & (F.col("status") == "closed")
    cases = known.withColumns({
        "first_response_at": F.when(F.col("first_response_at") < cutoff, F.col("first_response_at")),
        "closed_at": F.when(F.col("closed_at") < cutoff, F.col("closed_at")),
        "_undated_closed": F.coalesce(undated_closed, F.lit(False)),
        "_response_due": F.col("received_at") + F.make_interval(hours=F.lit(rules.first_response_hours)),
    })
    cal = calendar.alias("c")
    # Response: a deadline on a statutory holiday moves to the first working day after it.
    due_day = cal.select(F.col("day").alias("_due_day"), F.col("statutory_holiday").alias("_due_holiday"),
                         F.col("next_workday").alias("_due_next"), F.col("published").alias("_due_published"))
    cases = cases.join(F.broadcast(due_day), F.to_date("_response_due") == F.col("_due_day"), "left").withColumn(
        "response_due_at",
        F.when(F.col("_due_holiday"),
               F.to_timestamp(F.concat_ws(" ", F.col("_due_next").cast("string"), F.date_format("_response_due", "HH:mm:ss"))))
        .otherwise(F.col("_response_due")),
    )
    # Closure: the day whose working-day number is the receipt day's plus the allowance.
    receipt = cal.select(F.col("day").alias("_received_day"), F.col("workday_no").alias("_received_no"),
                         F.col("published").alias("_received_published"))
    cases = cases.join(F.broadcast(receipt), F.to_date("received_at") == F.col("_received_day"), "left")
    nth = cal.filter("workday").select(F.col("workday_no").alias("_closure_no"), F.col("day").alias("closure_due_on"),
                                       F.col("published").alias("_closure_published"))
    cases = cases.join(F.broadcast(nth), F.col("_received_no") + rules.closure_working_days == F.col("_closure_no"), "left")
    # Working days used: after the day of receipt, to the closure day (or the day before D).
    end_day = F.coalesce(F.to_date("closed_at"), F.lit(as_of - dt.timedelta(days=1)))
    used = cal.select(F.col("day").alias("_end_day"), F.col("workday_no").alias("_end_no"))
    cases = cases.join(F.broadcast(used), end_day == F.col("_end_day"), "left")

    closed = F.col("closed_at").isNotNull() | F.col("_undated_closed")
    closure_deadline = F.to_timestamp(F.date_add("closure_due_on", 1))  # the end of the due day
    status = F.when(closed, "closed").when(F.col("first_response_at").isNotNull(), "responded").otherwise("open")
    response_breached = F.coalesce(F.col("first_response_at"), F.when(cutoff > F.col("response_due_at"), cutoff)) > F.col("response_due_at")
    closure_breached = F.coalesce(F.col("closed_at"), F.when(~closed & (cutoff > closure_deadline), cutoff)) > closure_deadline
    next_due = F.least(
        F.when(F.col("first_response_at").isNull(), F.col("response_due_at")),
        F.when(~closed, closure_deadline),
    )
    return cases.withColumns({
        "status": status,
        "response_breached": F.coalesce(response_breached, F.lit(False)),
        "closure_breached": F.coalesce(closure_breached, F.lit(False)),
        "hours_to_response": F.round(_hours(F.coalesce("first_response_at", cutoff), F.col("received_at")), 2),
        "working_days_used": F.when(~F.col("_undated_closed"), (F.col("_end_no") - F.col("_received_no")).cast("int")),
        "due_within_hours": F.when(~closed, F.round(_hours(next_due, cutoff), 2)),
        "calendar_published": F.coalesce(F.col("_due_published") & F.col("_received_published") & F.col("_closure_published"), F.lit(False)),
    })


def build_complaint_cases(
    complaints: DataFrame, owners: DataFrame, calendar: DataFrame, as_of: dt.date, rules: ComplaintRulesConfig
) -> DataFrame:
    """Silver complaints, (record_id, customer_id) of each complaint's own customer, and the
    calendar covering every receipt date and deadline -> CASE_COLUMNS. Grain: complaint_id."""
    cases = with_deadlines(complaints.join(owners, "record_id", "left"), calendar, as_of, rules).withColumn("as_of_date", F.lit(as_of))
    escalated = F.col("severity").isin(*rules.escalated_severities)
    cases = cases.withColumns({
        "report_to_region": F.coalesce(escalated, F.lit(False)),
        "region_report_due_at": F.when(escalated, F.col("received_at") + F.make_interval(hours=F.lit(rules.region_report_hours))),
    })
    return _repeats(cases, rules).select(*CASE_COLUMNS)
