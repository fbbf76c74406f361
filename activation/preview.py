"""Campaigns evaluated without a JVM: the campaign's SQL (`activation.campaign_sql`, the
query a build on Spark runs) run by DuckDB over the gold tables, read with delta-rs. A
preview gives the counts; a build on a local lake also gets the members, as a Parquet file."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from activation.audiences import AudiencePreview, preview_from_counts
from activation.campaign_sql import DUCKDB, campaign_query, summary_query
from activation.campaigns import CampaignBook
from activation.inputs import CONSENT_SOURCES
from cdp import catalog
from cdp.errors import MissingInputError
from cdp.reader import LakeReader

__all__ = ["members_to_parquet", "preview_from_lake"]

def _consent_is_current(reader: LakeReader) -> bool:
    """Whether gold/customer_consent was built from the current versions of its sources
    (they are kept in its latest commit; see `activation.inputs.build_consent_table`)."""
    from deltalake import DeltaTable

    from cdp.reader import delta_version

    history = DeltaTable(reader.path(catalog.CUSTOMER_CONSENT)).history(1)
    recorded = history[0].get("userMetadata") if history else None
    current = json.dumps({t.label: delta_version(reader.path(t)) for t in CONSENT_SOURCES}, sort_keys=True)
    return recorded == current


def _relations(con: Any, reader: LakeReader, day: dt.date) -> None:
    """The eight inputs of the campaign query as DuckDB views of the as-of date; tables not
    written yet (no segments, no lists) are empty views of the same columns."""
    on_day = f"as_of_date = DATE '{day.isoformat()}'"

    def view(name: str, table: catalog.TableRef, columns: dict[str, str], where: str = "TRUE") -> None:
        if reader.exists(table):
            con.register(f"_{name}", reader.dataset(table))
            con.execute(f"CREATE TEMP VIEW {name} AS SELECT {', '.join(columns)} FROM _{name} WHERE {where}")
        else:
            empty = ", ".join(f"NULL::{kind} AS {column}" for column, kind in columns.items())
            con.execute(f"CREATE TEMP VIEW {name} AS SELECT {empty} WHERE FALSE")

    text = "VARCHAR"
    con.register("_features", reader.dataset(catalog.CUSTOMER_FEATURES))
    con.execute(f"CREATE TEMP VIEW features AS SELECT * EXCLUDE (as_of_date) FROM _features WHERE {on_day}")
    view("profiles", catalog.CUSTOMERS, {"customer_id": text, "mobile": text, "email": text})
    view("segments", catalog.CUSTOMER_SEGMENTS, {"customer_id": text, "segment_name": text}, on_day)
    view("home_dealers", catalog.HOME_DEALERS, {"customer_id": text, "dealer_code": text}, on_day)
    view("owned_models", catalog.VEHICLE_OWNERS, {"customer_id": text, "model": text}, f"{on_day} AND delivered_on IS NOT NULL")
    view("reminders", catalog.REMINDERS, {"customer_id": text, "kind": text, "due_date": "DATE"}, on_day)
    view("consent", catalog.CUSTOMER_CONSENT, {"customer_id": text, "channel": text, "opted_out": "BOOLEAN", "opted_in": "BOOLEAN"})
    view("contacts", catalog.AUDIENCES, {"campaign": text, "customer_id": text, "built_at": "TIMESTAMP"}, "NOT holdout")


def _evaluate(con: Any, reader: LakeReader, book: CampaignBook, name: str, day: dt.date, now: dt.datetime,
              require_opt_in: tuple[str, ...]) -> AudiencePreview:
    """Campaign `name` as of `day` evaluated into the connection's temporary table `evaluated`;
    its counts, with the warnings a build on Spark gives (segments not scored, no reminders)."""
    campaign = book.get(name)
    _relations(con, reader, day)
    columns = [r[0] for r in con.execute("DESCRIBE features").fetchall()]
    query = campaign_query(book, name, as_of=day, now=now, feature_columns=columns, require_opt_in=require_opt_in, dialect=DUCKDB)
    con.execute(f"CREATE TEMP TABLE evaluated AS {query}")
    cursor = con.execute(summary_query("evaluated", require_opt_in, DUCKDB))
    row = dict(zip([c[0] for c in cursor.description], cursor.fetchall()[0]))
    known = {r[0] for r in con.execute("SELECT DISTINCT segment_name FROM segments WHERE segment_name IS NOT NULL").fetchall()}
    reminders = con.execute("SELECT count(*) FROM reminders").fetchall()[0][0]
    summary = preview_from_counts(row, name, campaign.channel)
    unknown = sorted(set(campaign.audience.segment) - known)
    if unknown:
        summary.warnings.append(f"segment(s) {unknown} not scored as of {day}; scored: {sorted(known) or 'none'}")
    if campaign.audience.due is not None and not reminders:
        summary.warnings.append(f"no reminders as of {day}: run `cdp run reminders --as-of {day}` first")
    return summary


def preview_from_lake(
    reader: LakeReader, book: CampaignBook, name: str, as_of: dt.date | None, now: dt.datetime, require_opt_in: tuple[str, ...] = ()
) -> AudiencePreview:
    """Sizes and suppressions of campaign `name` as of `as_of` (default: the latest
    features), the same counts a build on Spark reports, read in DuckDB."""
    book.get(name)
    day = reader.latest(catalog.CUSTOMER_FEATURES, as_of)
    if not reader.exists(catalog.VEHICLE_OWNERS) or not reader.scalar(
        "SELECT count(*) FROM o WHERE as_of_date = ?", {"o": catalog.VEHICLE_OWNERS}, [day]
    ):
        raise MissingInputError(f"no gold/vehicle_owners as of {day}: run `cdp run ownership --as-of {day}` first")
    reader.require(catalog.CUSTOMERS, catalog.CUSTOMER_CONSENT, catalog.HOME_DEALERS)
    with reader.connect({}) as con:
        summary = _evaluate(con, reader, book, name, day, now, require_opt_in)
    if not _consent_is_current(reader):
        summary.warnings.append("consent is older than the preferences or the crosswalk: a build rebuilds it first (`cdp run consent`)")
    return summary


def members_to_parquet(
    reader: LakeReader, book: CampaignBook, name: str, day: dt.date, now: dt.datetime, require_opt_in: tuple[str, ...], out: str
) -> AudiencePreview:
    """Campaign `name` as of `day` evaluated as a build evaluates it (the caller has made
    ownership and consent current for `day`): its counts and warnings, and its members (with
    the columns `activation.audiences.build_audience` reads) written to the Parquet file `out`
    on local disk. The earlier lists are read as they stand now, as a build on Spark reads them."""
    reader.require(catalog.CUSTOMERS, catalog.CUSTOMER_CONSENT, catalog.HOME_DEALERS, catalog.VEHICLE_OWNERS)
    with reader.connect({}) as con:
        summary = _evaluate(con, reader, book, name, day, now, require_opt_in)
        con.execute(
            "COPY (SELECT CAST(customer_id AS VARCHAR) AS customer_id, CAST(reason AS VARCHAR) AS reason, "
            "CAST(dealer_code AS VARCHAR) AS dealer_code, CAST(due_date AS DATE) AS due_date, "
            "CAST(holdout AS BOOLEAN) AS holdout, CAST(member AS BOOLEAN) AS member FROM evaluated WHERE member) "
            f"TO '{out.replace(chr(39), chr(39) * 2)}' (FORMAT parquet)"
        )
    return summary
