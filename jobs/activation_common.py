"""Reading what the activation jobs share: features of a date, golden profiles, who owns
what, consent, and the export path with its audit record."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import logging
import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from activation.consent import build_channel_consent, build_customer_identifiers
from activation.exports import ExportRequest, build_audit_row, build_export_rows, validate_privileged, write_export_file
from activation.history import build_current_owners, build_home_dealers, build_vehicle_facts
from cdp.config import AppConfig
from cdp.contract import CONTRACTS
from cdp.lake import Lake, merge_into, read_table, table_exists
from features.sources import records_of

__all__ = [
    "ActivationError",
    "add_export_options",
    "customer_events",
    "export_list",
    "features_of",
    "lake_of",
    "load_consent",
    "load_feed",
    "mentions_with_customers",
    "owned_vehicles",
    "table_or_empty",
]

log = logging.getLogger(__name__)


class ActivationError(RuntimeError):
    """The lake lacks what a list is built from, or a request cannot be served."""


def lake_of(config: AppConfig) -> Lake:
    return Lake(config.resolve(config.lake.root))


def table_or_empty(spark: SparkSession, path: str, schema: str) -> DataFrame:
    return read_table(spark, path) if table_exists(spark, path) else spark.createDataFrame([], schema)


def load_feed(spark: SparkSession, lake: Lake, feed: str) -> DataFrame:
    """A silver feed, or an empty one with the contract's columns (all strings) if never sent."""
    if table_exists(spark, lake.silver(feed)):
        return read_table(spark, lake.silver(feed))
    columns = ["record_id", *CONTRACTS[feed].columns]
    return spark.createDataFrame([], ", ".join(f"`{c}` string" for c in columns))


def _require_gold(spark: SparkSession, lake: Lake, *names: str) -> None:
    missing = [lake.table("gold", n) for n in names if not table_exists(spark, lake.table("gold", n))]
    if missing:
        raise ActivationError(f"missing {', '.join(missing)}: run `cdp run resolve` (and `cdp run features`) first")


def features_of(spark: SparkSession, lake: Lake, as_of: dt.date | None) -> tuple[DataFrame, dt.date]:
    """Feature rows of `as_of` (default: the latest date built)."""
    _require_gold(spark, lake, "customer_features")
    table = read_table(spark, lake.table("gold", "customer_features"))
    if as_of is None:
        as_of = table.agg(F.max("as_of_date")).first()[0]
        if as_of is None:
            raise ActivationError("gold/customer_features is empty: run `cdp run features` first")
    rows = table.filter(F.col("as_of_date") == F.lit(as_of))
    if rows.limit(1).count() == 0:
        raise ActivationError(f"no features as of {as_of}: run `cdp run features --as-of {as_of}` first")
    return rows, as_of


def mentions_with_customers(spark: SparkSession, lake: Lake) -> DataFrame:
    """Person mentions with the customer each belongs to."""
    _require_gold(spark, lake, "person_mentions", "customer_xref")
    xref = read_table(spark, lake.table("gold", "customer_xref")).select("mention_id", "customer_id")
    return read_table(spark, lake.table("gold", "person_mentions")).join(xref, "mention_id")


def load_consent(spark: SparkSession, lake: Lake, mentions: DataFrame) -> DataFrame:
    """customer_id, channel, opted_out, opted_in from the current contact preferences."""
    return build_channel_consent(load_feed(spark, lake, "contact_preferences"), build_customer_identifiers(mentions))


def customer_events(spark: SparkSession, lake: Lake) -> DataFrame:
    """Purchases and repair orders of each customer (customer_id, dealer_code, at)."""
    _require_gold(spark, lake, "customer_xref")
    xref = read_table(spark, lake.table("gold", "customer_xref"))
    sales = records_of(load_feed(spark, lake, "sales_orders"), xref, "sales_orders").select(
        "customer_id", "dealer_code", F.col("order_date").cast("timestamp").alias("at")
    )
    visits = records_of(load_feed(spark, lake, "service_orders"), xref, "service_orders").select(
        "customer_id", "dealer_code", F.col("opened_at").cast("timestamp").alias("at")
    )
    return sales.unionByName(visits)


def owned_vehicles(spark: SparkSession, lake: Lake, mentions: DataFrame, as_of: dt.date) -> tuple[DataFrame, DataFrame]:
    """(owners at D: vin, customer_id, owner_since; vehicle facts: vin, delivered_on, brand, model, selling_dealer)."""
    return build_current_owners(mentions, as_of), build_vehicle_facts(load_feed(spark, lake, "sales_orders"), as_of)


def home_dealers(spark: SparkSession, lake: Lake, as_of: dt.date) -> DataFrame:
    return build_home_dealers(customer_events(spark, lake), as_of)


def add_export_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--out", required=True, help="file to write (local path or any Hadoop file system URI)")
    parser.add_argument("--fields", help="comma-separated fields (default: the list's own)")
    parser.add_argument("--privileged", action="store_true", help="full contact details (needs --purpose and a listed user)")
    parser.add_argument("--purpose", help="why the export is needed; recorded in the audit table")
    parser.add_argument("--user", default=os.environ.get("CDP_USER") or getpass.getuser(), help="who exports (default $CDP_USER or the login)")


def export_list(spark: SparkSession, config: AppConfig, rows: DataFrame, consent: DataFrame, request: ExportRequest) -> int:
    """Check the privilege, filter by consent, mask, write the file and record the export in
    gold/export_audit. Returns the rows exported."""
    if request.privileged:
        validate_privileged(request.user, request.purpose, config.activation.exports.privileged_users)
    export = build_export_rows(
        rows, consent, request.channel, request.fields, request.privileged, config.activation.consent.require_opt_in
    )
    exported_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    order = [c for c in request.order_by if c in request.fields] or ["customer_id"]
    count = write_export_file(spark, export, request.destination, request.format, order)
    merge_into(spark, build_audit_row(spark, request, count, exported_at), lake_of(config).table("gold", "export_audit"), ["export_id"])
    log.info("exported %d rows of %s %s (masked=%s) to %s", count, request.list_kind, request.list_name, not request.privileged, request.destination)
    return count
