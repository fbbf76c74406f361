"""Service reminders as of a date: first maintenance, periodic maintenance, warranty expiry,
insurance renewal, periodic inspection and birthday, one row per customer, vehicle and kind
with its due date and the basis it was computed on.

Maintenance follows the customer's own rhythm where history allows: their mean interval
between maintenance visits (once `min_visits_for_own_interval` visits exist) and their
kilometres per day from odometer readings (delivery counts as 0 km); otherwise the brand's
schedule. Whichever of the time and distance limits comes first sets the due date.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from cdp.activation_config import RemindersConfig, ServiceRules

__all__ = ["REMINDER_COLUMNS", "REMINDER_KINDS", "build_reminders"]

REMINDER_KINDS = (
    "first_maintenance", "maintenance", "warranty_expiry", "insurance_renewal", "annual_inspection", "birthday",
)
REMINDER_COLUMNS = (
    "reminder_id", "customer_id", "vin", "kind", "due_date", "days_until_due", "basis", "dealer_code",
    "brand", "model", "as_of_date",
)
_MAINTENANCE = ("first_maintenance", "maintenance")
_RULE_FIELDS = tuple(ServiceRules.model_fields)


def _rules_frame(vehicles: DataFrame, config: RemindersConfig) -> DataFrame:
    """Per vehicle, the service rules of its brand (or the defaults) as columns `rule_*`."""
    for field in _RULE_FIELDS:
        value: Column = F.lit(getattr(config.default_rules, field))
        for brand, rules in config.brands.items():
            value = F.when(F.col("brand") == brand, F.lit(getattr(rules, field))).otherwise(value)
        vehicles = vehicles.withColumn(f"rule_{field}", value)
    return vehicles


def _service_history(visits: DataFrame, min_visits: int) -> DataFrame:
    """Per VIN: latest odometer reading, last maintenance, and mean maintenance interval."""
    maintenance = visits.filter(F.col("service_type").isin(*_MAINTENANCE))
    ordered = Window.partitionBy("vin").orderBy("visit_date")
    gaps = maintenance.withColumn("_gap", F.datediff("visit_date", F.lag("visit_date").over(ordered)))
    maintained = gaps.groupBy("vin").agg(
        F.max("visit_date").alias("last_maintenance_date"),
        F.count("*").alias("maintenance_visits"),
        F.avg("_gap").alias("_mean_gap"),
        F.max_by("dealer_code", "visit_date").alias("maintenance_dealer"),
    ).withColumn("own_interval_days", F.when(F.col("maintenance_visits") >= min_visits, F.round("_mean_gap").cast("int")))
    readings = visits.filter(F.col("mileage_km").isNotNull()).groupBy("vin").agg(
        F.max_by(F.struct("mileage_km", "visit_date"), "visit_date").alias("_reading")
    )
    last_dealer = visits.groupBy("vin").agg(F.max_by("dealer_code", "visit_date").alias("service_dealer"))
    return (
        last_dealer.join(maintained.drop("_mean_gap"), "vin", "left")
        .join(readings, "vin", "left")
        .select(
            "*", F.col("_reading.mileage_km").alias("last_mileage_km"), F.col("_reading.visit_date").alias("last_reading_date")
        )
        .drop("_reading")
    )


def _by_distance(since: str, km: Column, km_per_day: Column) -> Column:
    """The date `km` kilometres after `since` at `km_per_day` (null without a usable rate),
    so a far-driving owner is due before the time limit."""
    days = F.ceil(km / km_per_day).cast("int")
    return F.when((km_per_day > 0) & (km >= 0), F.date_add(F.col(since), days))


def _next_anniversary(start: Column, as_of: dt.date) -> Column:
    """The first yearly anniversary of `start` on or after D (29 Feb falls on 28 Feb)."""
    years = F.year(F.lit(as_of)) - F.year(start)
    this_year = F.add_months(start, years * 12)
    return F.when(this_year >= F.lit(as_of), this_year).otherwise(F.add_months(start, (years + 1) * 12))


def _inspection_months(config: RemindersConfig) -> list[int]:
    rules = config.inspection
    months = [12 * y for y in rules.exempt_checks_years]
    months += [12 * y for y in range(rules.yearly_from_years, rules.half_yearly_from_years)]
    months += [12 * rules.half_yearly_from_years + 6 * i for i in range(0, 2 * 30)]
    return sorted(set(months))


def _vehicle_reminders(vehicles: DataFrame, as_of: dt.date, config: RemindersConfig) -> DataFrame:
    d = F.lit(as_of)
    km_text = F.format_number(F.col("km_per_day"), 1)
    first_by_time = F.add_months("delivered_on", F.col("rule_first_maintenance_months"))
    first_by_km = _by_distance("delivered_on", F.col("rule_first_maintenance_km").cast("double"), F.col("km_per_day"))
    interval_days = F.coalesce("own_interval_days", "rule_maintenance_interval_days")
    next_by_time = F.date_add(F.col("last_maintenance_date"), interval_days)
    next_by_km = _by_distance("last_maintenance_date", F.col("rule_maintenance_interval_km").cast("double"), F.col("km_per_day"))
    warranty_by_time = F.add_months("delivered_on", F.col("rule_warranty_years") * 12)
    warranty_by_km = _by_distance("delivered_on", F.col("rule_warranty_km").cast("double"), F.col("km_per_day"))
    inspections = F.array(*[F.add_months("delivered_on", m) for m in _inspection_months(config)])
    first_inspection = F.array_min(F.filter(inspections, lambda day: day >= d))
    interval_basis = F.when(
        F.col("own_interval_days").isNotNull(), F.concat(F.lit("own interval "), F.col("own_interval_days"), F.lit(" days"))
    ).otherwise(F.concat(F.lit("brand interval "), F.col("rule_maintenance_interval_days"), F.lit(" days")))
    rate_basis = F.when(F.col("km_per_day").isNotNull(), F.concat(F.lit(", "), km_text, F.lit(" km/day"))).otherwise(F.lit(""))
    kinds = [
        (
            "first_maintenance",
            F.when(F.col("maintenance_visits").isNull(), F.least(first_by_time, first_by_km)),
            F.concat(
                F.lit("delivered "), F.col("delivered_on").cast("string"), F.lit(", first service at "),
                F.col("rule_first_maintenance_months"), F.lit(" months or "), F.col("rule_first_maintenance_km"), F.lit(" km"),
                rate_basis,
            ),
        ),
        (
            "maintenance",
            F.least(next_by_time, next_by_km),
            F.concat(
                F.lit("last maintenance "), F.col("last_maintenance_date").cast("string"), F.lit(", "), interval_basis,
                F.lit(" or "), F.col("rule_maintenance_interval_km"), F.lit(" km"), rate_basis,
            ),
        ),
        (
            "warranty_expiry",
            F.least(warranty_by_time, warranty_by_km),
            F.concat(
                F.lit("delivered "), F.col("delivered_on").cast("string"), F.lit(", warranty "), F.col("rule_warranty_years"),
                F.lit(" years or "), F.col("rule_warranty_km"), F.lit(" km"), rate_basis,
            ),
        ),
        (
            "insurance_renewal",
            _next_anniversary(F.col("delivered_on"), as_of),
            F.concat(F.lit("yearly from delivery "), F.col("delivered_on").cast("string")),
        ),
        (
            "annual_inspection",
            first_inspection,
            F.concat(F.lit("vehicle age from delivery "), F.col("delivered_on").cast("string")),
        ),
    ]
    rows = F.array(*[F.struct(F.lit(kind).alias("kind"), due.alias("due_date"), basis.alias("basis")) for kind, due, basis in kinds])
    return vehicles.select(
        "customer_id", "vin", "brand", "model", F.coalesce("service_dealer", "selling_dealer").alias("dealer_code"),
        F.explode(rows).alias("r"),
    ).select("customer_id", "vin", "brand", "model", "dealer_code", "r.*")


def build_reminders(
    owners: DataFrame,
    vehicles: DataFrame,
    visits: DataFrame,
    customers: DataFrame,
    home_dealers: DataFrame,
    as_of: dt.date,
    config: RemindersConfig,
) -> DataFrame:
    """Reminders due as of D -> `REMINDER_COLUMNS`. Grain: (customer_id, vin, kind).

    owners: vin, customer_id (owner at D); vehicles: vin, delivered_on, brand, model,
    selling_dealer; visits: vin, visit_date, mileage_km, service_type, dealer_code (before D);
    customers: customer_id, birth_date; home_dealers: customer_id, dealer_code.
    Maintenance overdue by up to `overdue_days` is kept (with negative days_until_due); other
    kinds are kept from D on. Everything is cut at `horizon_days` after D.
    """
    history = _service_history(visits, config.min_visits_for_own_interval)
    fleet = (
        owners.join(vehicles, "vin")
        .join(history, "vin", "left")
        .transform(_rules_frame, config)
        .withColumn(
            "km_per_day",
            F.when(
                F.datediff("last_reading_date", "delivered_on") > 0,
                F.col("last_mileage_km") / F.datediff("last_reading_date", "delivered_on"),
            ),
        )
    )
    vehicle_rows = _vehicle_reminders(fleet, as_of, config)
    birthdays = customers.filter(F.col("birth_date").isNotNull()).join(home_dealers, "customer_id", "left").select(
        "customer_id",
        F.lit(None).cast("string").alias("vin"),
        F.lit(None).cast("string").alias("brand"),
        F.lit(None).cast("string").alias("model"),
        "dealer_code",
        F.lit("birthday").alias("kind"),
        _next_anniversary(F.col("birth_date"), as_of).alias("due_date"),
        F.lit("birthday").alias("basis"),
    )
    d = F.lit(as_of)
    earliest = F.when(F.col("kind").isin(*_MAINTENANCE), F.date_sub(d, config.overdue_days)).otherwise(d)
    return (
        vehicle_rows.unionByName(birthdays)
        .filter(F.col("due_date").isNotNull() & (F.col("due_date") >= earliest) & (F.col("due_date") < F.date_add(d, config.horizon_days)))
        .withColumn("days_until_due", F.datediff("due_date", d))
        .withColumn("as_of_date", d)
        .withColumn("reminder_id", F.sha2(F.concat_ws("|", "customer_id", F.coalesce("vin", F.lit("")), "kind"), 256))
        .select(*REMINDER_COLUMNS)
    )
