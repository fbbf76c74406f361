"""The monthly dealer figures (`gold/dealer_kpis_monthly`): owner base and retention, first
visits, owners won back, leads and defeated leads, first-time fix; per dealer and month, with
the same figures rolled up per region and for the whole group.

Months run up to the one holding the day before the as-of date D (`retention.months` of
them); a month's figures are what was known at its end, or at D for a month D cuts short
(`complete` false).

- Owner base at a month's end: every customer with a purchase or a repair order (as its own
  customer) before it, at the dealer of their latest one (the home dealer). Each is a new
  owner (first delivery within `features.lifecycle.new_owner_months`), active, dormant or lost
  by months since their latest visit or delivery, with the features' thresholds. The same
  counts per model of their latest purchased vehicle (`unknown` for service-only owners).
- `new_owners`: customers whose first delivery was that month at that dealer;
  `owners_served`: customers with a repair order at the dealer that month; `first_visits`:
  vehicles whose first repair order after delivery was that month at that dealer.
- `won_back`: customers on the dealer's win-back list (`gold/winback`) who came back with a
  repair order within `won_back_days`, counted in the month they came.
- Leads created that month: won, lost (战败) and the lost reasons.
- First-time fix: repair orders of `repair_types` that month, judged once
  `repeat_repair_days` have passed before D; a repeat is another such order for the same VIN
  within those days.
"""

from __future__ import annotations

import datetime as dt
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.analytics_config import LifecycleConfig
from cdp.operations_config import UNASSIGNED, RetentionConfig

__all__ = ["COUNT_COLUMNS", "KPI_COLUMNS", "MAP_COLUMNS", "build_dealer_kpis", "kpi_months"]

COUNT_COLUMNS = (
    "owners", "owners_new", "owners_active", "owners_dormant", "owners_lost", "new_owners", "owners_served", "first_visits",
    "won_back", "leads", "leads_won", "leads_lost", "repairs", "repairs_judged", "repeat_repairs",
)
MAP_COLUMNS = ("owners_by_model", "lost_by_model", "lost_reasons")
KPI_COLUMNS = (
    "as_of_date", "month", "level", "dealer_code", "region", "complete", *COUNT_COLUMNS, "active_rate", "dormant_rate", "lost_rate",
    "lead_conversion_rate", "defeated_rate", "first_time_fix_rate", *MAP_COLUMNS,
)
_KEYS = ["dealer_code", "month"]


