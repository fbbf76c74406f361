"""Read-only lookups (`cdp customer`, `cdp segments`, `cdp model`) and `cdp privacy`.

`customer show`, `segments list`, `model list|compare` and `privacy audit` read the gold
tables with delta-rs and DuckDB and start no JVM."""

from __future__ import annotations

import json
from typing import Any

import click

from app.options import common_options, context_from
from cdp import catalog
from cdp.errors import NotFoundError, UsageError
from cdp.privacy import current_user
from cdp.reader import LakeReader
from entity_resolution.customer_360 import customer_details, find_customers

__all__ = ["COMMANDS"]


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("  (none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    click.echo("  " + "  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        click.echo("  " + "  ".join(str(row.get(c) if row.get(c) is not None else "").ljust(widths[c]) for c in columns))


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
    found = find_customers(reader, customer_id=customer_id, mobile=mobile, limit=limit)
    if not found:
        raise NotFoundError("no such customer")
    shown = [customer_details(reader, profile, reveal) for profile in found]
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




@click.group()
def review() -> None:
    """The linkage review queue: near misses and weak joins, and reviewers' decisions."""


@review.command("list")
@click.option("--limit", type=int, default=20, show_default=True)
@common_options
def review_list(limit: int, **options: Any) -> None:
    """Pairs worth a human look, closest to the decision first, values masked."""
    from web.pages import review_queue

    context = context_from(options)
    pairs = review_queue(LakeReader(context.lake.root), limit, context.config.resolution.match_threshold)
    if options["as_json"]:
        click.echo(json.dumps(pairs, default=str, ensure_ascii=False, indent=2))
        return
    for pair in pairs:
        left, right = pair["mention_l"], pair["mention_r"]
        click.echo(f"{pair['kind']:<10} p={pair['match_probability']:.3f}  {pair['mention_id_l']}  <->  {pair['mention_id_r']}")
        for key in ("name", "mobile", "id_number", "vin", "dealer_code", "city"):
            click.echo(f"  {key:<12} {left.get(key) or '-':<24} {right.get(key) or '-'}")


@review.command("decide")
@click.argument("left")
@click.argument("right")
@click.option("--confirm", "decision", flag_value="confirm", help="the two are one person (must-link)")
@click.option("--split", "decision", flag_value="split", help="the two are different people (cannot-link)")
@common_options
def review_decide(left: str, right: str, decision: str | None, **options: Any) -> None:
    """Record a decision about two mentions (`feed:record_id:role`), with who and when; the
    next resolve run honours it."""
    import datetime as dt

    from entity_resolution.overrides import record_decision

    if decision is None:
        raise UsageError("give --confirm or --split")
    context = context_from(options)
    path = context.config.conf_path(context.config.resolution.overrides_file)
    try:
        record_decision(path, left, right, decision == "confirm", current_user(), dt.datetime.now(dt.UTC))
    except ValueError as exc:
        raise UsageError(f"{left} / {right}: {exc}") from exc
    click.echo(f"recorded {'must-link' if decision == 'confirm' else 'cannot-link'} {left} <-> {right} in {path}")


COMMANDS: tuple[click.Command, ...] = (customer, review)
