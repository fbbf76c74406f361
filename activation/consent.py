"""Consent per customer and channel, from contact preferences keyed by mobile and ID number.

A preference speaks for whoever holds that number or ID: the latest statement per identifier
and channel counts (opt-out wins a tie). If any identifier of a resolved customer has opted
out of a channel, the customer has opted out of it, whatever another record says. Opt-outs
also reach what is probably the same person: a mistyped ID, and the other customers that
resolution may have split the person into.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.activation_config import CHANNELS

__all__ = [
    "CHANNELS", "SHARED_IDENTIFIER_LIMIT", "build_channel_consent", "build_customer_identifiers", "build_reachable", "with_contactable",
]


# An identifier held by more customers than this is a dealer's or a fleet's, not a person's:
# an opt-out does not spread through it to other customers.
SHARED_IDENTIFIER_LIMIT = 3


def build_customer_identifiers(mentions: DataFrame) -> DataFrame:
    """Mentions with `customer_id` (mobile, mobile_alt, id_number, id_unchecked) -> distinct
    (customer_id, kind mobile|id_number, identifier). An ID that fails its check is kept
    too: it is still the person's, only mistyped."""
    kinds = [("mobile", "mobile"), ("mobile", "mobile_alt"), ("id_number", "id_number"), ("id_number", "id_unchecked")]
    parts = [
        mentions.select("customer_id", F.lit(kind).alias("kind"), F.col(column).alias("identifier"))
        for kind, column in kinds
        if column in mentions.columns
    ]
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    return union.filter(F.col("identifier").isNotNull()).distinct()


def _statements(preferences: DataFrame) -> DataFrame:
    """Every identifier on a preference row speaks: its mobile and its ID number each."""
    columns = ["channel", "opt_in", "updated_at", "record_id"]
    by_mobile = preferences.select(F.lit("mobile").alias("kind"), F.col("mobile").alias("identifier"), *columns)
    by_id = preferences.select(F.lit("id_number").alias("kind"), F.col("id_number").alias("identifier"), *columns)
    return by_mobile.unionByName(by_id).filter(F.col("identifier").isNotNull())


def _masked(identifier: Column) -> list[Column]:
    """The 18-character ID with each position in turn replaced by `?`."""
    return [F.concat(F.lit(f"m{i}:"), F.substring(identifier, 1, i), F.lit("?"), F.substring(identifier, i + 2, 18)) for i in range(18)]


def _swapped(identifier: Column) -> list[Column]:
    """The 18-character ID with each pair of neighbours in turn swapped."""
    return [
        F.concat(F.lit("s:"), F.substring(identifier, 1, i), F.substring(identifier, i + 2, 1), F.substring(identifier, i + 1, 1),
                 F.substring(identifier, i + 3, 18))
        for i in range(17)
    ]


def _near_ids(opted_out: DataFrame, identifiers: DataFrame) -> DataFrame:
    """(identifier of an opted-out ID, customer_id) of customers whose record carries that ID
    with one character wrong or two neighbours swapped. Two valid IDs never meet here: the
    check character catches both kinds of typo, so the held ID is always a failing one."""
    stated = opted_out.filter((F.col("kind") == "id_number") & (F.length("identifier") == 18)).select("identifier").distinct()
    held = identifiers.filter((F.col("kind") == "id_number") & (F.length("identifier") == 18))
    # One wrong character: the same masked key. Two swapped: a swap of the held ID is the stated one.
    stated_keys = stated.select("identifier", F.explode(F.array(*_masked(F.col("identifier")), F.concat(F.lit("s:"), "identifier"))).alias("key"))
    held_keys = held.select("customer_id", F.col("identifier").alias("held"),
                            F.explode(F.array(*_masked(F.col("identifier")), *_swapped(F.col("identifier")))).alias("key"))
    return stated_keys.join(held_keys, "key").filter(F.col("held") != F.col("identifier")).select("identifier", "customer_id").distinct()


def build_channel_consent(preferences: DataFrame, identifiers: DataFrame, near_misses: DataFrame | None = None) -> DataFrame:
    """Silver contact preferences (mobile, id_number, channel, opt_in, updated_at, record_id),
    customer identifiers (distinct rows, as `build_customer_identifiers` gives them) and,
    optionally, near-miss customer pairs (customer_id_l, customer_id_r) -> (customer_id,
    channel, opted_out, opted_in).

    The latest statement per identifier and channel counts (opt-out wins a tie). When in
    doubt, suppress: an opt-out reaches every customer holding the identifier, a customer
    holding the stated ID with one typo, and every other fragment of those customers (one
    sharing a mobile or ID with them, or paired with them in the review band). Customers with
    no statement on a channel have no row for it."""
    # The plan reads its parts several times: `current`, `direct`, `reached` and `personal` are
    # each computed once, into executor storage (freed by Spark once nothing refers to them), which
    # also keeps the plans after them small. At 100,000 customers, with the identifiers
    # checkpointed too, the consent step took 20-23 s against 37-39 s (a lazy cache did not help).
    latest = Window.partitionBy("kind", "identifier", "channel").orderBy(F.desc("updated_at"), F.asc("opt_in"), "record_id")
    current = _statements(preferences).withColumn("_rank", F.row_number().over(latest)).filter("_rank = 1").drop("_rank").localCheckpoint()
    direct = current.join(identifiers, ["kind", "identifier"]).select("customer_id", "channel", "opt_in").localCheckpoint()
    outs = current.filter(~F.col("opt_in"))
    typo = _near_ids(outs, identifiers).join(outs.filter(F.col("kind") == "id_number"), "identifier").select("customer_id", "channel")
    reached = direct.filter(~F.col("opt_in")).select("customer_id", "channel").unionByName(typo).distinct().localCheckpoint()
    # Other fragments of the same person: customers sharing a personal identifier with one reached.
    # `identifiers` are distinct, so an identifier's rows are its holders.
    holders = F.count("*").over(Window.partitionBy("kind", "identifier"))
    personal = identifiers.withColumn("_holders", holders).filter(F.col("_holders") <= SHARED_IDENTIFIER_LIMIT).drop("_holders")
    personal = personal.localCheckpoint()
    held = reached.join(personal, "customer_id").select("channel", "kind", "identifier")
    fragments = held.join(personal, ["kind", "identifier"]).select("customer_id", "channel")
    if near_misses is not None:
        pairs = near_misses.select(F.col("customer_id_l").alias("a"), F.col("customer_id_r").alias("b"))
        pairs = pairs.unionByName(pairs.select(F.col("b").alias("a"), F.col("a").alias("b")))
        fragments = fragments.unionByName(
            reached.join(pairs, reached["customer_id"] == pairs["a"]).select(F.col("b").alias("customer_id"), "channel")
        )
    suppressed = reached.unionByName(fragments).distinct().select("customer_id", "channel", F.lit(False).alias("opt_in"))
    return (
        direct.unionByName(suppressed)
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
