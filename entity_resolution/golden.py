"""Golden customer profiles and customer-vehicle links, from mentions and their customers.

Survivorship picks each attribute's value among the customer's mentions by a chain of rules
set per attribute in `resolution.survivorship` (later rules break earlier rules' ties; the
smallest value breaks any tie left, so the result never depends on row order):

- `valid_first`: a value that passed its check (resident ID check digit) before one that did not;
- `source_priority`: the feed ranked higher in `resolution.source_priority` first;
- `most_frequent`: the value seen in most of the customer's mentions first;
- `most_recent`: the value seen last first.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.config import SURVIVING_ATTRIBUTES, ResolutionConfig

__all__ = ["CUSTOMER_COLUMNS", "VEHICLE_COLUMNS", "build_customer_vehicles", "build_customers"]

CUSTOMER_COLUMNS = (
    "customer_id", "customer_type", "name", "name_pinyin", "gender", "birth_date", "id_number", "id_valid",
    "mobile", "mobiles", "email", "address", "province", "city", "first_seen", "last_seen", "mention_count",
    "record_counts", "dealers",
)
VEHICLE_COLUMNS = ("customer_id", "vin", "role", "from_date", "to_date", "records", "is_current_owner")
# Candidates that are not attributes: each mention's feed and dealer, counted and listed.
_FEED, _DEALER = "_feed", "_dealer"


def _candidates(mentions: DataFrame) -> DataFrame:
    """Long format: one row per (customer, attribute, candidate value) seen in a mention, in
    one pass over the mentions (an array of the candidates, exploded). Besides the surviving
    attributes, every mention gives its feed (`_FEED`, never null: the rows of one mention
    each) and its dealer (`_DEALER`), which the profile counts and lists."""
    def attribute(name: str, value: Column, valid: Column | None = None, extra: Column | None = None) -> Column:
        return F.struct(
            F.lit(name).alias("attribute"),
            value.cast("string").alias("value"),
            (valid if valid is not None else F.lit(True)).alias("valid"),
            (extra if extra is not None else F.lit(None).cast("string")).alias("extra"),
        )

    parts = [
        attribute("name", F.col("name_simplified"), extra=F.col("name_pinyin")),
        attribute("gender", F.col("gender")),
        attribute("birth_date", F.col("birth_date")),
        attribute("id_number", F.coalesce("id_number", "id_unchecked"), valid=F.col("id_number").isNotNull()),
        attribute("mobile", F.col("mobile")),
        attribute("mobile", F.col("mobile_alt")),
        attribute("email", F.col("email")),
        attribute("address", F.col("address")),
        attribute("province", F.col("province")),
        attribute("city", F.col("city")),
        attribute("customer_type", F.col("customer_type")),
        attribute(_FEED, F.col("feed")),
        attribute(_DEALER, F.col("dealer_code")),
    ]
    long = mentions.select("customer_id", "feed", "seen_at", F.explode(F.array(*parts)).alias("_c"))
    return long.select("customer_id", "feed", "seen_at", "_c.*").filter(F.col("value").isNotNull())


# Rules that rank a candidate by its record; the others rank a value by all its records.
_RECORD_RULES = ("valid_first", "source_priority")


def _record_key(rule: str, priority: list[str]) -> Column:
    if rule == "valid_first":
        return F.when(F.col("valid"), 0).otherwise(1)
    if rule == "source_priority":
        rank = F.lit(len(priority))
        for index, feed in reversed(list(enumerate(priority))):
            rank = F.when(F.col("feed") == feed, index).otherwise(rank)
        return rank
    raise ValueError(f"unknown survivorship rule {rule!r}")


def _value_key(rule: str) -> Column:
    if rule == "most_frequent":
        return -F.col("frequency")
    if rule == "most_recent":
        return -F.col("last_seen_value")
    raise ValueError(f"unknown survivorship rule {rule!r}")


def _level_keys(config: ResolutionConfig, key_of: Callable[[str, int], Column | None]) -> list[Column]:
    """One sort key per level of the longest chain: the key (`key_of(rule, level)`, None: 0)
    of the rule the row's attribute has at that level, 0 past the end of its chain."""
    depth = max(len(chain) for chain in config.survivorship.values())
    keys = []
    for level in range(depth):
        key: Column = F.lit(0)
        for attribute_name, chain in config.survivorship.items():
            rule_key = key_of(chain[level], level) if level < len(chain) else None
            if rule_key is not None:
                key = F.when(F.col("attribute") == attribute_name, rule_key).otherwise(key)
        keys.append(key.cast("long").alias(f"_k{level}"))
    return keys


