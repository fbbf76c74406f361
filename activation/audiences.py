"""Evaluate a campaign as of a date: who qualifies, who is suppressed and why, the control
group, and the priority among competing campaigns.

Suppressions are applied in a fixed order (`SUPPRESSIONS`); a preview reports for each how
many qualifying customers it removes on its own and how many it removes after the ones
before it. The control group is a stable hash of campaign and customer, so a customer stays
in (or out of) a campaign's control group from one build to the next.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from activation.campaigns import Campaign, CampaignBook, CampaignError, Condition, DueRule, competitors_before
from activation.consent import CHANNELS, build_reachable, with_contactable

__all__ = ["AUDIENCE_COLUMNS", "AudienceInputs", "AudiencePreview", "SUPPRESSIONS", "build_audience", "evaluate_campaign", "summarise_audience"]

SUPPRESSIONS = ("opted_out", "unreachable", "open_complaint", "recently_contacted", "claimed_by_priority")
AUDIENCE_COLUMNS = (
    "campaign", "version", "customer_id", "reason", "channel", "dealer_code", "due_date", "holdout", "built_at",
    "definition_hash", "as_of_date",
)
_HOLDOUT_BUCKETS = 10_000


@dataclass(frozen=True)
class AudienceInputs:
    """What campaigns are evaluated on, all as of one date.

    features: gold/customer_features of D; profiles: golden customers (customer_id, mobile,
    email); segments: customer_id, segment_name (may be empty); home_dealers: customer_id,
    dealer_code; owned_models: customer_id, model; reminders: customer_id, kind, due_date;
    consent: customer_id, channel, opted_out, opted_in; contacts: campaign, customer_id,
    built_at of earlier lists (control groups excluded).
    """

    features: DataFrame
    profiles: DataFrame
    segments: DataFrame
    home_dealers: DataFrame
    owned_models: DataFrame
    reminders: DataFrame
    consent: DataFrame
    contacts: DataFrame
    as_of: dt.date
    now: dt.datetime
    require_opt_in: tuple[str, ...] = ()


@dataclass
class AudiencePreview:
    campaign: str
    channel: str
    qualifying: int
    suppressed_alone: dict[str, int]
    suppressed_in_order: dict[str, int]
    members: int
    holdout: int
    reachable_by_channel: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def listed(self) -> int:
        return self.members - self.holdout


def _condition(c: Condition) -> Column:
    column = F.col(c.feature)
    value = c.value
    tests = {
        "==": lambda: column == F.lit(value),
        "!=": lambda: column != F.lit(value),
        "<": lambda: column < F.lit(value),
        "<=": lambda: column <= F.lit(value),
        ">": lambda: column > F.lit(value),
        ">=": lambda: column >= F.lit(value),
        "in": lambda: column.isin(*value),  # type: ignore[misc]
        "not_in": lambda: ~column.isin(*value),  # type: ignore[misc]
        "is_null": lambda: column.isNull(),
        "not_null": lambda: column.isNotNull(),
    }
    return F.coalesce(tests[c.op](), F.lit(False))


def _condition_text(c: Condition) -> str:
    if c.op in ("is_null", "not_null"):
        return f"{c.feature} {c.op.replace('_', ' ')}"
    value = ",".join(map(str, c.value)) if isinstance(c.value, list) else c.value
    return f"{c.feature} {c.op} {value}"


def _due_window(rule: DueRule, as_of: dt.date) -> tuple[Column, Column]:
    d = F.lit(as_of)
    if rule.within_days is not None:
        return d, F.date_add(d, rule.within_days)
    this_month = F.trunc(d, "month")
    if rule.month == "this":
        return d, F.add_months(this_month, 1)
    return F.add_months(this_month, 1), F.add_months(this_month, 2)


def _base(inputs: AudienceInputs) -> DataFrame:
    profiles = inputs.profiles.select("customer_id", "mobile", "email")
    segments = inputs.segments.select("customer_id", "segment_name")
    return (
        inputs.features.join(profiles, "customer_id", "left")
        .join(segments, "customer_id", "left")
        .join(inputs.home_dealers.select("customer_id", "dealer_code"), "customer_id", "left")
    )


def _validate_rules(campaign: Campaign, name: str, columns: list[str]) -> None:
    for i, condition in enumerate(campaign.audience.where):
        if condition.feature not in columns:
            raise CampaignError(f"campaigns.{name}.audience.where.{i}.feature: unknown feature {condition.feature!r}")


def _with_rules(base: DataFrame, campaign: Campaign, name: str, inputs: AudienceInputs) -> DataFrame:
    """Add `eligible`, `reason` and `due_date`."""
    rules = campaign.audience
    _validate_rules(campaign, name, base.columns)
    tests: list[tuple[Column, Column]] = []

    def listed(column: str, values: list[str], label: str) -> None:
        if values:
            tests.append((F.coalesce(F.col(column).isin(*values), F.lit(False)), F.concat(F.lit(f"{label} "), F.col(column))))

    df = base
    if rules.due is not None:
        start, end = _due_window(rules.due, inputs.as_of)
        due = (
            inputs.reminders.filter((F.col("kind") == rules.due.kind) & (F.col("due_date") >= start) & (F.col("due_date") < end))
            .groupBy("customer_id")
            .agg(F.min("due_date").alias("due_date"))
        )
        df = df.join(due, "customer_id", "left")
        tests.append((F.col("due_date").isNotNull(), F.concat(F.lit(f"{rules.due.kind.replace('_', ' ')} due "), F.col("due_date").cast("string"))))
    else:
        df = df.withColumn("due_date", F.lit(None).cast("date"))
    listed("lifecycle_stage", rules.lifecycle_stage, "lifecycle")
    listed("segment_name", rules.segment, "segment")
    listed("city", rules.city, "city")
    listed("province", rules.province, "province")
    listed("dealer_code", rules.dealer, "dealer")
    if rules.vehicle_model:
        owners = inputs.owned_models.filter(F.col("model").isin(*rules.vehicle_model)).groupBy("customer_id").agg(
            F.concat_ws(",", F.array_sort(F.collect_set("model"))).alias("_models")
        )
        df = df.join(owners, "customer_id", "left")
        tests.append((F.col("_models").isNotNull(), F.concat(F.lit("owns "), F.col("_models"))))
    for condition in rules.where:
        tests.append((_condition(condition), F.lit(_condition_text(condition))))
    if not tests:
        return df.withColumn("eligible", F.lit(True)).withColumn("reason", F.lit("all customers"))
    eligible = reduce(lambda a, b: a & b, [test for test, _ in tests])
    reason = F.concat_ws("; ", *[F.when(test, text) for test, text in tests])
    return df.withColumn("eligible", eligible).withColumn("reason", reason)


def _evaluate(inputs: AudienceInputs, book: CampaignBook, name: str, claimed: DataFrame | None) -> DataFrame:
    campaign = book.get(name)
    df = _with_rules(_base(inputs), campaign, name, inputs)
    df = with_contactable(df, inputs.consent, campaign.channel, inputs.require_opt_in)
    df = df.withColumn("opted_out", ~F.col("contactable")).withColumn("unreachable", ~build_reachable(campaign.channel))
    df = df.withColumn(
        "open_complaint", F.lit(campaign.suppress.open_complaint) & (F.coalesce(F.col("complaints_open"), F.lit(0)) > 0)
    )
    if campaign.suppress.contacted_within_days:
        since = F.lit(inputs.now - dt.timedelta(days=campaign.suppress.contacted_within_days))
        contacted = (
            inputs.contacts.filter((F.col("campaign") != name) & (F.col("built_at") >= since))
            .select("customer_id").distinct().withColumn("recently_contacted", F.lit(True))
        )
        df = df.join(contacted, "customer_id", "left")
    else:
        df = df.withColumn("recently_contacted", F.lit(None).cast("boolean"))
    if claimed is not None:
        df = df.join(claimed.select("customer_id").distinct().withColumn("claimed_by_priority", F.lit(True)), "customer_id", "left")
    else:
        df = df.withColumn("claimed_by_priority", F.lit(None).cast("boolean"))
    for flag in SUPPRESSIONS:
        df = df.withColumn(flag, F.coalesce(F.col(flag), F.lit(False)))
    bucket = F.pmod(F.xxhash64(F.lit(name), F.col("customer_id")), F.lit(_HOLDOUT_BUCKETS))
    holdout = bucket < F.lit(int(round(campaign.holdout_percent * _HOLDOUT_BUCKETS / 100)))
    member = F.col("eligible") & ~reduce(lambda a, b: a | b, [F.col(flag) for flag in SUPPRESSIONS])
    return df.withColumn("member", member).withColumn("holdout", holdout)


def evaluate_campaign(inputs: AudienceInputs, book: CampaignBook, name: str) -> DataFrame:
    """Every customer with `eligible`, `reason`, `due_date`, one flag per suppression,
    `member` (eligible and not suppressed) and `holdout`. Competing campaigns of higher
    priority are evaluated first and claim their members (control groups included, so a
    control group stays untouched)."""
    claimed: DataFrame | None = None
    for rival in competitors_before(book, name):
        members = _evaluate(inputs, book, rival, claimed).filter("member").select("customer_id")
        claimed = members if claimed is None else claimed.unionByName(members)
    return _evaluate(inputs, book, name, claimed)


def summarise_audience(evaluated: DataFrame, inputs: AudienceInputs, book: CampaignBook, name: str) -> AudiencePreview:
    """Counts of an evaluated campaign, before anything is written: qualifying customers,
    what each suppression removes, members, control group, and how many qualifying
    customers each channel would reach."""
    evaluated = evaluated.filter("eligible").cache()
    try:
        aggregates = [F.count("*").alias("qualifying")]
        earlier: Column = F.lit(False)
        for flag in SUPPRESSIONS:
            aggregates.append(F.sum(F.col(flag).cast("int")).alias(f"alone_{flag}"))
            aggregates.append(F.sum((F.col(flag) & ~earlier).cast("int")).alias(f"order_{flag}"))
            earlier = earlier | F.col(flag)
        aggregates += [F.sum(F.col("member").cast("int")).alias("members"), F.sum((F.col("member") & F.col("holdout")).cast("int")).alias("holdout")]
        row = evaluated.agg(*aggregates).first().asDict()
        reach = {}
        for channel in CHANNELS:
            reachable = with_contactable(evaluated.select("customer_id", "mobile", "email"), inputs.consent, channel, inputs.require_opt_in)
            reach[channel] = reachable.filter(F.col("contactable") & build_reachable(channel)).count()
    finally:
        evaluated.unpersist()
    def value(key: str) -> int:
        return int(row[key] or 0)

    return AudiencePreview(
        campaign=name,
        channel=book.get(name).channel,
        qualifying=value("qualifying"),
        suppressed_alone={flag: value(f"alone_{flag}") for flag in SUPPRESSIONS},
        suppressed_in_order={flag: value(f"order_{flag}") for flag in SUPPRESSIONS},
        members=value("members"),
        holdout=value("holdout"),
        reachable_by_channel=reach,
    )


def build_audience(
    evaluated: DataFrame, inputs: AudienceInputs, book: CampaignBook, name: str, version: int, definition_hash: str
) -> DataFrame:
    """An evaluated campaign -> its list (members, control group flagged) as
    `AUDIENCE_COLUMNS`. Grain: customer_id."""
    campaign = book.get(name)
    return (
        evaluated.filter("member")
        .select(
            F.lit(name).alias("campaign"),
            F.lit(version).alias("version"),
            "customer_id",
            "reason",
            F.lit(campaign.channel).alias("channel"),
            "dealer_code",
            "due_date",
            "holdout",
            F.lit(inputs.now).cast("timestamp").alias("built_at"),
            F.lit(definition_hash).alias("definition_hash"),
            F.lit(inputs.as_of).alias("as_of_date"),
        )
    )
