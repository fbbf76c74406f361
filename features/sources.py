"""What features are built from: golden customers, the crosswalk and the silver feeds,
with each source record tied to its customer and cut at the as-of date."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

__all__ = ["FEEDS", "CustomerRecords", "FeatureSources", "as_of_start", "before", "customer_records", "records_of", "within_months"]

# The silver feeds features read.
FEEDS = ("sales_orders", "leads", "service_orders", "warranty_claims", "complaints", "surveys")


@dataclass(frozen=True)
class _Feeds:
    """The feeds of a feature build (`FEEDS`), and the golden customers and working calendar
    it reads beside them."""

    customers: DataFrame
    sales_orders: DataFrame
    leads: DataFrame
    service_orders: DataFrame
    warranty_claims: DataFrame
    complaints: DataFrame
    surveys: DataFrame
    calendar: DataFrame  # China's working calendar (`operations.complaints.calendar_for`)


@dataclass(frozen=True)
class FeatureSources(_Feeds):
    """Inputs of one feature build. Feeds are silver tables (with `record_id`); `xref` is
    `gold/customer_xref`; `mentions` holds at least `mention_id, seen_at`; `calendar` covers
    every complaint deadline before the as-of date."""

    xref: DataFrame
    mentions: DataFrame


@dataclass(frozen=True)
class CustomerRecords(_Feeds):
    """The sources of `FeatureSources` with every record tied to its customer, the same for
    every as-of date (`customer_records`): each feed's records with the `customer_id` of their
    primary customer (`records_of`), and `seen`, the (customer_id, seen_at) of every mention."""

    seen: DataFrame


def customer_records(sources: FeatureSources) -> CustomerRecords:
    """Join each feed and the mentions to the crosswalk: the work of a feature build that
    does not depend on the as-of date, done once for any number of dates when the result is
    kept (`app.steps.features` writes it to the lake's scratch space)."""
    xref = sources.xref
    seen = xref.select("mention_id", "customer_id").join(sources.mentions.select("mention_id", "seen_at"), "mention_id")
    return CustomerRecords(
        customers=sources.customers,
        seen=seen.select("customer_id", "seen_at"),
        calendar=sources.calendar,
        **{feed: records_of(getattr(sources, feed), xref, feed) for feed in FEEDS},
    )


def as_of_start(as_of: dt.date) -> Column:
    """The first instant of the as-of date: events at or after it are in the future."""
    return F.lit(dt.datetime.combine(as_of, dt.time())).cast("timestamp")


def before(df: DataFrame, column: str, as_of: dt.date) -> DataFrame:
    """Rows whose `column` (date or timestamp) lies strictly before the as-of date."""
    return df.filter(F.col(column).cast("timestamp") < as_of_start(as_of))


def within_months(column: str, as_of: dt.date, months: int) -> Column:
    """True when `column` falls in the `months` months before the as-of date."""
    start = F.add_months(F.lit(as_of), -months).cast("timestamp")
    return (F.col(column).cast("timestamp") >= start) & (F.col(column).cast("timestamp") < as_of_start(as_of))


def records_of(feed_table: DataFrame, xref: DataFrame, feed: str) -> DataFrame:
    """Silver records of `feed` with the `customer_id` of the record's own (primary) customer."""
    owners = xref.filter((F.col("feed") == feed) & (F.col("role") == "primary")).select("record_id", "customer_id")
    return feed_table.join(owners, "record_id")
