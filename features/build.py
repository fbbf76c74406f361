"""One feature row per customer per as-of date, from every family (see `catalog`)."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.analytics_config import FeaturesConfig
from cdp.operations_config import ComplaintRulesConfig
from features.behaviour import (
    build_complaint_features,
    build_lead_features,
    build_service_features,
    build_survey_features,
    build_warranty_features,
)
from features.catalog import feature_names
from features.profile import build_demographics, build_first_seen, with_lifecycle_stage
from features.sources import CustomerRecords, FeatureSources, customer_records
from features.value import build_value_features, with_rfm_scores

__all__ = ["FEATURE_TABLE_COLUMNS", "build_customer_features"]

FEATURE_TABLE_COLUMNS = ("customer_id", "as_of_date", *feature_names())

# Counts and sums that are zero, not unknown, for a customer without such events.
_ZERO_WHEN_ABSENT = (
    "service_visits_12m", "service_visits_total", "warranty_claims_total", "warranty_claims_12m",
    "complaints_total", "complaints_open", "complaints_response_breaches", "complaints_closure_breaches",
    "survey_count", "leads_total", "vehicles_bought", "vehicle_spend", "service_spend", "service_spend_12m",
    "lifetime_spend", "spend_12m", "transactions_total",
)


def build_customer_features(
    sources: FeatureSources | CustomerRecords, as_of: dt.date, config: FeaturesConfig, complaint_rules: ComplaintRulesConfig | None = None
) -> DataFrame:
    """Customers that existed before `as_of` -> `FEATURE_TABLE_COLUMNS`, using only events
    before `as_of`; complaint deadlines follow `complaint_rules` (the profile's
    `operations.complaints`). `sources` tied to their customers already (`CustomerRecords`)
    are read as they are: several dates built from the same kept records join nothing to the
    crosswalk again. Grain: customer_id (as_of_date is constant)."""
    records = sources if isinstance(sources, CustomerRecords) else customer_records(sources)
    sales, visits = records.sales_orders, records.service_orders
    families = [
        build_service_features(visits, sales, as_of, config),
        build_warranty_features(records.warranty_claims, as_of, config),
        build_complaint_features(records.complaints, as_of, records.calendar, complaint_rules or ComplaintRulesConfig()),
        build_survey_features(records.surveys, as_of),
        build_lead_features(records.leads, as_of),
        build_value_features(sales, visits, as_of, config),
    ]
    first_seen = build_first_seen(records.seen, as_of)
    features = build_demographics(records.customers, first_seen, as_of, config)
    for family in families:
        features = features.join(family, "customer_id", "left")
    zero_types = dict(features.dtypes)
    features = features.fillna({c: 0.0 if zero_types[c] == "double" else 0 for c in _ZERO_WHEN_ABSENT})
    return (
        features.transform(with_rfm_scores)
        .transform(with_lifecycle_stage, as_of, config.lifecycle)
        .withColumn("as_of_date", F.lit(as_of))
        .select(*FEATURE_TABLE_COLUMNS)
    )
