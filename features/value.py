"""Value features: spend, vehicles bought, price band of the newest vehicle, RFM quintiles."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.analytics_config import FeaturesConfig
from features.sources import before, within_months

__all__ = ["build_price_band", "build_value_features", "with_rfm_scores"]

_QUINTILE_CUTS = [0.2, 0.4, 0.6, 0.8]


def build_price_band(price: Column, bands: dict[str, float]) -> Column:
    """The band whose floor is the highest one not above `price` (bands sorted by floor)."""
    band: Column = F.lit(None).cast("string")
    for name, floor in bands.items():
        band = F.when(price >= floor, F.lit(name)).otherwise(band)
    return F.when(price.isNotNull(), band)


def _sum_if(condition: Column, value: str) -> Column:
    return F.sum(F.when(condition, F.col(value)).otherwise(0.0))


def build_value_features(
    sales_orders: DataFrame, service_orders: DataFrame, as_of: dt.date, config: FeaturesConfig
) -> DataFrame:
    """Sales orders (customer_id, order_id, order_date, delivery_date, price, model) and repair
    orders (customer_id, opened_at, total_amount, paid_by) -> spend, vehicles, newest vehicle,
    transactions, and the delivery dates the lifecycle stage needs."""
    recent = config.recent_months
    orders = before(sales_orders, "order_date", as_of).withColumn("price", F.col("price").cast("double"))
    newest = F.max(F.struct("order_date", "order_id", "price", "model")).alias("newest")
    delivered = F.coalesce("delivery_date", "order_date")
    bought = orders.groupBy("customer_id").agg(
        F.count("*").alias("vehicles_bought"),
        F.sum(F.coalesce("price", F.lit(0.0))).alias("vehicle_spend"),
        _sum_if(within_months("order_date", as_of, recent), "price").alias("vehicle_spend_12m"),
        F.max("order_date").alias("last_order_date"),
        F.min(delivered).alias("first_delivery_date"),
        F.max(F.when(delivered < F.lit(as_of), delivered)).alias("last_delivery_date"),
        newest,
    )
    paid = (
        before(service_orders, "opened_at", as_of)
        .withColumn("amount", F.when(F.col("paid_by") == "customer", F.col("total_amount").cast("double")).otherwise(0.0))
        .groupBy("customer_id")
        .agg(
            F.count("*").alias("visits"),
            F.sum(F.coalesce("amount", F.lit(0.0))).alias("service_spend"),
            _sum_if(within_months("opened_at", as_of, recent), "amount").alias("service_spend_12m"),
            F.to_date(F.max("opened_at")).alias("last_visit_day"),
        )
    )
    zero = F.lit(0.0)
    return (
        bought.join(paid, "customer_id", "full")
        .select(
            "customer_id",
            F.coalesce("vehicles_bought", F.lit(0)).cast("long").alias("vehicles_bought"),
            F.coalesce("vehicle_spend", zero).alias("vehicle_spend"),
            F.coalesce("service_spend", zero).alias("service_spend"),
            F.coalesce("service_spend_12m", zero).alias("service_spend_12m"),
            (F.coalesce("vehicle_spend", zero) + F.coalesce("service_spend", zero)).alias("lifetime_spend"),
            (F.coalesce("vehicle_spend_12m", zero) + F.coalesce("service_spend_12m", zero)).alias("spend_12m"),
            F.col("newest.price").alias("newest_vehicle_price"),
            build_price_band(F.col("newest.price"), config.price_bands).alias("newest_vehicle_price_band"),
            F.col("newest.model").alias("newest_vehicle_model"),
            (F.coalesce("vehicles_bought", F.lit(0)) + F.coalesce("visits", F.lit(0))).cast("long").alias("transactions_total"),
            F.datediff(F.lit(as_of), F.greatest("last_order_date", "last_visit_day")).alias("days_since_last_transaction"),
            "first_delivery_date",
            "last_delivery_date",
        )
    )


def _quintile(value: Column, cuts: Column, higher_is_better: bool = True) -> Column:
    above = F.aggregate(cuts, F.lit(0), lambda acc, cut: acc + F.when(value > cut, 1).otherwise(0))
    score = 1 + above if higher_is_better else 5 - above
    return F.when(value.isNotNull(), score.cast("int"))


def with_rfm_scores(features: DataFrame) -> DataFrame:
    """Add r_score, f_score, m_score: quintiles 1-5 of days_since_last_transaction (recent is
    5), transactions_total and lifetime_spend, among customers with a transaction. The cut
    points are approximate percentiles computed on the executors, not on the driver."""
    active = features.filter(F.col("transactions_total") > 0)
    cuts = active.agg(
        F.percentile_approx("days_since_last_transaction", _QUINTILE_CUTS).alias("_r_cuts"),
        F.percentile_approx("transactions_total", _QUINTILE_CUTS).alias("_f_cuts"),
        F.percentile_approx("lifetime_spend", _QUINTILE_CUTS).alias("_m_cuts"),
    )
    has = F.col("transactions_total") > 0
    return (
        features.crossJoin(F.broadcast(cuts))
        .withColumn("r_score", F.when(has, _quintile(F.col("days_since_last_transaction"), F.col("_r_cuts"), False)))
        .withColumn("f_score", F.when(has, _quintile(F.col("transactions_total"), F.col("_f_cuts"))))
        .withColumn("m_score", F.when(has, _quintile(F.col("lifetime_spend"), F.col("_m_cuts"))))
        .drop("_r_cuts", "_f_cuts", "_m_cuts")
    )
