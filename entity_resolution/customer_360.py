"""One customer's unified view, read without Spark: the golden profile, vehicles with their
owners over time, a timeline of every record, consent per channel, segment and lifecycle.

Shared by `cdp customer show` and the web app. Personal values are masked unless the caller
says the viewer may see them; the caller decides that from who the viewer is.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from cdp import catalog
from cdp.privacy import mask_text
from cdp.reader import LakeReader
from entity_resolution.standardise.mobiles import standardise_mobile

__all__ = ["customer_dealers", "customer_details", "find_customers", "mask_profile", "mask_summary", "timeline"]

_PROFILE_MASKS = {"name": "name", "mobile": "mobile", "id_number": "id_number", "email": "email", "address": "address",
                  "name_pinyin": "name"}
_MOBILE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_VIN = re.compile(r"\b[A-HJ-NPR-Z0-9]{17}\b")
_PLATE_NOISE = re.compile(r"[\s·.\-]")

# Per feed: its event time and a one-line summary, in DuckDB SQL over the silver table.
_TIMELINE = {
    "sales_orders": ("order_date", "concat_ws(' ', 'bought', brand, model, model_year, '·', vin, '· ¥', price)"),
    "leads": ("created_at", "concat_ws(' ', 'lead via', channel, 'for', intended_model, '·', status, purchase_horizon)"),
    "service_orders": ("opened_at", "concat_ws(' ', service_type, '·', vin, '·', mileage_km, 'km · ¥', total_amount, 'paid by', paid_by)"),
    "warranty_claims": ("claim_date", "concat_ws(' ', 'warranty claim', failure_code, '·', vin, '· ¥', claim_amount, '·', status)"),
    "complaints": ("received_at", "concat_ws(' ', category, 'complaint,', severity, '· via', channel, '·', status)"),
    "surveys": ("surveyed_at", "concat_ws(' ', survey_type, 'survey · score', overall_score)"),
}
# Feeds whose rows carry a number plate, to find a customer by plate.
_PLATE_FEEDS = ("sales_orders", "service_orders")


def mask_summary(text: str) -> str:
    """Mobiles and VINs in a timeline line, masked like the profile's."""
    text = _VIN.sub(lambda m: str(mask_text("id_number", m.group(0))), text)
    return _MOBILE.sub(lambda m: str(mask_text("mobile", m.group(0))), text)


def mask_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """A golden profile with every personal field masked (birth date to its year)."""
    masked = {k: mask_text(_PROFILE_MASKS[k], v) if k in _PROFILE_MASKS else v for k, v in profile.items()}
    if masked.get("mobiles") is not None:
        masked["mobiles"] = [mask_text("mobile", m) for m in profile["mobiles"]]
    if masked.get("birth_date") is not None:
        masked["birth_date"] = f"{profile['birth_date']:%Y}-**-**"
    return masked


def _plate(text: str) -> str:
    return _PLATE_NOISE.sub("", text).upper()


def find_customers(
    reader: LakeReader, *, customer_id: str | None = None, mobile: str | None = None, plate: str | None = None,
    vin: str | None = None, limit: int = 5,
) -> list[dict[str, Any]]:
    """Golden profiles (unmasked) found by customer ID, a mobile they used (exact, after
    standardising), a VIN they held or a plate seen on their vehicle's orders."""
    tables = {"customers": catalog.CUSTOMERS}
    if customer_id:
        return reader.query("SELECT * FROM customers WHERE customer_id = ? LIMIT ?", tables, [customer_id.strip(), limit])
    if mobile:
        number = standardise_mobile(mobile)
        if not number:
            return []
        return reader.query("SELECT * FROM customers WHERE list_contains(mobiles, ?) ORDER BY customer_id LIMIT ?", tables, [number, limit])
    vins = [vin.strip().upper()] if vin else []
    if plate:
        for feed in _PLATE_FEEDS:
            if reader.exists(catalog.silver(feed)):
                vins += [r["vin"] for r in reader.query(
                    "SELECT DISTINCT vin FROM s WHERE vin IS NOT NULL AND upper(regexp_replace(plate_no, '[\\s·.\\-]', '', 'g')) = ?",
                    {"s": catalog.silver(feed)}, [_plate(plate)])]
    if not vins:
        return []
    return reader.query(
        "SELECT c.* FROM customers c WHERE c.customer_id IN (SELECT customer_id FROM v WHERE list_contains(?, vin)) "
        "ORDER BY c.customer_id LIMIT ?", {**tables, "v": catalog.CUSTOMER_VEHICLES}, [sorted(set(vins)), limit],
    )


