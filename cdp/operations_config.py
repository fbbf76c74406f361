"""Typed configuration of the dealer-operations figures: complaint SLAs, the repeat rule and
the working-day calendar they are counted on."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from cdp.analytics_config import StrictModel

__all__ = ["CalendarConfig", "ComplaintRulesConfig", "OperationsConfig"]


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


class OperationsConfig(StrictModel):
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    complaints: ComplaintRulesConfig = Field(default_factory=ComplaintRulesConfig)
