"""Behaviour features: service visits, warranty claims, complaints, surveys and leads.

Each builder takes feed records already carrying `customer_id` (see `sources.records_of`)
and returns one row per customer with events before the as-of date; see `catalog` for the
definitions.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.analytics_config import FeaturesConfig
from cdp.operations_config import ComplaintRulesConfig
from features.sources import as_of_start, before, within_months
from operations.complaints import with_deadlines

__all__ = [
    "build_complaint_features",
    "build_lead_features",
    "build_service_features",
    "build_survey_features",
    "build_warranty_features",
]

_MAINTENANCE = ("first_maintenance", "maintenance")
_MIN_KM_SPAN_DAYS = 30


def _count_if(condition: Column) -> Column:
    return F.sum(F.when(condition, 1).otherwise(0))


def _share(column: str, value: str) -> Column:
    return F.avg(F.when(F.col(column) == value, 1.0).otherwise(0.0))


def build_service_features(
    service_orders: DataFrame, sales_orders: DataFrame, as_of: dt.date, config: FeaturesConfig
) -> DataFrame:
    """Repair orders (customer_id, ro_id, vin, opened_at, mileage_km, service_type, paid_by) and
    sales orders (customer_id, vin, order_date, delivery_date) -> visits, recency, payment
    shares, maintenance interval and km per day."""
    visits = before(service_orders, "opened_at", as_of)
    counts = visits.groupBy("customer_id").agg(
        F.count("*").alias("service_visits_total"),
        _count_if(within_months("opened_at", as_of, config.recent_months)).alias("service_visits_12m"),
        F.to_date(F.max("opened_at")).alias("last_visit_date"),
        _share("paid_by", "customer").alias("share_paid_customer"),
        _share("paid_by", "warranty").alias("share_paid_warranty"),
        _share("paid_by", "insurance").alias("share_paid_insurance"),
    )
    per_vehicle = Window.partitionBy("customer_id", "vin").orderBy("opened_at", "ro_id")
    intervals = (
        visits.filter(F.col("service_type").isin(*_MAINTENANCE))
        .withColumn("gap", F.datediff(F.to_date("opened_at"), F.to_date(F.lag("opened_at").over(per_vehicle))))
        .filter(F.col("gap").isNotNull())
        .groupBy("customer_id")
        .agg(F.avg("gap").alias("avg_maintenance_interval_days"))
    )
    deliveries = before(sales_orders.filter(F.col("delivery_date").isNotNull()), "delivery_date", as_of)
    readings = visits.filter(F.col("mileage_km").isNotNull()).select(
        "customer_id", "vin", F.to_date("opened_at").alias("day"), F.col("mileage_km").cast("double").alias("km")
    ).unionByName(deliveries.select("customer_id", "vin", F.col("delivery_date").alias("day"), F.lit(0.0).alias("km")))
    spans = (
        readings.groupBy("customer_id", "vin")
        .agg((F.max("km") - F.min("km")).alias("km"), F.datediff(F.max("day"), F.min("day")).alias("days"))
        .filter(F.col("days") >= _MIN_KM_SPAN_DAYS)
        .groupBy("customer_id")
        .agg((F.sum("km") / F.sum("days")).alias("km_per_day"))
    )
    return (
        counts.join(intervals, "customer_id", "left")
        .join(spans, "customer_id", "left")
        .withColumn("days_since_last_visit", F.datediff(F.lit(as_of), "last_visit_date"))
    )


def build_warranty_features(claims: DataFrame, as_of: dt.date, config: FeaturesConfig) -> DataFrame:
    """Warranty claims (customer_id, claim_date) -> claims in total and in the recent window."""
    return before(claims, "claim_date", as_of).groupBy("customer_id").agg(
        F.count("*").alias("warranty_claims_total"),
        _count_if(within_months("claim_date", as_of, config.recent_months)).alias("warranty_claims_12m"),
    )


def build_complaint_features(complaints: DataFrame, as_of: dt.date, calendar: DataFrame, rules: ComplaintRulesConfig) -> DataFrame:
    """Complaints (customer_id, received_at, first_response_at, closed_at, status) -> count,
    open at the as-of date and deadline breaches, judged as the complaint cases judge them
    (`operations.complaints.with_deadlines`, China's working calendar) on what was known
    before that date."""
    cases = with_deadlines(complaints, calendar, as_of, rules)
    return cases.groupBy("customer_id").agg(
        F.count("*").alias("complaints_total"),
        _count_if(F.col("status") != "closed").alias("complaints_open"),
        _count_if(F.col("response_breached")).alias("complaints_response_breaches"),
        _count_if(F.col("closure_breached")).alias("complaints_closure_breaches"),
    )


def _satisfaction_band(score: Column) -> Column:
    return (
        F.when(score.isNull(), None)
        .when(score >= 100, "very_satisfied")
        .when(score >= 75, "satisfied")
        .when(score >= 50, "neutral")
        .when(score >= 25, "poor")
        .otherwise("very_poor")
    )


def build_survey_features(surveys: DataFrame, as_of: dt.date) -> DataFrame:
    """Surveys (customer_id, survey_id, surveyed_at, overall_score) -> count, mean, latest score and band."""
    latest = F.max(F.struct("surveyed_at", "survey_id", "overall_score"))
    scored = before(surveys, "surveyed_at", as_of).filter(F.col("overall_score").isNotNull())
    return (
        scored.groupBy("customer_id")
        .agg(
            F.count("*").alias("survey_count"),
            F.avg("overall_score").cast("double").alias("avg_survey_score"),
            latest["overall_score"].alias("last_survey_score"),
        )
        .withColumn("last_survey_band", _satisfaction_band(F.col("last_survey_score")))
    )


def build_lead_features(leads: DataFrame, as_of: dt.date) -> DataFrame:
    """Leads (customer_id, lead_id, created_at, last_contact_at, status, purchase_horizon) ->
    count, the latest lead's status as it stood before the as-of date, and its horizon."""
    latest = F.max(F.struct("created_at", "lead_id", "last_contact_at", "status", "purchase_horizon")).alias("latest")
    decided_before = F.col("latest.last_contact_at").isNotNull() & (F.col("latest.last_contact_at") < as_of_start(as_of))
    return (
        before(leads, "created_at", as_of)
        .groupBy("customer_id")
        .agg(F.count("*").alias("leads_total"), latest)
        .select(
            "customer_id",
            "leads_total",
            F.when(decided_before, F.col("latest.status")).otherwise(F.lit("open")).alias("lead_status"),
            F.col("latest.purchase_horizon").alias("purchase_horizon"),
        )
    )
