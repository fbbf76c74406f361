"""What each page shows, read from the gold tables with delta-rs and DuckDB (no Spark).

Every function takes the reader and, where the data belongs to dealers, the dealers the
viewer may see (`None`: every dealer). Missing tables give empty sections that name the step
to run, never an error page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cdp import catalog
from cdp.privacy import mask_text
from cdp.reader import LakeReader

__all__ = ["audit_rows", "overview", "reminders_due", "review_queue", "segment_sizes", "winback_rows"]


def _dealer_filter(column: str, dealers: list[str] | None) -> tuple[str, list[Any]]:
    if dealers is None:
        return "TRUE", []
    return f"list_contains(?, {column})", [dealers]


def overview(reader: LakeReader, dealers: list[str] | None) -> dict[str, Any]:
    """Customers, owners by lifecycle stage (dormant and lost among them) and the monthly trend."""
    out: dict[str, Any] = {"customers": None, "stages": [], "as_of": None, "trend": []}
    if reader.exists(catalog.CUSTOMERS):
        where = "TRUE" if dealers is None else "list_has_any(dealers, ?)"
        out["customers"] = reader.scalar(f"SELECT count(*) FROM c WHERE {where}", {"c": catalog.CUSTOMERS}, [] if dealers is None else [dealers])
    if reader.exists(catalog.CUSTOMER_FEATURES):
        day = reader.latest(catalog.CUSTOMER_FEATURES)
        scope = "TRUE" if dealers is None else "f.customer_id IN (SELECT customer_id FROM c WHERE list_has_any(dealers, ?))"
        out["as_of"] = day
        out["stages"] = reader.query(
            f"SELECT lifecycle_stage AS stage, count(*) AS customers FROM f WHERE as_of_date = ? AND {scope} "
            "GROUP BY stage ORDER BY customers DESC, stage",
            {"f": catalog.CUSTOMER_FEATURES, "c": catalog.CUSTOMERS}, [day] + ([] if dealers is None else [dealers]),
        )
    if reader.exists(catalog.DEALER_KPIS_MONTHLY):
        day = reader.latest(catalog.DEALER_KPIS_MONTHLY)
        level = "level = 'group'" if dealers is None else "level = 'dealer' AND list_contains(?, dealer_code)"
        out["trend"] = reader.query(
            "SELECT month, sum(owners) AS owners, sum(owners_active) AS active, sum(owners_dormant) AS dormant, "
            f"sum(owners_lost) AS lost, sum(new_owners) AS new_owners FROM k WHERE as_of_date = ? AND {level} "
            "GROUP BY month ORDER BY month DESC LIMIT 12",
            {"k": catalog.DEALER_KPIS_MONTHLY}, [day] + ([] if dealers is None else [dealers]),
        )[::-1]
    return out


def segment_sizes(reader: LakeReader) -> dict[str, Any] | None:
    """The latest scoring: model name and version, and each segment's size and share."""
    if not reader.exists(catalog.CUSTOMER_SEGMENTS):
        return None
    day = reader.latest(catalog.CUSTOMER_SEGMENTS)
    tables = {"s": catalog.CUSTOMER_SEGMENTS}
    first = reader.query("SELECT model_name, model_version, max(scored_at) AS scored_at FROM s WHERE as_of_date = ? "
                         "GROUP BY model_name, model_version LIMIT 1", tables, [day])[0]
    sizes = reader.query(
        "SELECT segment_name, count(*) AS customers, count(*) / sum(count(*)) OVER () AS share FROM s WHERE as_of_date = ? "
        "GROUP BY segment_name ORDER BY customers DESC, segment_name", tables, [day],
    )
    return {"as_of": day, **first, "segments": sizes}


