"""Typed configuration of the dealer-operations figures: complaint SLAs, the repeat rule and
the working-day calendar they are counted on, the dealer directory (regions) and the
satisfaction survey weights."""

from __future__ import annotations

import datetime as dt
import fnmatch
from typing import Literal

from pydantic import Field, field_validator

from cdp.analytics_config import StrictModel

__all__ = ["CalendarConfig", "ComplaintRulesConfig", "DealersConfig", "FollowThroughConfig", "OperationsConfig", "RetentionConfig", "SatisfactionConfig"]


class CalendarConfig(StrictModel):
    """China's official calendar (statutory holidays and the weekend days worked in their
    place, from the `chinesecalendar` package) with local corrections. A year the package
    does not know yet is counted Monday to Friday plus these overrides, and flagged."""

    holidays: list[dt.date] = Field(default_factory=list, description="extra days off (counted as statutory holidays)")
    workdays: list[dt.date] = Field(default_factory=list, description="extra working days, e.g. a make-up Saturday")


class ComplaintRulesConfig(StrictModel):
    """Dealer practice for complaints (客诉处理): response and closure deadlines, escalation and
    the repeat rule."""

    first_response_hours: int = Field(default=24, gt=0, description="first response due this long after receipt")
    closure_working_days: int = Field(default=10, gt=0, description="closure due within this many working days")
    region_report_hours: int = Field(default=24, gt=0, description="major and media cases reported to the region within")
    escalated_severities: list[str] = Field(default_factory=lambda: ["major", "media"])
    repeat_per_month: int = Field(default=3, ge=1, description="more complaints than this of one category at one dealer in a month are valid")
    repeat_per_quarter: int = Field(default=5, ge=1, description="... or more than this in a quarter")
    due_soon_hours: int = Field(default=24, gt=0, description="an open case due within this long is listed as about to breach")


class DealersConfig(StrictModel):
    """Which region each dealer reports to: region -> dealer codes or shell-style patterns
    (`GZ*`). The first matching region wins; a dealer no pattern matches is in `unassigned`."""

    regions: dict[str, list[str]] = Field(default_factory=dict)

    def region_of(self, dealer_code: str) -> str:
        for region, patterns in self.regions.items():
            if any(fnmatch.fnmatchcase(dealer_code, p) for p in patterns):
                return region
        return UNASSIGNED


UNASSIGNED = "unassigned"
DEFAULT_BRAND = "default"


class SatisfactionConfig(StrictModel):
    """Satisfaction surveys (CSS: SSI after a sale, CSI after service): the weight of each
    item in a survey's weighted score, per brand and survey type, and the call-back rule.

    `item_weights[brand][survey_type][item]`: relative weights (they need not sum to 100;
    items a survey did not score are left out and the rest re-weighted). The brand is the
    surveyed vehicle's; `default` applies to any brand without weights of its own. A survey
    with no weighted item scores counts with its overall score."""

    item_weights: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)
    item_labels: dict[str, str] = Field(default_factory=dict, description="how reports name each survey item code (e.g. staff: 服务人员)")
    callback_below: int = Field(default=75, ge=1, le=101, description="a survey scored below this is called back")
    callback_days: int = Field(default=30, gt=0, description="surveys of the last this many days before D are called back")
    callback_channel: Literal["sms", "phone", "wechat", "email"] = Field(default="phone", description="the consent channel a call-back needs")

    @field_validator("item_weights")
    @classmethod
    def _positive(cls, value: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
        for brand, types in value.items():
            for survey_type, items in types.items():
                bad = sorted(item for item, weight in items.items() if weight <= 0)
                if bad:
                    raise ValueError(f"item_weights.{brand}.{survey_type}: weights must be positive ({', '.join(bad)})")
        return value


class RetentionConfig(StrictModel):
    """The monthly dealer figures (`gold/dealer_kpis_monthly`): how far back, and the windows
    of the rules (lifecycle thresholds are the features' `features.lifecycle`)."""

    months: int = Field(default=24, gt=0, le=120, description="months up to D's month that get a row")
    won_back_days: int = Field(default=90, gt=0, description="a win-back listed owner back for a repair order within this many days")
    repeat_repair_days: int = Field(default=30, gt=0, description="a repair of the same VIN again within this many days is not a first-time fix")
    repair_types: list[str] = Field(default_factory=lambda: ["repair", "warranty"], description="service types judged for first-time fix")


class FollowThroughConfig(StrictModel):
    """Reminders' follow-through: which reminder kinds are judged, and how close to the due
    date a repair order counts as the owner having come."""

    kinds: list[str] = Field(default_factory=lambda: ["first_maintenance", "maintenance"])
    days: int = Field(default=30, gt=0, description="a repair order within this many days of the due date")


class OperationsConfig(StrictModel):
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    complaints: ComplaintRulesConfig = Field(default_factory=ComplaintRulesConfig)
    dealers: DealersConfig = Field(default_factory=DealersConfig)
    satisfaction: SatisfactionConfig = Field(default_factory=SatisfactionConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    follow_through: FollowThroughConfig = Field(default_factory=FollowThroughConfig)
