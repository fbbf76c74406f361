"""Campaign definitions (`conf/campaigns.yaml`): who is in the audience, on which channel,
who is suppressed, the control group and the priority among competing campaigns.

    campaigns:
      maintenance_due_sms:
        description: Periodic maintenance due within 30 days
        channel: sms
        audience:
          lifecycle_stage: [active, dormant]
          due: {kind: maintenance, within_days: 30}
        suppress: {open_complaint: true, contacted_within_days: 14}
        holdout_percent: 10
        group: service
        priority: 1

Rules combine with AND; lists inside a rule mean any of the values. Consent on the channel
is never optional: it is applied to every campaign and again at export.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from cdp.analytics_config import StrictModel
from cdp.errors import UsageError

__all__ = [
    "AudienceRules",
    "Campaign",
    "CampaignBook",
    "CampaignError",
    "Condition",
    "DueRule",
    "EXPORT_FIELDS",
    "Suppressions",
    "competitors_before",
    "definition_hash",
]

Operator = Literal["==", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "not_null"]
Channel = Literal["sms", "phone", "wechat", "email"]
ReminderKind = Literal["first_maintenance", "maintenance", "warranty_expiry", "insurance_renewal", "annual_inspection", "birthday"]

# What a campaign export may carry; personal fields are masked unless the export is privileged.
EXPORT_FIELDS = (
    "customer_id", "name", "mobile", "email", "gender", "city", "province", "dealer_code", "segment_name",
    "lifecycle_stage", "reason", "due_date", "vehicle_model",
)
_DEFAULT_FIELDS = {
    "sms": ["customer_id", "name", "mobile", "dealer_code", "reason"],
    "phone": ["customer_id", "name", "mobile", "dealer_code", "reason"],
    "wechat": ["customer_id", "name", "mobile", "dealer_code", "reason"],
    "email": ["customer_id", "name", "email", "dealer_code", "reason"],
}


class CampaignError(UsageError, ValueError):
    """A campaign definition is invalid or refers to something that does not exist."""


class Condition(StrictModel):
    """One test on a customer feature, e.g. {feature: lifetime_spend, op: ">=", value: 300000}."""

    feature: str
    op: Operator
    value: float | int | str | bool | list[float | int | str] | None = None

    @model_validator(mode="after")
    def _value_fits(self) -> Condition:
        if self.op in ("is_null", "not_null"):
            if self.value is not None:
                raise ValueError(f"{self.op} takes no value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"{self.op} needs a non-empty list")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"{self.op} needs a single value")
        return self


class DueRule(StrictModel):
    """A reminder of `kind` falling due: within the next `within_days` days, or in this or
    next calendar month (of the as-of date)."""

    kind: ReminderKind
    within_days: int | None = Field(default=None, gt=0)
    month: Literal["this", "next"] | None = None

    @model_validator(mode="after")
    def _one_window(self) -> DueRule:
        if (self.within_days is None) == (self.month is None):
            raise ValueError("give exactly one of within_days and month")
        return self


class AudienceRules(StrictModel):
    lifecycle_stage: list[str] = Field(default_factory=list)
    segment: list[str] = Field(default_factory=list, description="segment names of the champion model's scoring")
    city: list[str] = Field(default_factory=list)
    province: list[str] = Field(default_factory=list)
    dealer: list[str] = Field(default_factory=list, description="the customer's dealer (of their latest visit or purchase)")
    vehicle_model: list[str] = Field(default_factory=list, description="a model the customer owns at the as-of date")
    where: list[Condition] = Field(default_factory=list)
    due: DueRule | None = None


class Suppressions(StrictModel):
    open_complaint: bool = Field(default=True, description="leave out customers with a complaint open at the as-of date")
    contacted_within_days: int | None = Field(
        default=None, gt=0, description="leave out customers in another campaign's list built within this many days"
    )


class Response(StrictModel):
    """What counts as responding to a campaign, for its lift against the control group
    (`gold/campaign_results`). Not part of the list's definition: changing it re-measures old
    versions, it does not make a new one."""

    event: Literal["repair_order", "purchase"] = Field(default="repair_order", description="a repair order, or a purchase for sales campaigns")
    window_days: int = Field(default=60, gt=0, description="days from the list's as-of date")


class Campaign(StrictModel):
    description: str = ""
    channel: Channel
    audience: AudienceRules
    suppress: Suppressions = Field(default_factory=Suppressions)
    holdout_percent: float = Field(default=0.0, ge=0.0, le=50.0, description="control group kept out of the list")
    group: str | None = Field(default=None, description="campaigns of one group compete: a customer lands in one only")
    priority: int = Field(default=100, description="lower wins within a group")
    fields: list[str] | None = Field(default=None, description="export fields (default: by channel)")
    response: Response = Field(default_factory=Response)

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, fields: list[str] | None) -> list[str] | None:
        if fields is not None:
            unknown = [f for f in fields if f not in EXPORT_FIELDS]
            if unknown or "customer_id" not in fields:
                raise ValueError(f"fields must include customer_id and come from {list(EXPORT_FIELDS)}; unknown: {unknown}")
        return fields

    def export_fields(self) -> list[str]:
        return list(self.fields or _DEFAULT_FIELDS[self.channel])


class CampaignBook(StrictModel):
    campaigns: dict[str, Campaign] = Field(default_factory=dict)

    @field_validator("campaigns")
    @classmethod
    def _names(cls, campaigns: dict[str, Campaign]) -> dict[str, Campaign]:
        bad = [name for name in campaigns if not name.replace("_", "").isalnum() or not name.isascii() or name != name.lower()]
        if bad:
            raise ValueError(f"campaign names must be lower-case letters, digits and _: {bad}")
        return campaigns

    @model_validator(mode="after")
    def _distinct_priorities(self) -> CampaignBook:
        seen: dict[tuple[str, int], str] = {}
        for name, campaign in self.campaigns.items():
            if campaign.group is None:
                continue
            key = (campaign.group, campaign.priority)
            if key in seen:
                raise ValueError(f"campaigns {seen[key]} and {name} share group {campaign.group!r} and priority {campaign.priority}")
            seen[key] = name
        return self

    def get(self, name: str) -> Campaign:
        if name not in self.campaigns:
            known = ", ".join(sorted(self.campaigns)) or "none"
            raise CampaignError(f"no campaign {name!r} (campaigns: {known})")
        return self.campaigns[name]


def competitors_before(book: CampaignBook, name: str) -> list[str]:
    """Campaigns of `name`'s group that win over it, highest priority first."""
    campaign = book.get(name)
    if campaign.group is None:
        return []
    rivals = [(c.priority, n) for n, c in book.campaigns.items() if c.group == campaign.group and c.priority < campaign.priority]
    return [n for _, n in sorted(rivals)]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def definition_hash(book: CampaignBook, name: str) -> str:
    """SHA-256 of the campaign's definition and of the campaigns that win over it (they
    shape its list too), so a list can be traced to the exact rules that built it."""
    parts = {n: book.get(n).model_dump(mode="json", exclude={"response"}) for n in [*competitors_before(book, name), name]}
    return hashlib.sha256(_canonical(parts).encode("utf-8")).hexdigest()
