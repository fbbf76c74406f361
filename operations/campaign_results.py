"""Campaign lift against the control group, and reminders' follow-through.

Every audience version keeps a control group (`holdout`) out of the list it exports. Once a
version's response window has passed (its as-of date plus the campaign's
`response.window_days`, before the as-of date D), the share of listed customers who responded
(a repair order, or a purchase for sales campaigns, in the window) is compared with the
control group's: the difference (`lift`) with a 95% confidence interval (normal
approximation to the difference of two proportions), the relative lift and the group sizes.

Reminders' follow-through: of the owners reminded of a service falling due, the share who
came for a repair order within `follow_days` of the due date, per kind, dealer and month due,
for reminders whose window has passed before D.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

__all__ = ["FOLLOW_COLUMNS", "RESULT_COLUMNS", "Z_95", "build_campaign_results", "build_reminder_followthrough"]

Z_95 = 1.959964
RESULT_COLUMNS = (
    "campaign", "version", "list_as_of", "response_event", "window_days", "window_end", "listed", "listed_responders", "listed_rate",
    "control", "control_responders", "control_rate", "lift", "lift_ci_low", "lift_ci_high", "relative_lift", "significant", "as_of_date",
)
FOLLOW_COLUMNS = ("as_of_date", "kind", "dealer_code", "due_month", "reminded", "came", "came_share")


def _windows(spark: SparkSession, windows: Mapping[str, tuple[str, int]]) -> DataFrame:
    rows = [(name, event, days) for name, (event, days) in windows.items()]
    return spark.createDataFrame(rows, "campaign string, response_event string, window_days int")


def _rate(part: str, whole: str) -> Column:
    return F.when(F.col(whole) > 0, F.col(part) / F.col(whole))


def _wilson(rate: Column, n: Column) -> tuple[Column, Column]:
    """The 95% Wilson score interval of a proportion: sound for small groups and for rates of
    0 or 1, where the normal approximation collapses to a single point."""
    z2 = Z_95 * Z_95
    size = F.when(n > 0, n)  # an empty group has no rate and no interval (null), never a division by 0
    centre = (rate + z2 / (2 * size)) / (1 + z2 / size)
    half = F.lit(Z_95) * F.sqrt(rate * (1 - rate) / size + z2 / (4 * size * size)) / (1 + z2 / size)
    return centre - half, centre + half


def build_campaign_results(
    spark: SparkSession, audiences: DataFrame, repair_orders: DataFrame, purchases: DataFrame, windows: Mapping[str, tuple[str, int]],
    as_of: dt.date,
) -> DataFrame:
    """Audience rows (campaign, version, customer_id, holdout, as_of_date), the customers'
    repair orders and purchases (customer_id, day), and per campaign (response event, window
    days) -> RESULT_COLUMNS, one row per campaign version whose window ended before D.
    Campaigns no longer defined are measured with the default window (repair order, 60 days)."""
    versions = (
        audiences.select("campaign", "version", "customer_id", "holdout", F.col("as_of_date").alias("list_as_of"))
        .join(F.broadcast(_windows(spark, windows)), "campaign", "left")
        .withColumns({"response_event": F.coalesce("response_event", F.lit("repair_order")), "window_days": F.coalesce("window_days", F.lit(60))})
        .withColumn("window_end", F.date_add("list_as_of", F.col("window_days")))
        .filter(F.col("window_end") <= F.lit(as_of))
    )
    events = repair_orders.select("customer_id", "day", F.lit("repair_order").alias("response_event")).unionByName(
        purchases.select("customer_id", "day", F.lit("purchase").alias("response_event"))
    )
    responded = (
        versions.join(events, ["customer_id", "response_event"])
        .filter((F.col("day") >= F.col("list_as_of")) & (F.col("day") < F.col("window_end")))
        .select("campaign", "version", "customer_id").distinct().withColumn("responded", F.lit(True))
    )
    per_group = versions.join(responded, ["campaign", "version", "customer_id"], "left").groupBy(
        "campaign", "version", "list_as_of", "response_event", "window_days", "window_end"
    ).agg(
        F.count(F.when(~F.col("holdout"), 1)).alias("listed"),
        F.count(F.when(~F.col("holdout") & F.col("responded"), 1)).alias("listed_responders"),
        F.count(F.when(F.col("holdout"), 1)).alias("control"),
        F.count(F.when(F.col("holdout") & F.col("responded"), 1)).alias("control_responders"),
    )
    p1, p0 = F.col("listed_rate"), F.col("control_rate")
    low1, high1 = _wilson(p1, F.col("listed"))
    low0, high0 = _wilson(p0, F.col("control"))
    measured = per_group.withColumns({"listed_rate": _rate("listed_responders", "listed"), "control_rate": _rate("control_responders", "control")})
    measured = measured.withColumn("lift", p1 - p0)
    return measured.withColumns({
        # Newcombe's hybrid score interval: the Wilson interval of each rate, combined.
        "lift_ci_low": F.col("lift") - F.sqrt((p1 - low1) ** 2 + (high0 - p0) ** 2),
        "lift_ci_high": F.col("lift") + F.sqrt((high1 - p1) ** 2 + (p0 - low0) ** 2),
        "relative_lift": F.when(p0 > 0, F.col("lift") / p0),
        "as_of_date": F.lit(as_of),
    }).withColumn(
        "significant", (F.col("lift_ci_low") > 0) | (F.col("lift_ci_high") < 0)
    ).select(*RESULT_COLUMNS)


def build_reminder_followthrough(reminders: DataFrame, repair_orders: DataFrame, kinds: list[str], follow_days: int, as_of: dt.date) -> DataFrame:
    """Reminder rows (customer_id, kind, vin, due_date, dealer_code; one per as-of date they
    were listed on) and repair orders (vin, customer_id, day) -> FOLLOW_COLUMNS. A reminder
    counts once per customer, kind, VIN and due date; the owner came when a repair order for
    that VIN (or, without a VIN, of that customer) falls within `follow_days` of the due date."""
    key = F.concat_ws("|", "customer_id", "kind", F.coalesce("vin", F.lit("")), F.col("due_date").cast("string")).alias("_key")
    due = (
        reminders.filter(F.col("kind").isin(*kinds) & (F.date_add("due_date", follow_days) < F.lit(as_of)))
        .groupBy("customer_id", "kind", "vin", "due_date").agg(F.max_by("dealer_code", "as_of_date").alias("dealer_code"))
        .withColumn("_key", key)
    )
    near = (F.col("day") >= F.date_sub("due_date", follow_days)) & (F.col("day") <= F.date_add("due_date", follow_days))
    by_vin = due.filter(F.col("vin").isNotNull()).join(repair_orders.select("vin", "day"), "vin").filter(near)
    by_customer = due.filter(F.col("vin").isNull()).join(repair_orders.select("customer_id", "day"), "customer_id").filter(near)
    came = by_vin.select("_key").unionByName(by_customer.select("_key")).distinct().withColumn("came", F.lit(True))
    return (
        due.join(came, "_key", "left")
        .groupBy("kind", F.coalesce("dealer_code", F.lit("unknown")).alias("dealer_code"), F.trunc("due_date", "month").alias("due_month"))
        .agg(F.count("*").alias("reminded"), F.count(F.when(F.col("came"), 1)).alias("came"))
        .withColumns({"came_share": F.round(F.col("came") / F.col("reminded"), 4), "as_of_date": F.lit(as_of)})
        .select(*FOLLOW_COLUMNS)
    )