def kpi_months(spark: SparkSession, as_of: dt.date, months: int) -> DataFrame:
    """(month, month_end): the first day of each of the `months` months up to the one holding
    the day before D, and the first day after what the month's figures may see (the next
    month's first day, or D)."""
    last = as_of - dt.timedelta(days=1)
    first = dt.date(last.year, last.month, 1)
    rows = []
    for k in range(months - 1, -1, -1):
        index = first.year * 12 + first.month - 1 - k
        start = dt.date(index // 12, index % 12 + 1, 1)
        following = dt.date((index + 1) // 12, (index + 1) % 12 + 1, 1)
        rows.append((start, min(following, as_of)))
    return spark.createDataFrame(rows, "month date, month_end date")


def _month(day: Column) -> Column:
    return F.trunc(day, "month")


def _owner_base(sales: DataFrame, visits: DataFrame, months: DataFrame, lifecycle: LifecycleConfig) -> DataFrame:
    """Per dealer and month: owners by stage, and per model (maps)."""
    events = sales.select("customer_id", "dealer_code", F.col("delivered_on").alias("day"), "model", F.lit(True).alias("sale")).unionByName(
        visits.select("customer_id", "dealer_code", F.col("visit_date").alias("day"), F.lit(None).cast("string").alias("model"),
                      F.lit(False).alias("sale"))
    ).filter(F.col("dealer_code").isNotNull() & F.col("day").isNotNull())
    known = events.join(F.broadcast(months), events["day"] < months["month_end"])
    state = known.groupBy("customer_id", "month", "month_end").agg(
        F.max("day").alias("last_activity"),
        F.min(F.when(F.col("sale"), F.col("day"))).alias("first_delivery"),
        F.max_by("dealer_code", F.struct("day", "dealer_code")).alias("dealer_code"),
        F.max_by("model", F.when(F.col("sale"), F.struct("day", "model"))).alias("model"),
    )
    idle = F.months_between("month_end", "last_activity")
    stage = (
        F.when(F.col("first_delivery").isNotNull() & (F.months_between("month_end", "first_delivery") < lifecycle.new_owner_months), "new")
        .when(idle >= lifecycle.lost_after_months, "lost")
        .when(idle >= lifecycle.dormant_after_months, "dormant")
        .otherwise("active")
    )
    state = state.withColumns({"stage": stage, "model": F.coalesce("model", F.lit("unknown"))})
    counts = state.groupBy(*_KEYS).agg(
        F.count("*").alias("owners"), *(F.count(F.when(F.col("stage") == s, 1)).alias(f"owners_{s}") for s in ("new", "active", "dormant", "lost"))
    )
    by_model = state.groupBy(*_KEYS, "model").agg(F.count("*").alias("n"), F.count(F.when(F.col("stage") == "lost", 1)).alias("lost"))
    maps = by_model.groupBy(*_KEYS).agg(
        F.map_from_entries(F.array_sort(F.collect_list(F.struct("model", "n")))).alias("owners_by_model"),
        F.map_from_entries(F.array_sort(F.collect_list(F.struct("model", "lost")))).alias("lost_by_model"),
    )
    return counts.join(maps, _KEYS, "left")


def _in_months(df: DataFrame, day: str, months: DataFrame) -> DataFrame:
    """Rows whose `day` falls in one of the months, before its end, with `month`."""
    return df.join(F.broadcast(months), (_month(F.col(day)) == months["month"]) & (F.col(day) < months["month_end"])).drop("month_end")


def _first_visits(sales: DataFrame, service: DataFrame, months: DataFrame) -> DataFrame:
    delivered = sales.filter(F.col("vin").isNotNull()).groupBy("vin").agg(F.min("delivered_on").alias("delivered_on"))
    after = service.join(delivered, "vin").filter(F.col("visit_date") >= F.col("delivered_on"))
    first = after.groupBy("vin").agg(F.min_by("dealer_code", F.struct("visit_date", "dealer_code")).alias("dealer_code"),
                                     F.min("visit_date").alias("visit_date"))
    return _in_months(first, "visit_date", months).groupBy(*_KEYS).agg(F.count("*").alias("first_visits"))


def _won_back(winback: DataFrame, visits: DataFrame, months: DataFrame, days: int) -> DataFrame:
    listed = winback.select("customer_id", F.col("dealer_code").alias("list_dealer"), F.col("as_of_date").alias("listed_on"))
    came = listed.join(visits.select("customer_id", "visit_date"), "customer_id").filter(
        (F.col("visit_date") >= F.col("listed_on")) & (F.col("visit_date") < F.date_add("listed_on", days))
    )
    first = came.groupBy("customer_id", "list_dealer", "listed_on").agg(F.min("visit_date").alias("visit_date"))
    return (
        _in_months(first.withColumnRenamed("list_dealer", "dealer_code"), "visit_date", months)
        .groupBy(*_KEYS).agg(F.countDistinct("customer_id").alias("won_back"))
    )


def _leads(leads: DataFrame, months: DataFrame) -> DataFrame:
    created = _in_months(leads.withColumn("created_on", F.to_date("created_at")), "created_on", months)
    figures = created.groupBy(*_KEYS).agg(
        F.count("*").alias("leads"), F.count(F.when(F.col("status") == "won", 1)).alias("leads_won"),
        F.count(F.when(F.col("status") == "lost", 1)).alias("leads_lost"),
    )
    reasons = (
        created.filter(F.col("status") == "lost")
        .withColumn("reason", F.coalesce(F.nullif(F.trim("lost_reason"), F.lit("")), F.lit("unknown")))
        .groupBy(*_KEYS, "reason").agg(F.count("*").alias("n"))
        .groupBy(*_KEYS).agg(F.map_from_entries(F.array_sort(F.collect_list(F.struct("reason", "n")))).alias("lost_reasons"))
    )
    return figures.join(reasons, _KEYS, "left")


def _first_time_fix(service: DataFrame, months: DataFrame, as_of: dt.date, config: RetentionConfig) -> DataFrame:
    repairs = service.filter(F.col("service_type").isin(*config.repair_types) & F.col("vin").isNotNull()).select(
        "ro_id", "vin", "dealer_code", "opened_at", F.to_date("opened_at").alias("visit_date")
    )
    later = repairs.select("vin", F.col("opened_at").alias("_again"))
    window_end = F.col("opened_at") + F.make_interval(days=F.lit(config.repeat_repair_days))
    repeated = (
        repairs.join(later, "vin").filter((F.col("_again") > F.col("opened_at")) & (F.col("_again") <= window_end))
        .select("ro_id").distinct().withColumn("repeated", F.lit(True))
    )
    judged = window_end < F.lit(dt.datetime.combine(as_of, dt.time()))
    return (
        _in_months(repairs.join(repeated, "ro_id", "left"), "visit_date", months)
        .groupBy(*_KEYS).agg(
            F.count("*").alias("repairs"), F.count(F.when(judged, 1)).alias("repairs_judged"),
            F.count(F.when(judged & F.col("repeated"), 1)).alias("repeat_repairs"),
        )
    )


def _rate(part: str, whole: str) -> Column:
    return F.when(F.col(whole) > 0, F.round(F.col(part) / F.col(whole), 4))


def _with_rates(df: DataFrame) -> DataFrame:
    return df.withColumns({
        "active_rate": _rate("owners_active", "owners"), "dormant_rate": _rate("owners_dormant", "owners"),
        "lost_rate": _rate("owners_lost", "owners"), "lead_conversion_rate": _rate("leads_won", "leads"),
        "defeated_rate": _rate("leads_lost", "leads"),
        "first_time_fix_rate": F.when(F.col("repairs_judged") > 0, F.round(1 - F.col("repeat_repairs") / F.col("repairs_judged"), 4)),
    })


def _merged_map(column: str) -> Column:
    """Sum of the maps of a group's rows, key by key (an aggregate)."""
    entries = F.flatten(F.collect_list(F.map_entries(F.coalesce(F.col(column), F.create_map().cast("map<string,bigint>")))))
    keys = F.array_sort(F.array_distinct(F.transform(entries, lambda e: e["key"])))
    return F.map_from_arrays(
        keys, F.transform(keys, lambda k: F.aggregate(F.filter(entries, lambda e: e["key"] == k), F.lit(0).cast("bigint"),
                                                       lambda acc, e: acc + e["value"]))
    ).alias(column)


def _rolled_up(dealers: DataFrame, level: str, by: Column) -> DataFrame:
    return (
        dealers.groupBy(by.alias("dealer_code"), "month", "complete")
        .agg(*(F.sum(c).alias(c) for c in COUNT_COLUMNS), *(_merged_map(c) for c in MAP_COLUMNS))
        .withColumns({"level": F.lit(level), "region": F.col("dealer_code") if level == "region" else F.lit(None).cast("string")})
    )


def build_dealer_kpis(
    spark: SparkSession, sources: dict[str, DataFrame], regions: DataFrame, as_of: dt.date, lifecycle: LifecycleConfig, config: RetentionConfig,
) -> DataFrame:
    """`sources`: `sales` (customer_id, dealer_code, vin, model, delivered_on) and `visits`
    (customer_id, dealer_code, visit_date) of the customers' own records; `service` (silver
    repair orders), `leads` (silver leads) and `winback` (gold/winback rows). Everything
    before D. `regions`: (dealer_code, region). -> KPI_COLUMNS; grain (level, dealer_code, month)."""
    months = kpi_months(spark, as_of, config.months)
    cutoff = F.lit(dt.datetime.combine(as_of, dt.time()))
    service = sources["service"].filter(F.col("opened_at") < cutoff).withColumn("visit_date", F.to_date("opened_at"))
    sales, visits = sources["sales"].filter(F.col("delivered_on") < F.lit(as_of)), sources["visits"].filter(F.col("visit_date") < F.lit(as_of))
    winback = sources["winback"].filter(F.col("as_of_date") < F.lit(as_of))
    parts = [
        _owner_base(sales, visits, months, lifecycle),
        _in_months(sales.groupBy("customer_id").agg(F.min_by("dealer_code", F.struct("delivered_on", "dealer_code")).alias("dealer_code"),
                                                    F.min("delivered_on").alias("delivered_on")), "delivered_on", months)
        .groupBy(*_KEYS).agg(F.count("*").alias("new_owners")),
        _in_months(visits, "visit_date", months).groupBy(*_KEYS).agg(F.countDistinct("customer_id").alias("owners_served")),
        _first_visits(sales, service, months),
        _won_back(winback, visits, months, config.won_back_days),
        _leads(sources["leads"].filter(F.col("created_at") < cutoff), months),
        _first_time_fix(service, months, as_of, config),
    ]
    keys = reduce(DataFrame.unionByName, [p.select(*_KEYS) for p in parts]).distinct().filter(F.col("dealer_code").isNotNull())
    dealers = reduce(lambda acc, p: acc.join(p, _KEYS, "left"), parts, keys)
    dealers = (
        dealers.fillna(0, subset=list(COUNT_COLUMNS))
        .join(F.broadcast(regions), "dealer_code", "left")
        .join(F.broadcast(months), "month")
        .withColumns({"region": F.coalesce("region", F.lit(UNASSIGNED)), "complete": F.col("month_end") >= F.add_months("month", 1),
                      "level": F.lit("dealer")})
    )
    for column in MAP_COLUMNS:
        dealers = dealers.withColumn(column, F.col(column).cast("map<string,bigint>"))
    rows = dealers.unionByName(_rolled_up(dealers, "region", F.col("region")), allowMissingColumns=True).unionByName(
        _rolled_up(dealers, "group", F.lit("group")), allowMissingColumns=True
    )
    return _with_rates(rows.withColumn("as_of_date", F.lit(as_of))).select(*KPI_COLUMNS)