def build_customers(mentions: DataFrame, config: ResolutionConfig) -> DataFrame:
    """Mentions with `customer_id` -> one golden row per customer (see `CUSTOMER_COLUMNS`).

    `mobiles` holds every valid number seen, `mobile` the surviving primary one;
    `record_counts` maps feed -> mentions, `dealers` lists the dealers seen, sorted.

    One pass over the mentions and two aggregations. A value's record rules (valid, source)
    rank its candidates and its value rules (frequency, recency) are the same for all of
    them, so its best candidate is found first; then the values compete on the whole chain
    of keys, the smallest value (and its `extra`) breaking any tie left. The feed and dealer
    candidates give the counts, the dates and the lists in the same aggregations (at 100,000
    customers, separate aggregations and joins read the mentions four times)."""
    priority = config.source_priority
    record_keys = _level_keys(config, lambda rule, _level: _record_key(rule, priority) if rule in _RECORD_RULES else None)
    per_value = (
        _candidates(mentions)
        .groupBy("customer_id", "attribute", "value")
        .agg(
            F.count("*").alias("frequency"),
            F.min("seen_at").alias("first_seen"),
            F.max("seen_at").alias("last_seen"),
            F.min(F.struct(*record_keys, "extra", (~F.col("valid")).alias("_invalid"))).alias("_best"),
        )
        .withColumn("last_seen_value", F.unix_timestamp("last_seen"))
    )
    keys = _level_keys(config, lambda rule, level: F.col(f"_best._k{level}") if rule in _RECORD_RULES else _value_key(rule))
    ranked = per_value.select(
        "customer_id", "attribute", "value", "frequency", "first_seen", "last_seen",
        F.struct(*keys, "value", F.col("_best.extra").alias("extra"), F.col("_best._invalid").alias("_invalid")).alias("_rank"),
    )

    def of(attribute_name: str, value: Column) -> Column:
        return F.when(F.col("attribute") == attribute_name, value)

    survivors = ranked.groupBy("customer_id").agg(
        *[F.min(of(a, F.col("_rank"))).alias(a) for a in SURVIVING_ATTRIBUTES],
        F.min(of(_FEED, F.col("first_seen"))).alias("first_seen"),
        F.max(of(_FEED, F.col("last_seen"))).alias("last_seen"),
        F.sum(of(_FEED, F.col("frequency"))).alias("mention_count"),
        F.map_from_entries(F.array_sort(F.collect_list(of(_FEED, F.struct(F.col("value").alias("feed"), F.col("frequency").alias("n"))))))
        .alias("record_counts"),
        # Distinct already: one row per customer and value (both mobile columns are `mobile`).
        F.array_sort(F.collect_list(of("mobile", F.col("value")))).alias("mobiles"),
        F.array_sort(F.collect_list(of(_DEALER, F.col("value")))).alias("dealers"),
    )
    return survivors.select(
        "customer_id",
        *[F.col(f"{a}.value").alias(a) for a in SURVIVING_ATTRIBUTES if a not in ("customer_type", "birth_date")],
        F.coalesce(F.col("customer_type.value"), F.lit("individual")).alias("customer_type"),
        F.col("birth_date.value").cast("date").alias("birth_date"),
        F.col("name.extra").alias("name_pinyin"),
        (~F.col("id_number._invalid")).alias("id_valid"),
        "first_seen", "last_seen", "mention_count", "record_counts", "mobiles", "dealers",
    ).select(*CUSTOMER_COLUMNS)


def build_customer_vehicles(mentions: DataFrame) -> DataFrame:
    """Mentions with `customer_id` -> (customer, VIN, role owner|contact, from, to, records,
    is_current_owner). A VIN links a customer to a vehicle, not to one person for life:
    the current owner is the owner seen last (a resold car has several owners over time)."""
    links = (
        mentions.filter(F.col("vin").isNotNull())
        .withColumn("role", F.when(F.col("role") == "contact", "contact").otherwise("owner"))
        .groupBy("customer_id", "vin", "role")
        .agg(
            F.to_date(F.min("seen_at")).alias("from_date"),
            F.to_date(F.max("seen_at")).alias("to_date"),
            F.count("*").alias("records"),
        )
    )
    latest = Window.partitionBy("vin").orderBy(F.desc("to_date"), F.desc("from_date"), "customer_id")
    owners = (
        links.filter(F.col("role") == "owner")
        .withColumn("_rank", F.row_number().over(latest))
        .select("customer_id", "vin", "role", (F.col("_rank") == 1).alias("is_current_owner"))
    )
    return (
        links.join(owners, ["customer_id", "vin", "role"], "left")
        .withColumn("is_current_owner", F.coalesce("is_current_owner", F.lit(False)))
        .select(*VEHICLE_COLUMNS)
    )
