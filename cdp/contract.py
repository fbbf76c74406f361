"""The canonical feed contract (see SOURCES.md): columns, keys, types and allowed values.

Vendor exports are mapped onto these names by `conf/feeds.yaml`; everything downstream of
bronze speaks only these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["CONTRACTS", "FeedContract", "PII_COLUMNS"]


@dataclass(frozen=True)
class FeedContract:
    """One feed. `required` columns must exist in every file and be non-empty in every row;
    `keys` identify a record (re-sent records replace earlier versions)."""

    name: str
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    required: tuple[str, ...]
    timestamps: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    decimals: tuple[str, ...] = ()
    integers: tuple[str, ...] = ()
    booleans: tuple[str, ...] = ()
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    json_objects: tuple[str, ...] = ()
    non_negative: tuple[str, ...] = ()
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


CONTRACTS: dict[str, FeedContract] = {
    c.name: c
    for c in (
        FeedContract(
            name="sales_orders",
            keys=("order_id",),
            columns=(
                "order_id", "dealer_code", "order_date", "delivery_date", "customer_type", "customer_name",
                "gender", "birth_date", "id_number", "mobile", "phone_alt", "email", "province", "city",
                "district", "address", "vin", "plate_no", "brand", "model", "model_year", "price",
                "payment_method", "sales_consultant", "lead_id",
            ),
            required=("order_id", "dealer_code", "order_date", "customer_type", "customer_name", "vin"),
            dates=("order_date", "delivery_date", "birth_date"),
            decimals=("price",),
            integers=("model_year",),
            enums={"customer_type": ("individual", "company"), "gender": ("M", "F")},
            non_negative=("price",),
        ),
        FeedContract(
            name="leads",
            keys=("lead_id",),
            columns=(
                "lead_id", "dealer_code", "created_at", "name", "mobile", "channel", "intended_model",
                "purchase_horizon", "status", "last_contact_at", "lost_reason",
            ),
            required=("lead_id", "dealer_code", "created_at", "status"),
            timestamps=("created_at", "last_contact_at"),
            enums={
                "channel": ("hotline", "website", "auto_portal", "walk_in", "referral", "wechat"),
                "purchase_horizon": ("hot", "mid", "long"),
                "status": ("open", "won", "lost", "dormant"),
            },
        ),
        FeedContract(
            name="service_orders",
            keys=("ro_id",),
            columns=(
                "ro_id", "dealer_code", "opened_at", "closed_at", "vin", "plate_no", "mileage_km",
                "owner_name", "contact_name", "contact_mobile", "service_type", "labour_amount",
                "parts_amount", "total_amount", "paid_by", "service_advisor",
            ),
            required=("ro_id", "dealer_code", "opened_at", "vin", "service_type"),
            timestamps=("opened_at", "closed_at"),
            decimals=("labour_amount", "parts_amount", "total_amount"),
            integers=("mileage_km",),
            enums={
                "service_type": ("first_maintenance", "maintenance", "repair", "accident", "warranty", "recall"),
                "paid_by": ("customer", "warranty", "insurance", "internal"),
            },
            non_negative=("mileage_km", "labour_amount", "parts_amount", "total_amount"),
        ),
        FeedContract(
            name="warranty_claims",
            keys=("claim_id",),
            columns=(
                "claim_id", "dealer_code", "ro_id", "vin", "claim_date", "failure_code", "part_no",
                "claim_amount", "status", "customer_name", "customer_mobile",
            ),
            required=("claim_id", "dealer_code", "vin", "claim_date", "status"),
            dates=("claim_date",),
            decimals=("claim_amount",),
            enums={"status": ("submitted", "approved", "rejected")},
            non_negative=("claim_amount",),
        ),
        FeedContract(
            name="complaints",
            keys=("complaint_id",),
            columns=(
                "complaint_id", "channel", "received_at", "first_response_at", "closed_at", "caller_name",
                "caller_mobile", "vin", "dealer_code", "category", "severity", "status", "description",
            ),
            required=("complaint_id", "channel", "received_at", "category", "status"),
            timestamps=("received_at", "first_response_at", "closed_at"),
            enums={
                "channel": ("hotline_400", "dealer", "web", "wechat", "regulator"),
                "category": ("product_quality", "service", "sales", "parts", "other"),
                "severity": ("normal", "major", "media"),
                "status": ("open", "in_progress", "closed"),
            },
        ),
        FeedContract(
            name="surveys",
            keys=("survey_id",),
            columns=(
                "survey_id", "survey_type", "dealer_code", "surveyed_at", "vin", "mobile", "respondent_name",
                "overall_score", "item_scores", "would_return", "would_recommend",
            ),
            required=("survey_id", "survey_type", "dealer_code", "surveyed_at"),
            timestamps=("surveyed_at",),
            integers=("overall_score",),
            booleans=("would_return", "would_recommend"),
            json_objects=("item_scores",),
            enums={"survey_type": ("ssi", "csi", "complaint_followup")},
            ranges={"overall_score": (0, 100)},
        ),
        FeedContract(
            name="contact_preferences",
            # No id in the contract: a preference is one person-channel statement at a time.
            keys=("mobile", "id_number", "channel", "updated_at"),
            columns=("mobile", "id_number", "channel", "opt_in", "updated_at"),
            required=("channel", "opt_in", "updated_at"),
            timestamps=("updated_at",),
            booleans=("opt_in",),
            enums={"channel": ("sms", "phone", "wechat", "email")},
        ),
    )
}

# Columns that identify a person: kept out of logs, GX results and Delta statistics.
PII_COLUMNS = frozenset(
    {
        "customer_name", "name", "owner_name", "contact_name", "caller_name", "respondent_name",
        "birth_date", "id_number", "mobile", "phone_alt", "email", "address", "contact_mobile",
        "caller_mobile", "customer_mobile", "plate_no", "vin", "description",
        # derived from the ID number; staff who served the customer are people too
        "id_birth_date", "sales_consultant", "service_advisor",
        # gold layer: mentions and golden profiles
        "name_simplified", "name_pinyin", "name_key", "mobile_alt", "id_unchecked", "mobiles",
    }
)
