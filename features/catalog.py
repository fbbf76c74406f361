"""Every customer feature in one place: name, family, kind and definition.

`gold/customer_features` has exactly these columns after `customer_id` and `as_of_date`
(a test holds the table to this list), `cdp features describe` prints it, and the
segmentation model reads which features drive it from here.

Point in time: a row as of date D uses only events strictly before D (00:00 UTC), and
status fields that change later (a complaint's closure, a lead's outcome) are read as they
stood before D. Windows such as "12 months" are the `features.recent_months` before D.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FEATURES", "Feature", "feature_names", "segmentation_features"]


@dataclass(frozen=True)
class Feature:
    name: str
    family: str
    kind: str  # "number" or "category"
    definition: str
    drives_segments: bool = False
    money: bool = False


FEATURES: tuple[Feature, ...] = (
    # demographics: describe segments, never drive them
    Feature("age", "demographics", "number", "whole years from the golden birth date to D"),
    Feature("age_band", "demographics", "category", "age within features.age_bands, e.g. 25-34; 65+"),
    Feature("gender", "demographics", "category", "golden gender (M/F)"),
    Feature("province", "demographics", "category", "golden province"),
    Feature("city", "demographics", "category", "golden city"),
    Feature("customer_type", "demographics", "category", "individual or company"),
    Feature("first_seen_date", "demographics", "category", "date of the customer's first record before D"),
    Feature("tenure_days", "demographics", "number", "days from the first record to D"),
    # behaviour: service visits (repair orders where the customer is the owner)
    Feature("service_visits_12m", "behaviour", "number", "repair orders opened in the 12 months before D", True),
    Feature("service_visits_total", "behaviour", "number", "repair orders opened before D", True),
    Feature("days_since_last_visit", "behaviour", "number", "days from the last repair order to D; null without one", True),
    Feature(
        "avg_maintenance_interval_days", "behaviour", "number",
        "mean days between consecutive maintenance visits (first_maintenance, maintenance) of one vehicle", True,
    ),
    Feature(
        "km_per_day", "behaviour", "number",
        "odometer km driven per day, over each vehicle's readings (delivery counts as 0 km) spanning 30+ days", True,
    ),
    Feature("share_paid_customer", "behaviour", "number", "share of repair orders paid by the customer", True),
    Feature("share_paid_warranty", "behaviour", "number", "share of repair orders paid by warranty", True),
    Feature("share_paid_insurance", "behaviour", "number", "share of repair orders paid by insurance", True),
    Feature("warranty_claims_total", "behaviour", "number", "warranty claims dated before D", True),
    Feature("warranty_claims_12m", "behaviour", "number", "warranty claims in the 12 months before D"),
    Feature("complaints_total", "behaviour", "number", "complaints received before D", True),
    Feature("complaints_open", "behaviour", "number", "complaints received before D and not closed before D"),
    Feature(
        "complaints_response_breaches", "behaviour", "number",
        "complaints whose first response came (or, open at D, had not come) after its deadline (operations.complaints)",
    ),
    Feature(
        "complaints_closure_breaches", "behaviour", "number",
        "complaints closed (or still open at D) after the end of their closure day on China's working calendar (operations.complaints)",
    ),
    Feature("survey_count", "behaviour", "number", "satisfaction surveys answered before D"),
    Feature("avg_survey_score", "behaviour", "number", "mean overall score (0-100) of those surveys", True),
    Feature("last_survey_score", "behaviour", "number", "overall score of the latest survey before D"),
    Feature(
        "last_survey_band", "behaviour", "category",
        "band of the latest score: very_satisfied 100, satisfied 75-99, neutral 50-74, poor 25-49, very_poor 0-24",
    ),
    Feature("leads_total", "behaviour", "number", "sales leads created before D"),
    Feature(
        "lead_status", "behaviour", "category",
        "status of the latest lead: its recorded status if last contacted before D, else open",
    ),
    Feature("purchase_horizon", "behaviour", "category", "purchase horizon of the latest lead (hot, mid, long)"),
    # value
    Feature("vehicles_bought", "value", "number", "sales orders (as buyer) dated before D", True),
    Feature("vehicle_spend", "value", "number", "sum of those orders' prices (CNY)", money=True),
    Feature("service_spend", "value", "number", "sum of repair orders paid by the customer (CNY)", money=True),
    Feature("service_spend_12m", "value", "number", "the same in the 12 months before D (CNY)", True, True),
    Feature("lifetime_spend", "value", "number", "vehicle_spend + service_spend (CNY)", True, True),
    Feature("spend_12m", "value", "number", "vehicle and customer-paid service spend in the 12 months before D (CNY)", money=True),
    Feature("newest_vehicle_price", "value", "number", "price of the latest vehicle bought (CNY)", True, True),
    Feature("newest_vehicle_price_band", "value", "category", "band of that price within features.price_bands"),
    Feature("newest_vehicle_model", "value", "category", "model of the latest vehicle bought"),
    Feature("transactions_total", "value", "number", "vehicle orders plus repair orders before D"),
    Feature("days_since_last_transaction", "value", "number", "days from the last order or repair order to D"),
    Feature("r_score", "value", "number", "recency quintile 1-5 (5 = most recent) among customers with transactions"),
    Feature("f_score", "value", "number", "frequency quintile 1-5 (5 = most transactions)"),
    Feature("m_score", "value", "number", "monetary quintile 1-5 (5 = highest lifetime_spend)"),
    # lifecycle
    Feature("last_activity_date", "lifecycle", "category", "latest of the last repair order and the last delivery before D"),
    Feature(
        "lifecycle_stage", "lifecycle", "category",
        "owner: new_owner (first delivery within new_owner_months), lost (no activity for lost_after_months), "
        "dormant (for dormant_after_months), else active; no vehicle: defeated_lead (latest lead lost), "
        "prospect (a lead), else contact",
    ),
)


def feature_names() -> list[str]:
    return [f.name for f in FEATURES]


def segmentation_features() -> tuple[list[str], list[str]]:
    """(features that drive segmentation, the money ones among them to log-transform)."""
    driving = [f.name for f in FEATURES if f.drives_segments]
    return driving, [f.name for f in FEATURES if f.drives_segments and f.money]
