"""Demographic features and the lifecycle stage."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.analytics_config import FeaturesConfig, LifecycleConfig
from features.sources import before

__all__ = ["LIFECYCLE_STAGES", "build_age_band", "build_demographics", "build_first_seen", "with_lifecycle_stage"]

LIFECYCLE_STAGES = ("prospect", "defeated_lead", "new_owner", "active", "dormant", "lost", "contact")


def build_age_band(age: Column, edges: list[int]) -> Column:
    """`<25`, `25-34`, ..., `65+` for edges [25, 35, ..., 65]."""
    band = F.when(age < edges[0], F.lit(f"<{edges[0]}"))
    for low, high in zip(edges, edges[1:]):
        band = band.when(age < high, F.lit(f"{low}-{high - 1}"))
    return F.when(age.isNotNull(), band.otherwise(F.lit(f"{edges[-1]}+")))


def build_first_seen(seen: DataFrame, as_of: dt.date) -> DataFrame:
    """(customer_id, first_seen_date) for every customer with a record before the as-of date:
    the customers that exist at that date. `seen`: (customer_id, seen_at) of every mention
    (`sources.customer_records`)."""
    return before(seen, "seen_at", as_of).groupBy("customer_id").agg(F.to_date(F.min("seen_at")).alias("first_seen_date"))


def build_demographics(customers: DataFrame, first_seen: DataFrame, as_of: dt.date, config: FeaturesConfig) -> DataFrame:
    """Golden profile attributes as they describe the customer at the as-of date."""
    birth = F.col("birth_date")
    age = F.when(birth < F.lit(as_of), F.floor(F.months_between(F.lit(as_of), birth) / 12).cast("int"))
    return first_seen.join(customers, "customer_id", "left").select(
        "customer_id",
        age.alias("age"),
        build_age_band(age, config.age_bands).alias("age_band"),
        "gender",
        "province",
        "city",
        "customer_type",
        "first_seen_date",
        F.datediff(F.lit(as_of), "first_seen_date").alias("tenure_days"),
    )


def _months_since(day: Column, as_of: dt.date) -> Column:
    return F.months_between(F.lit(as_of), day)


def with_lifecycle_stage(features: DataFrame, as_of: dt.date, config: LifecycleConfig) -> DataFrame:
    """Add last_activity_date and lifecycle_stage. Requires vehicles_bought,
    service_visits_total, last_visit_date, first_delivery_date, last_delivery_date,
    leads_total, lead_status.

    An owner (bought here or serviced as owner) is a new owner within `new_owner_months` of
    the first delivery (or awaiting it), lost after `lost_after_months` without a visit or delivery, dormant
    after `dormant_after_months`, else active. Others are defeated leads (latest lead lost),
    prospects (any other lead) or contacts (seen only as a driver, caller or respondent).
    """
    last_activity = F.greatest("last_visit_date", "last_delivery_date")
    owner = (F.col("vehicles_bought") > 0) | (F.col("service_visits_total") > 0)
    idle = _months_since(F.col("last_activity_date"), as_of)
    first_delivered = F.col("first_delivery_date")
    stage = (
        F.when(
            owner,
            F.when(
                # A car ordered but not yet delivered counts too (months since is negative).
                first_delivered.isNotNull() & (_months_since(first_delivered, as_of) < config.new_owner_months),
                "new_owner",
            )
            .when(idle.isNull() | (idle >= config.lost_after_months), "lost")
            .when(idle >= config.dormant_after_months, "dormant")
            .otherwise("active"),
        )
        .when(F.col("lead_status") == "lost", "defeated_lead")
        .when(F.col("leads_total") > 0, "prospect")
        .otherwise("contact")
    )
    return features.withColumn("last_activity_date", last_activity).withColumn("lifecycle_stage", stage)