def customer_dealers(profile: dict[str, Any]) -> set[str]:
    """The dealers a customer has records at (a dealer manager sees these customers)."""
    return {d for d in profile.get("dealers") or [] if d}


def timeline(reader: LakeReader, records: list[dict[str, Any]], reveal: bool) -> list[dict[str, Any]]:
    """The customer's records as events in time order, read from silver without Spark."""
    events: list[dict[str, Any]] = []
    for feed, (at, summary) in _TIMELINE.items():
        mine = [r for r in records if r["feed"] == feed]
        if not mine or not reader.exists(catalog.silver(feed)):
            continue
        roles = {r["record_id"]: r["role"] for r in mine}
        rows = reader.query(
            f"SELECT CAST({at} AS TIMESTAMP) AS at, record_id, dealer_code, {summary} AS summary FROM s "
            "WHERE list_contains(?, record_id)", {"s": catalog.silver(feed)}, [sorted(roles)],
        )
        for row in rows:
            for role in sorted({r["role"] for r in mine if r["record_id"] == row["record_id"]}):
                text = row["summary"] if reveal else mask_summary(row["summary"] or "")
                events.append({"at": row["at"], "feed": feed, "record_id": row["record_id"], "role": role,
                               "dealer_code": row["dealer_code"], "summary": text})
    return sorted(events, key=lambda e: (e["at"] or dt.datetime.min, e["feed"], e["record_id"], e["role"]))


def _latest_rows(reader: LakeReader, table: catalog.TableRef, customer_id: str, columns: str) -> list[dict[str, Any]]:
    if not reader.exists(table):
        return []
    return reader.query(
        f"SELECT {columns} FROM t WHERE customer_id = ? AND as_of_date = (SELECT max(as_of_date) FROM t)", {"t": table}, [customer_id]
    )


def customer_details(reader: LakeReader, profile: dict[str, Any], reveal: bool, extended: bool = False) -> dict[str, Any]:
    """The view of one customer: profile, vehicles (with every owner of each VIN over time),
    timeline; with `extended`, also consent per channel, segment, lifecycle and reminders."""
    cid = profile["customer_id"]
    vehicles = reader.query(
        "SELECT vin, role, from_date, to_date, records, is_current_owner FROM v WHERE customer_id = ? ORDER BY from_date, vin",
        {"v": catalog.CUSTOMER_VEHICLES}, [cid],
    )
    records = reader.query(
        "SELECT feed, record_id, mention_role AS role FROM x WHERE customer_id = ? ORDER BY feed, record_id",
        {"x": catalog.CUSTOMER_XREF}, [cid],
    )
    view: dict[str, Any] = {"profile": profile if reveal else mask_profile(profile)}
    if extended:
        owners = reader.query(
            "SELECT vin, customer_id, role, from_date, to_date FROM v WHERE list_contains(?, vin) AND role = 'owner' ORDER BY vin, from_date",
            {"v": catalog.CUSTOMER_VEHICLES}, [sorted({v["vin"] for v in vehicles})],
        )
        for vehicle in vehicles:
            vehicle["owners"] = [o for o in owners if o["vin"] == vehicle["vin"]]
        view["consent"] = reader.query("SELECT channel, opted_out, opted_in FROM c WHERE customer_id = ? ORDER BY channel",
                                       {"c": catalog.CUSTOMER_CONSENT}, [cid]) if reader.exists(catalog.CUSTOMER_CONSENT) else []
        segment = _latest_rows(reader, catalog.CUSTOMER_SEGMENTS, cid, "segment_name, model_name, model_version, as_of_date")
        features = _latest_rows(reader, catalog.CUSTOMER_FEATURES, cid,
                                "lifecycle_stage, days_since_last_visit, lifetime_spend, service_visits_12m, as_of_date")
        view["segment"] = segment[0] if segment else None
        view["lifecycle"] = features[0] if features else None
        view["reminders"] = _latest_rows(reader, catalog.REMINDERS, cid, "kind, due_date, vin, dealer_code")
    if not reveal:
        for vehicle in vehicles:
            vehicle["vin"] = mask_text("id_number", vehicle["vin"])
            for owner in vehicle.get("owners", []):
                owner["vin"] = vehicle["vin"]
        for reminder in view.get("reminders", []):
            reminder["vin"] = mask_text("id_number", reminder["vin"])
    view["vehicles"] = vehicles
    view["timeline"] = timeline(reader, records, reveal)
    return view
