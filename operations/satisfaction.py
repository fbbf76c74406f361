"""Satisfaction by dealer and month (CSS: SSI after a sale, CSI after service, complaint
follow-ups) and the call-back list.

A survey's weighted score is the weighted mean of its item scores, with the item weights
of its vehicle's brand and its survey type (`operations.satisfaction.item_weights`, brand
`default` otherwise); a survey without weighted items counts with its overall score. Per
dealer, month and survey type: surveys, the mean overall and weighted score, the mean of
each item, the share "very satisfied" (overall 100) and the five bands of the data
contract, the change on the month before, and the dealer's rank in its region and in the
whole group (1 = best weighted score). Only surveys made before the as-of date D count;
the month of D is marked incomplete.

The call-back list: surveys of the last `callback_days` before D scored below
`callback_below`, of customers who have not opted out of `callback_channel`.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from cdp.operations_config import DEFAULT_BRAND, UNASSIGNED, DealersConfig, SatisfactionConfig

__all__ = [
    "BANDS", "CALLBACK_COLUMNS", "MONTHLY_COLUMNS", "build_callbacks", "build_satisfaction_monthly", "dealer_regions", "scored_surveys",
]

# The data contract's bands of an overall score: (column, lowest, highest).
BANDS = (
    ("band_very_satisfied", 100, 100), ("band_satisfied", 75, 99), ("band_neutral", 50, 74),
    ("band_poor", 25, 49), ("band_very_poor", 0, 24),
)
MONTHLY_COLUMNS = (
    "as_of_date", "month", "dealer_code", "region", "survey_type", "complete", "surveys", "avg_overall", "avg_weighted",
    "item_avgs", "very_satisfied_share", *(b[0] for b in BANDS), "prev_avg_weighted", "change_on_prev_month",
    "region_avg_weighted", "group_avg_weighted", "rank_in_region", "dealers_in_region", "rank_in_group", "dealers_in_group",
)
CALLBACK_COLUMNS = (
    "survey_id", "as_of_date", "customer_id", "dealer_code", "survey_type", "surveyed_at", "overall_score", "weighted_score",
    "lowest_item", "lowest_item_score",
)
_WEIGHTS_SCHEMA = "_weight_brand string, survey_type string, item string, weight double"


def _weights(spark: SparkSession, config: SatisfactionConfig) -> DataFrame:
    rows = [(brand, survey_type, item, float(weight))
            for brand, types in config.item_weights.items() for survey_type, items in types.items() for item, weight in items.items()]
    return spark.createDataFrame(rows, _WEIGHTS_SCHEMA)


def dealer_regions(spark: SparkSession, dealer_codes: DataFrame, dealers: DealersConfig) -> DataFrame:
    """(dealer_code, region) for the distinct dealer codes of `dealer_codes`: a dealer group
    has hundreds of dealers, so the lookup runs on the driver with the configured patterns."""
    codes = sorted(r[0] for r in dealer_codes.select("dealer_code").distinct().collect() if r[0] is not None)
    return spark.createDataFrame([(c, dealers.region_of(c)) for c in codes], "dealer_code string, region string")


def scored_surveys(spark: SparkSession, surveys: DataFrame, brands: DataFrame, config: SatisfactionConfig, as_of: dt.date) -> DataFrame:
    """Silver surveys made before D with an overall score, and (vin, brand) of the vehicles
    -> survey_id, record_id, survey_type, dealer_code, surveyed_at, overall_score,
    `items` (map item -> score), `weighted_score`, `weighted` (whether item weights applied)."""
    known = (
        surveys.filter((F.col("surveyed_at") < F.lit(dt.datetime.combine(as_of, dt.time()))) & F.col("overall_score").isNotNull())
        .withColumn("items", F.from_json("item_scores", "map<string,string>"))
        .withColumn("items", F.map_filter(F.transform_values("items", lambda _, v: v.try_cast("double")), lambda _, v: v.isNotNull()))
        .join(F.broadcast(brands.dropDuplicates(["vin"])), "vin", "left")
    )
    weights = _weights(spark, config)
    configured = weights.select(F.col("_weight_brand").alias("brand"), "survey_type").distinct().withColumn("_own", F.lit(True))
    known = known.join(F.broadcast(configured), ["brand", "survey_type"], "left").withColumn(
        "_weight_brand", F.when(F.col("_own"), F.col("brand")).otherwise(F.lit(DEFAULT_BRAND))
    )
    exploded = known.select("survey_id", "survey_type", "_weight_brand", F.explode("items").alias("item", "score"))
    weighted = (
        exploded.join(F.broadcast(weights), ["_weight_brand", "survey_type", "item"])
        .groupBy("survey_id")
        .agg((F.sum(F.col("weight") * F.col("score")) / F.sum("weight")).alias("_weighted"))
    )
    return known.join(weighted, "survey_id", "left").select(
        "survey_id", "record_id", "survey_type", "dealer_code", "surveyed_at", "overall_score", "items",
        F.round(F.coalesce("_weighted", F.col("overall_score").cast("double")), 2).alias("weighted_score"),
        F.col("_weighted").isNotNull().alias("weighted"),
    )


def build_satisfaction_monthly(scored: DataFrame, regions: DataFrame, as_of: dt.date) -> DataFrame:
    """Scored surveys and (dealer_code, region) -> MONTHLY_COLUMNS, one row per dealer, month
    and survey type. A dealer missing from `regions` is `unassigned`."""
    grain = ["month", "dealer_code", "survey_type"]
    surveys = scored.withColumn("month", F.trunc(F.to_date("surveyed_at"), "month"))
    score = F.col("overall_score")
    bands = [F.sum(F.when(score.between(low, high), 1).otherwise(0)).cast("int").alias(name) for name, low, high in BANDS]
    monthly = surveys.groupBy(*grain).agg(
        F.count("*").cast("int").alias("surveys"),
        F.round(F.avg(score), 2).alias("avg_overall"),
        F.round(F.avg("weighted_score"), 2).alias("avg_weighted"),
        F.round(F.avg(F.when(score == 100, 1.0).otherwise(0.0)), 4).alias("very_satisfied_share"),
        *bands,
    )
    items = (
        surveys.select(*grain, F.explode("items").alias("item", "score"))
        .groupBy(*grain, "item").agg(F.round(F.avg("score"), 2).alias("avg"))
        .groupBy(*grain).agg(F.map_from_entries(F.array_sort(F.collect_list(F.struct("item", "avg")))).alias("item_avgs"))
    )
    monthly = monthly.join(items, grain, "left").join(F.broadcast(regions), "dealer_code", "left")
    monthly = monthly.withColumn("region", F.coalesce("region", F.lit(UNASSIGNED)))
    previous = monthly.select(
        F.add_months("month", 1).alias("month"), "dealer_code", "survey_type", F.col("avg_weighted").alias("prev_avg_weighted")
    )
    monthly = monthly.join(previous, grain, "left")
    # Region and group figures: means over their surveys; ranks over their dealers.
    weighted_sum = F.col("avg_weighted") * F.col("surveys")
    in_region = Window.partitionBy("month", "survey_type", "region")
    in_group = Window.partitionBy("month", "survey_type")
    by_score = [F.col("avg_weighted").desc(), F.col("dealer_code")]
    month_end = F.add_months("month", 1)
    return monthly.withColumns({
        "as_of_date": F.lit(as_of),
        "complete": month_end <= F.lit(as_of),
        "change_on_prev_month": F.round(F.col("avg_weighted") - F.col("prev_avg_weighted"), 2),
        "region_avg_weighted": F.round(F.sum(weighted_sum).over(in_region) / F.sum("surveys").over(in_region), 2),
        "group_avg_weighted": F.round(F.sum(weighted_sum).over(in_group) / F.sum("surveys").over(in_group), 2),
        "rank_in_region": F.rank().over(in_region.orderBy(*by_score)).cast("int"),
        "dealers_in_region": F.count("*").over(in_region).cast("int"),
        "rank_in_group": F.rank().over(in_group.orderBy(*by_score)).cast("int"),
        "dealers_in_group": F.count("*").over(in_group).cast("int"),
    }).select(*MONTHLY_COLUMNS)


def build_callbacks(scored: DataFrame, owners: DataFrame, consent: DataFrame, config: SatisfactionConfig, as_of: dt.date) -> DataFrame:
    """Scored surveys, (record_id, customer_id) of each survey's respondent and gold customer
    consent -> CALLBACK_COLUMNS: recent low scores of customers who may be called. A survey
    whose respondent is not a known customer cannot be called back and is left out."""
    since = dt.datetime.combine(as_of - dt.timedelta(days=config.callback_days), dt.time())
    opted_out = consent.filter((F.col("channel") == config.callback_channel) & F.col("opted_out")).select("customer_id")
    low = scored.filter((F.col("surveyed_at") >= F.lit(since)) & (F.col("overall_score") < config.callback_below))
    lowest = F.array_min(F.transform(F.map_entries("items"), lambda e: F.struct(e["value"].alias("score"), e["key"].alias("item"))))
    return (
        low.join(owners, "record_id")
        .join(opted_out, "customer_id", "left_anti")
        .withColumns({"as_of_date": F.lit(as_of), "lowest_item": lowest["item"], "lowest_item_score": lowest["score"]})
        .select(*CALLBACK_COLUMNS)
    )
