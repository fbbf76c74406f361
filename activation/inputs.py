"""What activation reads from the lake: features of a date, golden profiles, who owns
what and each customer's dealer (gold tables written once per run by the `ownership` step),
consent (the gold table, rebuilt when its sources changed), and the export path with its
audit record."""

from __future__ import annotations

import datetime as dt
import json
import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from activation.consent import build_channel_consent, build_customer_identifiers
from activation.exports import ExportRequest, build_audit_row, build_export_rows, validate_privileged, write_export_file
from activation.history import build_current_owners, build_home_dealers, build_vehicle_facts
from cdp import catalog
from cdp.config import AppConfig
from cdp.lake import (
    Lake,
    commit_metadata,
    merge_into,
    overwrite_table,
    read_feed,
    read_latest,
    read_or_empty,
    read_table,
    replace_partition,
    require_tables,
    table_exists,
    table_version,
)
from features.sources import records_of

__all__ = [
    "CONSENT_READS",
    "CONSENT_SOURCES",
    "build_consent_table",
    "customer_events",
    "export_list",
    "features_of",
    "load_consent",
    "mentions_with_customers",
    "ownership_of",
    "rows_with_contacts",
    "build_ownership",
]

log = logging.getLogger(__name__)

# The tables consent is built from: a newer version of either makes the gold table stale.
CONSENT_SOURCES = (catalog.silver("contact_preferences"), catalog.CUSTOMER_XREF, catalog.PERSON_MENTIONS, catalog.RESOLUTION_REVIEW)
# What `load_consent` reads: the table, and its sources to tell whether it is current.
CONSENT_READS = (catalog.CUSTOMER_CONSENT, *CONSENT_SOURCES)


def features_of(spark: SparkSession, lake: Lake, as_of: dt.date | None) -> tuple[DataFrame, dt.date]:
    """Feature rows of `as_of` (default: the latest date built)."""
    return read_latest(spark, lake, catalog.CUSTOMER_FEATURES, as_of)


def mentions_with_customers(spark: SparkSession, lake: Lake) -> DataFrame:
    """Person mentions with the customer each belongs to."""
    require_tables(spark, lake, catalog.PERSON_MENTIONS, catalog.CUSTOMER_XREF)
    xref = read_table(spark, lake.path(catalog.CUSTOMER_XREF)).select("mention_id", "customer_id")
    return read_table(spark, lake.path(catalog.PERSON_MENTIONS)).join(xref, "mention_id")


def _source_versions(spark: SparkSession, lake: Lake) -> str:
    return json.dumps({t.label: table_version(spark, lake.path(t)) for t in CONSENT_SOURCES}, sort_keys=True)


def build_consent_table(spark: SparkSession, lake: Lake) -> int:
    """Write gold/customer_consent (customer_id, channel, opted_out, opted_in) from the
    current contact preferences, crosswalk and review pairs (see `build_channel_consent`),
    recording their versions in the commit; returns its rows."""
    versions = _source_versions(spark, lake)
    review = read_or_empty(spark, lake, catalog.RESOLUTION_REVIEW, "kind string, customer_id_l string, customer_id_r string")
    # Read five times by the consent plan: computed once (a join of every mention), now, like
    # the plan's own parts (see `build_channel_consent`); a lazy cache was slower.
    identifiers = build_customer_identifiers(mentions_with_customers(spark, lake)).localCheckpoint()
    consent = build_channel_consent(read_feed(spark, lake, "contact_preferences"), identifiers, review.filter(F.col("kind") == "near_miss"))
    overwrite_table(spark, consent, lake.path(catalog.CUSTOMER_CONSENT), user_metadata=versions)
    return read_table(spark, lake.path(catalog.CUSTOMER_CONSENT)).count()


def load_consent(spark: SparkSession, lake: Lake) -> DataFrame:
    """customer_id, channel, opted_out, opted_in from gold/customer_consent. Rebuilt first
    when preferences or the crosswalk changed since it was built: an opt-out ingested after
    the last run must still be honoured."""
    path = lake.path(catalog.CUSTOMER_CONSENT)
    if commit_metadata(spark, path) != _source_versions(spark, lake):
        log.info("customer consent is older than its sources: rebuilding it")
        build_consent_table(spark, lake)
    return read_table(spark, path)