def review_queue(reader: LakeReader, limit: int = 50, threshold: float = 0.95) -> list[dict[str, Any]]:
    """Near misses and weak joins, closest to the match threshold first, each with both
    mentions' details masked."""
    if not reader.exists(catalog.RESOLUTION_REVIEW):
        return []
    pairs = reader.query("SELECT * FROM r ORDER BY abs(match_probability - ?), mention_id_l, mention_id_r LIMIT ?",
                         {"r": catalog.RESOLUTION_REVIEW}, [threshold, limit])
    ids = sorted({p["mention_id_l"] for p in pairs} | {p["mention_id_r"] for p in pairs})
    mentions = {m["mention_id"]: m for m in reader.query(
        "SELECT mention_id, feed, dealer_code, seen_at, name_simplified AS name, mobile, id_number, vin, city FROM m "
        "WHERE list_contains(?, mention_id)", {"m": catalog.PERSON_MENTIONS}, [ids])} if ids else {}
    masks = {"name": "name", "mobile": "mobile", "id_number": "id_number", "vin": "id_number"}
    for pair in pairs:
        for side in ("l", "r"):
            mention = dict(mentions.get(pair[f"mention_id_{side}"], {}))
            pair[f"mention_{side}"] = {k: mask_text(masks[k], v) if k in masks else v for k, v in mention.items()}
    return pairs


def winback_rows(reader: LakeReader, dealers: list[str] | None, dealer: str | None, top: int = 50) -> dict[str, Any] | None:
    """The latest win-back list (masked names), one dealer's ranks when `dealer` is given."""
    if not reader.exists(catalog.WINBACK):
        return None
    day = reader.latest(catalog.WINBACK)
    scope, params = _dealer_filter("w.dealer_code", dealers)
    order = "dealer_rank" if dealer else "rank"
    rows = reader.query(
        f"SELECT w.{order} AS position, w.customer_id, c.name, w.dealer_code, w.lifecycle_stage, w.p_return, w.expected_value, "
        f"w.reason_codes FROM w LEFT JOIN c USING (customer_id) WHERE w.as_of_date = ? AND {scope} AND (? IS NULL OR w.dealer_code = ?) "
        f"ORDER BY w.{order}, w.customer_id LIMIT ?",
        {"w": catalog.WINBACK, "c": catalog.CUSTOMERS}, [day, *params, dealer, dealer, top],
    )
    for row in rows:
        row["name"] = mask_text("name", row["name"])
    return {"as_of": day, "rows": rows}


def reminders_due(reader: LakeReader, dealers: list[str] | None, dealer: str | None, within_days: int = 30) -> dict[str, Any] | None:
    """Reminders due from the latest as-of date up to `within_days` later, by kind and dealer."""
    if not reader.exists(catalog.REMINDERS):
        return None
    day = reader.latest(catalog.REMINDERS)
    scope, params = _dealer_filter("dealer_code", dealers)
    rows = reader.query(
        f"SELECT kind, dealer_code, count(*) AS due, min(due_date) AS first_due FROM r WHERE as_of_date = ? AND {scope} "
        "AND (? IS NULL OR dealer_code = ?) AND days_until_due BETWEEN 0 AND ? GROUP BY kind, dealer_code ORDER BY dealer_code, kind",
        {"r": catalog.REMINDERS}, [day, *params, dealer, dealer, within_days - 1],
    )
    return {"as_of": day, "rows": rows, "within_days": within_days}


def known_dealers(reader: LakeReader) -> list[str]:
    """Dealer codes the lake knows (from the golden profiles)."""
    if not reader.exists(catalog.CUSTOMERS):
        return []
    return [r["d"] for r in reader.query("SELECT DISTINCT unnest(dealers) AS d FROM c ORDER BY d", {"c": catalog.CUSTOMERS}) if r["d"]]


def audit_rows(reader: LakeReader, limit: int = 200) -> list[dict[str, Any]]:
    if not reader.exists(catalog.EXPORT_AUDIT):
        return []
    return reader.query("SELECT * FROM a ORDER BY exported_at DESC, export_id LIMIT ?", {"a": catalog.EXPORT_AUDIT}, [limit])


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)
