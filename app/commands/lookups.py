"""Read-only lookups (`cdp customer`, `cdp segments`, `cdp model`) and `cdp privacy`.

`customer show`, `segments list`, `model list|compare` and `privacy audit` read the gold
tables with delta-rs and DuckDB and start no JVM."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import click

from app.options import common_options, context_from
from cdp import catalog
from cdp.errors import NotFoundError, UsageError
from cdp.privacy import current_user, mask_text
from cdp.reader import LakeReader
from entity_resolution.standardise.mobiles import standardise_mobile

__all__ = ["COMMANDS"]

_PROFILE_MASKS = {"name": "name", "mobile": "mobile", "id_number": "id_number", "email": "email", "address": "address",
                  "name_pinyin": "name"}


_MOBILE = re.compile(r"\b1[3-9]\d{9}\b")
_VIN = re.compile(r"\b[A-HJ-NPR-Z0-9]{17}\b")


def _mask_summary(text: str) -> str:
    """Mobiles and VINs in a timeline line, masked like the profile's."""
    text = _VIN.sub(lambda m: str(mask_text("id_number", m.group(0))), text)
    return _MOBILE.sub(lambda m: str(mask_text("mobile", m.group(0))), text)


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("  (none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    click.echo("  " + "  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        click.echo("  " + "  ".join(str(row.get(c) if row.get(c) is not None else "").ljust(widths[c]) for c in columns))


def _mask_profile(profile: dict[str, Any]) -> dict[str, Any]:
    masked = {k: mask_text(_PROFILE_MASKS[k], v) if k in _PROFILE_MASKS else v for k, v in profile.items()}
    if masked.get("mobiles") is not None:
        masked["mobiles"] = [mask_text("mobile", m) for m in profile["mobiles"]]
    if masked.get("birth_date") is not None:
        masked["birth_date"] = f"{profile['birth_date']:%Y}-**-**"
    return masked


# Per feed: its event time and a one-line summary, in DuckDB SQL over the silver table.
_TIMELINE = {
    "sales_orders": ("order_date", "concat_ws(' ', 'bought', brand, model, model_year, '·', vin, '· ¥', price)"),
    "leads": ("created_at", "concat_ws(' ', 'lead via', channel, 'for', intended_model, '·', status, purchase_horizon)"),
    "service_orders": ("opened_at", "concat_ws(' ', service_type, '·', vin, '·', mileage_km, 'km · ¥', total_amount, 'paid by', paid_by)"),
    "warranty_claims": ("claim_date", "concat_ws(' ', 'warranty claim', failure_code, '·', vin, '· ¥', claim_amount, '·', status)"),
    "complaints": ("received_at", "concat_ws(' ', category, 'complaint,', severity, '· via', channel, '·', status)"),
    "surveys": ("surveyed_at", "concat_ws(' ', survey_type, 'survey · score', overall_score)"),
}


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
                text = row["summary"] if reveal else _mask_summary(row["summary"] or "")
                events.append({"at": row["at"], "feed": feed, "record_id": row["record_id"], "role": role,
                               "dealer_code": row["dealer_code"], "summary": text})
    return sorted(events, key=lambda e: (e["at"] or dt.datetime.min, e["feed"], e["record_id"], e["role"]))


@click.group()
def customer() -> None:
    """One customer's unified view, and why its records were joined."""


@customer.command("show")
@click.argument("customer_id", required=False)
@click.option("--mobile", help="find customers by a mobile they used")
@click.option("--reveal", is_flag=True, help="unmasked (only for users in activation.exports.privileged_users)")
@click.option("--limit", type=int, default=5, show_default=True, help="at most this many customers")
@common_options
def customer_show(customer_id: str | None, mobile: str | None, reveal: bool, limit: int, **options: Any) -> None:
    """Profile, vehicles and records of a customer (masked unless the user may see more)."""
    if not customer_id and not mobile:
        raise UsageError("give a customer ID or --mobile")
    context = context_from(options)
    if reveal and current_user() not in context.config.activation.exports.privileged_users:
        raise UsageError(f"user {current_user()!r} may not see unmasked details: add them to activation.exports.privileged_users")
    reader = LakeReader(context.lake.root)
    tables = {"customers": catalog.CUSTOMERS}
    if customer_id:
        found = reader.query("SELECT * FROM customers WHERE customer_id = ? ORDER BY customer_id LIMIT ?", tables, [customer_id, limit])
    else:
        found = reader.query("SELECT * FROM customers WHERE list_contains(mobiles, ?) ORDER BY customer_id LIMIT ?", tables,
                             [standardise_mobile(mobile or ""), limit])
    if not found:
        raise NotFoundError("no such customer")
    shown: list[dict[str, Any]] = []
    for profile in found:
        view = profile if reveal else _mask_profile(profile)
        cid = profile["customer_id"]
        vehicles = reader.query(
            "SELECT vin, role, from_date, to_date, records, is_current_owner FROM v WHERE customer_id = ? ORDER BY from_date, vin",
            {"v": catalog.CUSTOMER_VEHICLES}, [cid],
        )
        records = reader.query(
            "SELECT feed, record_id, mention_role AS role FROM x WHERE customer_id = ? ORDER BY feed, record_id",
            {"x": catalog.CUSTOMER_XREF}, [cid],
        )
        if not reveal:
            vehicles = [{**v, "vin": mask_text("id_number", v["vin"])} for v in vehicles]
        shown.append({"profile": view, "vehicles": vehicles, "timeline": timeline(reader, records, reveal)})
    if options["as_json"]:
        click.echo(json.dumps(shown, default=str, ensure_ascii=False, indent=2))
        return
    for item in shown:
        click.echo(f"customer {item['profile']['customer_id']}")
        for key, value in item["profile"].items():
            if key != "customer_id":
                click.echo(f"  {key:<14} {value}")
        click.echo("vehicles")
        print_table(item["vehicles"], ["vin", "role", "from_date", "to_date", "records", "is_current_owner"])
        click.echo("timeline")
        print_table(item["timeline"], ["at", "feed", "record_id", "role", "dealer_code", "summary"])


@customer.command("explain")
@click.argument("customer_id")
@common_options
def customer_explain(customer_id: str, **options: Any) -> None:
    """The links that joined a customer's records, with the match weight of every comparison."""
    from entity_resolution.customer_view import explain_customer
    from entity_resolution.model import read_model

    context = context_from(options)
    reader = LakeReader(context.lake.root)
    reader.require(catalog.CUSTOMER_XREF, catalog.PERSON_MENTIONS, catalog.MATCH_PAIRS)
    count, links = explain_customer(reader, customer_id, read_model(reader), context.config.resolution.match_threshold)
    if options["as_json"]:
        click.echo(json.dumps(links, indent=2))
        return
    click.echo(f"customer {customer_id}: {count} records, joined by {len(links)} link(s)")
    for item in links:
        click.echo(f"\n{item['mention_id_l']}  <->  {item['mention_id_r']}")
        if item["joined_by"] == "vehicle_owner":
            click.echo("  names nobody: joined the owner of its vehicle at its date")
            continue
        click.echo(f"  match probability {item['match_probability']:.4f}, match weight {item['match_weight']:.2f}")
        print_table(item["comparisons"], ["comparison", "level", "match_weight"])


COMMANDS: tuple[click.Command, ...] = (customer,)