def customer_events(spark: SparkSession, lake: Lake) -> DataFrame:
    """Purchases and repair orders of each customer (customer_id, dealer_code, at)."""
    require_tables(spark, lake, catalog.CUSTOMER_XREF)
    xref = read_table(spark, lake.path(catalog.CUSTOMER_XREF))
    sales = records_of(read_feed(spark, lake, "sales_orders"), xref, "sales_orders").select(
        "customer_id", "dealer_code", F.col("order_date").cast("timestamp").alias("at")
    )
    visits = records_of(read_feed(spark, lake, "service_orders"), xref, "service_orders").select(
        "customer_id", "dealer_code", F.col("opened_at").cast("timestamp").alias("at")
    )
    return sales.unionByName(visits)


_OWNERSHIP = (catalog.VEHICLE_OWNERS, catalog.HOME_DEALERS)


def build_ownership(spark: SparkSession, lake: Lake, as_of: dt.date) -> dict[str, int]:
    """Write the as-of-D partitions of gold/vehicle_owners (the owner of each VIN with the
    vehicle's first retail sale) and gold/home_dealers from the crosswalk and the silver
    feeds; returns rows per table."""
    owners = build_current_owners(mentions_with_customers(spark, lake), as_of)
    vehicles = build_vehicle_facts(read_feed(spark, lake, "sales_orders"), as_of)
    built = (owners.join(vehicles, "vin", "left"), build_home_dealers(customer_events(spark, lake), as_of))
    rows = {}
    for table, df in zip(_OWNERSHIP, built):
        path = lake.path(table)
        replace_partition(spark, df.withColumn("as_of_date", F.lit(as_of)), path, "as_of_date", as_of, table.no_stats_columns(df.columns))
        rows[table.label] = read_table(spark, path).filter(F.col("as_of_date") == F.lit(as_of)).count()
    return rows


def ownership_of(spark: SparkSession, lake: Lake, as_of: dt.date) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(owners at D: vin, customer_id, owner_since; their vehicles' facts: vin, delivered_on,
    brand, model, selling_dealer; home dealers: customer_id, dealer_code) from the gold tables
    the `ownership` step writes once per run. A date not built yet is built first."""
    path = lake.path(catalog.VEHICLE_OWNERS)
    if not (table_exists(spark, path) and read_table(spark, path).filter(F.col("as_of_date") == F.lit(as_of)).limit(1).count()):
        log.info("vehicle ownership as of %s is not built yet: building it", as_of)
        build_ownership(spark, lake, as_of)
    owned, dealers = (read_table(spark, lake.path(t)).filter(F.col("as_of_date") == F.lit(as_of)).drop("as_of_date") for t in _OWNERSHIP)
    vehicles = owned.filter(F.col("delivered_on").isNotNull()).select("vin", "delivered_on", "brand", "model", "selling_dealer")
    return owned.select("vin", "customer_id", "owner_since"), vehicles, dealers


def rows_with_contacts(spark: SparkSession, lake: Lake, table: catalog.TableRef, day: dt.date) -> DataFrame:
    """The as-of-`day` rows of a list table (win-back, reminders) with each customer's name,
    mobile and e-mail, for an export to filter by consent and mask."""
    rows = read_table(spark, lake.path(table)).filter(F.col("as_of_date") == F.lit(day))
    profiles = read_table(spark, lake.path(catalog.CUSTOMERS)).select("customer_id", "name", "mobile", "email")
    return rows.join(profiles, "customer_id", "left")


def export_list(spark: SparkSession, config: AppConfig, lake: Lake, rows: DataFrame, request: ExportRequest) -> int:
    """Check the privilege, filter by consent, mask, write the file and record the export in
    gold/export_audit. Returns the rows exported."""
    if request.privileged:
        validate_privileged(request.user, request.purpose, config.activation.exports.privileged_users)
    export = build_export_rows(
        rows, load_consent(spark, lake), request.channel, request.fields, request.privileged,
        config.activation.consent.require_opt_in,
    )
    exported_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    order = [c for c in request.order_by if c in request.fields] or ["customer_id"]
    count = write_export_file(spark, export, request.destination, request.format, order)
    merge_into(spark, build_audit_row(spark, request, count, exported_at), lake.path(catalog.EXPORT_AUDIT), ["export_id"])
    log.info("exported %d rows of %s %s (masked=%s)", count, request.list_kind, request.list_name, not request.privileged)
    return count
