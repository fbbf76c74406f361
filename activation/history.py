"""Who owns which vehicle and which dealer a customer belongs to, as of a date, from the
person mentions and the silver feeds. Everything here looks only at events before D."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

__all__ = ["as_of_start", "build_current_owners", "build_home_dealers", "build_vehicle_facts", "build_visits"]

# Roles whose person owns the vehicle in the record (a repair order's contact may be a driver).
_OWNER_ROLES = ("buyer", "owner", "customer")


def as_of_start(as_of: dt.date) -> F.Column:
    """The first instant of the as-of date: events at or after it are in the future."""
    return F.lit(dt.datetime.combine(as_of, dt.time())).cast("timestamp")


def build_current_owners(mentions: DataFrame, as_of: dt.date) -> DataFrame:
    """Mentions with `customer_id` (mention_id, role, vin, seen_at, customer_id) -> the owner
    of each VIN at D: the customer of the latest owner-role mention before D.
    Grain: vin; columns vin, customer_id, owner_since (first owner mention of that customer)."""
    owned = mentions.filter(
        F.col("vin").isNotNull() & F.col("role").isin(*_OWNER_ROLES) & (F.col("seen_at").cast("timestamp") < as_of_start(as_of))
    )
    per_owner = owned.groupBy("vin", "customer_id").agg(
        F.max("seen_at").alias("_last"), F.to_date(F.min("seen_at")).alias("owner_since")
    )
    latest = Window.partitionBy("vin").orderBy(F.desc("_last"), "customer_id")
    return per_owner.withColumn("_rank", F.row_number().over(latest)).filter("_rank = 1").select("vin", "customer_id", "owner_since")


def build_visits(service_orders: DataFrame, as_of: dt.date) -> DataFrame:
    """Silver repair orders opened before D -> vin, visit_date, mileage_km, service_type, dealer_code."""
    return service_orders.filter(F.col("opened_at") < as_of_start(as_of)).select(
        "vin", F.to_date("opened_at").alias("visit_date"), "mileage_km", "service_type", "dealer_code"
    )


def build_vehicle_facts(sales_orders: DataFrame, as_of: dt.date) -> DataFrame:
    """Silver sales orders before D -> per VIN its first retail delivery (delivery date, else
    order date), brand, model and selling dealer. Grain: vin."""
    sold = sales_orders.filter(F.col("order_date") < F.lit(as_of)).withColumn(
        "delivered_on", F.coalesce("delivery_date", "order_date")
    ).filter(F.col("delivered_on") < F.lit(as_of))
    first = Window.partitionBy("vin").orderBy("delivered_on", "record_id")
    return (
        sold.withColumn("_rank", F.row_number().over(first))
        .filter("_rank = 1")
        .select("vin", "delivered_on", "brand", "model", F.col("dealer_code").alias("selling_dealer"))
    )


def build_home_dealers(events: DataFrame, as_of: dt.date) -> DataFrame:
    """Customer events (customer_id, dealer_code, at) -> the dealer of each customer's latest
    event before D: the dealer to call back from. Grain: customer_id."""
    past = events.filter(F.col("at").cast("timestamp") < as_of_start(as_of)).filter(F.col("dealer_code").isNotNull())
    latest = Window.partitionBy("customer_id").orderBy(F.desc("at"), "dealer_code")
    return past.withColumn("_rank", F.row_number().over(latest)).filter("_rank = 1").select("customer_id", "dealer_code")
