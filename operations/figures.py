"""One month's dealer figures from the gold tables, without a JVM: the monthly dealer
figures, satisfaction per survey type and the complaints received, per dealer, region and the
group. `cdp kpi show`, the monthly report and the web app read them from here."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from cdp import catalog
from cdp.errors import UsageError, closest
from cdp.reader import LakeReader

__all__ = ["DealerMonth", "MonthFigures", "latest_built", "load_month", "satisfaction_history"]

_EMPTY_COMPLAINTS = {"cases": 0, "late": 0, "open": 0, "valid_by_repeat": 0, "report_to_region": 0}


@dataclass
class DealerMonth:
    """One dealer's (or region's, or the group's) month."""

    level: str
    dealer_code: str
    region: str | None
    kpi: dict[str, Any]
    surveys: dict[str, dict[str, Any]] = field(default_factory=dict)  # survey type -> figures
    complaints: dict[str, Any] = field(default_factory=lambda: dict(_EMPTY_COMPLAINTS))

    def satisfaction(self, survey_type: str) -> float | None:
        figures = self.surveys.get(survey_type)
        return None if figures is None else figures["avg_weighted"]


@dataclass
class MonthFigures:
    month: dt.date
    as_of: dt.date
    complete: bool
    rows: list[DealerMonth]

    def as_dict(self) -> dict[str, Any]:
        return {"month": f"{self.month:%Y-%m}", "as_of": str(self.as_of), "complete": self.complete, "rows": [asdict(r) for r in self.rows]}

    def row(self, level: str, code: str) -> DealerMonth | None:
        return next((r for r in self.rows if r.level == level and r.dealer_code == code), None)


def _month_of(reader: LakeReader, as_of: dt.date, month: dt.date | None) -> dt.date:
    tables = {"k": catalog.DEALER_KPIS_MONTHLY}
    months = [r["month"] for r in reader.query(
        "SELECT DISTINCT month, complete FROM k WHERE as_of_date = ? AND (complete OR ? IS NOT NULL) ORDER BY month", tables, [as_of, month])]
    if month is None:
        if not months:
            raise UsageError(f"no complete month in {catalog.DEALER_KPIS_MONTHLY.label} as of {as_of}")
        return months[-1]
    wanted = month.replace(day=1)
    if wanted not in months:
        raise UsageError(f"no figures for {wanted:%Y-%m} as of {as_of}: months are {months[0]:%Y-%m} to {months[-1]:%Y-%m}"
                         if months else f"no figures as of {as_of}")
    return wanted


def latest_built(reader: LakeReader, table: catalog.TableRef) -> dt.date | None:
    """The latest as-of date of a table, or None when its step has not run yet or has found
    nothing so far (campaign results before any list's response window has ended)."""
    if not reader.exists(table):
        return None
    day = reader.scalar("SELECT max(as_of_date) FROM t", {"t": table})
    return day if isinstance(day, dt.date) else None


def _surveys(reader: LakeReader, month: dt.date) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """(level, code) -> survey type -> figures; region and group means over their surveys."""
    day = latest_built(reader, catalog.SATISFACTION_MONTHLY)
    if day is None:
        return {}
    rows = reader.query(
        "SELECT 'dealer' AS level, dealer_code AS code, survey_type, surveys, avg_overall, avg_weighted, very_satisfied_share, "
        "change_on_prev_month, rank_in_region, dealers_in_region, rank_in_group, dealers_in_group, item_avgs FROM s "
        "WHERE as_of_date = ? AND month = ? "
        "UNION ALL SELECT level, code, survey_type, sum(surveys), round(sum(avg_overall * surveys) / sum(surveys), 2), "
        "round(sum(avg_weighted * surveys) / sum(surveys), 2), round(sum(very_satisfied_share * surveys) / sum(surveys), 4), "
        "NULL, NULL, NULL, NULL, NULL, NULL FROM (SELECT *, 'region' AS level, region AS code FROM s UNION ALL "
        "SELECT *, 'group' AS level, 'group' AS code FROM s) WHERE as_of_date = ? AND month = ? GROUP BY level, code, survey_type",
        {"s": catalog.SATISFACTION_MONTHLY}, [day, month, day, month],
    )
    out: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for r in rows:
        out.setdefault((r.pop("level"), r.pop("code")), {})[r.pop("survey_type")] = r
    return out


def _complaints(reader: LakeReader, month: dt.date, regions: dict[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
    day = latest_built(reader, catalog.COMPLAINT_CASES)
    if day is None:
        return {}
    rows = reader.query(
        "SELECT dealer_code, count(*) AS cases, count(*) FILTER (WHERE response_breached OR closure_breached) AS late, "
        "count(*) FILTER (WHERE status <> 'closed') AS open, count(valid_reason) AS valid_by_repeat, "
        "count(*) FILTER (WHERE report_to_region) AS report_to_region FROM c "
        "WHERE as_of_date = ? AND date_trunc('month', received_at) = ? GROUP BY dealer_code",
        {"c": catalog.COMPLAINT_CASES}, [day, month],
    )
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        code = r.pop("dealer_code") or "unknown"
        for key in (("dealer", code), ("region", regions.get(code, "unassigned")), ("group", "group")):
            total = out.setdefault(key, dict(_EMPTY_COMPLAINTS))
            for name, value in r.items():
                total[name] += value
    return out


def load_month(reader: LakeReader, dealer: str | None, month: dt.date | None, as_of: dt.date | None) -> MonthFigures:
    """The month's figures (default: the latest complete month of the latest build): every
    dealer, region and the group, or with `dealer` that dealer, its region and the group."""
    as_of = reader.latest(catalog.DEALER_KPIS_MONTHLY, as_of)
    month = _month_of(reader, as_of, month)
    rows = reader.query("SELECT * FROM k WHERE as_of_date = ? AND month = ? ORDER BY CASE level WHEN 'dealer' THEN 0 "
                        "WHEN 'region' THEN 1 ELSE 2 END, dealer_code", {"k": catalog.DEALER_KPIS_MONTHLY}, [as_of, month])
    regions = {r["dealer_code"]: r["region"] for r in rows if r["level"] == "dealer"}
    if dealer is not None:
        if dealer not in regions:
            raise UsageError(f"no dealer {dealer!r} in the figures for {month:%Y-%m}: {closest(dealer, sorted(regions))}")
        keep = {("dealer", dealer), ("region", regions[dealer]), ("group", "group")}
        rows = [r for r in rows if (r["level"], r["dealer_code"]) in keep]
    surveys, complaints = _surveys(reader, month), _complaints(reader, month, regions)
    figures = [
        DealerMonth(r["level"], r["dealer_code"], r["region"], r, surveys.get((r["level"], r["dealer_code"]), {}),
                    complaints.get((r["level"], r["dealer_code"]), dict(_EMPTY_COMPLAINTS)))
        for r in rows
    ]
    return MonthFigures(month, as_of, bool(rows and rows[0]["complete"]), figures)


def satisfaction_history(reader: LakeReader, dealer: str, survey_type: str, months: int = 12) -> list[dict[str, Any]]:
    """The dealer's weighted score by month, with its region's and the group's, latest last."""
    day = latest_built(reader, catalog.SATISFACTION_MONTHLY)
    if day is None:
        return []
    rows = reader.query(
        "SELECT month, avg_weighted, region_avg_weighted, group_avg_weighted FROM s WHERE as_of_date = ? AND dealer_code = ? "
        "AND survey_type = ? ORDER BY month DESC LIMIT ?", {"s": catalog.SATISFACTION_MONTHLY}, [day, dealer, survey_type, months],
    )
    return rows[::-1]
