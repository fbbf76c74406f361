"""Consent per customer and channel, from contact preferences keyed by mobile or ID number.

A preference speaks for whoever holds that number or ID: the latest statement per identifier
and channel counts (opt-out wins a tie). If any identifier of a resolved customer has opted
out of a channel, the customer has opted out of it, whatever another record says.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.activation_config import CHANNELS

__all__ = ["CHANNELS", "build_channel_consent", "build_customer_identifiers", "build_reachable", "with_contactable"]


def build_customer_identifiers(mentions: DataFrame) -> DataFrame:
    """Mentions with `customer_id` (mobile, mobile_alt, id_number) -> distinct
    (customer_id, kind mobile|id_number, identifier)."""
    kinds = [("mobile", "mobile"), ("mobile", "mobile_alt"), ("id_number", "id_number")]
    parts = [
        mentions.select("customer_id", F.lit(kind).alias("kind"), F.col(column).alias("identifier"))
        for kind, column in kinds
    ]
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    return union.filter(F.col("identifier").isNotNull()).distinct()


def build_channel_consent(preferences: DataFrame, identifiers: DataFrame) -> DataFrame:
    """Silver contact preferences (mobile, id_number, channel, opt_in, updated_at, record_id)
    and customer identifiers -> (customer_id, channel, opted_out, opted_in). Customers with no
    statement on a channel have no row for it."""
    stated = preferences.select(
        F.when(F.col("mobile").isNotNull(), F.lit("mobile")).otherwise(F.lit("id_number")).alias("kind"),
        F.coalesce("mobile", "id_number").alias("identifier"),
        "channel",
        "opt_in",
        "updated_at",
        "record_id",
    ).filter(F.col("identifier").isNotNull())
    latest = Window.partitionBy("kind", "identifier", "channel").orderBy(F.desc("updated_at"), F.asc("opt_in"), "record_id")
    current = stated.withColumn("_rank", F.row_number().over(latest)).filter("_rank = 1")
    return (
        current.join(identifiers, ["kind", "identifier"])
        .groupBy("customer_id", "channel")
        .agg(F.max(~F.col("opt_in")).alias("opted_out"), F.max(F.col("opt_in")).alias("opted_in"))
    )


def build_reachable(channel: str) -> Column:
    """True when the golden profile has an address for `channel` (WeChat is reached through
    the mobile number it is bound to)."""
    if channel == "email":
        return F.col("email").isNotNull()
    return F.col("mobile").isNotNull()


def with_contactable(df: DataFrame, consent: DataFrame, channel: str, require_opt_in: Sequence[str] = ()) -> DataFrame:
    """Rows with `customer_id` -> the same plus `opted_out` and `contactable` on `channel`:
    not opted out and, where the channel requires it, opted in."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; channels are {list(CHANNELS)}")
    stated = consent.filter(F.col("channel") == channel).select("customer_id", "opted_out", "opted_in")
    joined = df.join(stated, "customer_id", "left")
    opted_out = F.coalesce(F.col("opted_out"), F.lit(False))
    opted_in = F.coalesce(F.col("opted_in"), F.lit(False))
    allowed = ~opted_out & (opted_in if channel in require_opt_in else F.lit(True))
    return joined.withColumn("opted_out", opted_out).withColumn("contactable", allowed).drop("opted_in")
