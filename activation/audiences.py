"""Evaluate a campaign as of a date: who qualifies, who is suppressed and why, the control
group, and the priority among competing campaigns.

Suppressions are applied in a fixed order (`SUPPRESSIONS`); a preview reports for each how
many qualifying customers it removes on its own and how many it removes after the ones
before it. The control group is a stable hash of campaign and customer, so a customer stays
in (or out of) a campaign's control group from one build to the next.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from activation.campaign_sql import SPARK, SUPPRESSIONS, campaign_query, summary_query
from activation.campaigns import CampaignBook
from activation.consent import CHANNELS

__all__ = [
    "AUDIENCE_COLUMNS", "AudienceInputs", "AudiencePreview", "LIST_INPUT_COLUMNS", "SUPPRESSIONS", "build_audience", "evaluate_campaign",
    "preview_from_counts", "summarise_audience",
]
AUDIENCE_COLUMNS = (
    "campaign", "version", "customer_id", "reason", "channel", "dealer_code", "due_date", "holdout", "built_at",
    "definition_hash", "as_of_date",
)
# What `build_audience` and `summarise_audience` read of an evaluated campaign: a build keeps
# these, not every feature, while it writes the list and counts it.
LIST_INPUT_COLUMNS = ("customer_id", "eligible", "reason", "dealer_code", "due_date", "mobile", "email", *SUPPRESSIONS, "member", "holdout")


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


def _register(spark: SparkSession, frames: dict[str, DataFrame]) -> dict[str, str]:
    """Each input as a uniquely named temporary view; returns input name -> view name."""
    prefix = f"_audience_{uuid.uuid4().hex[:12]}_"
    for name, frame in frames.items():
        frame.createOrReplaceTempView(prefix + name)
    return {name: prefix + name for name in frames}


def evaluate_campaign(inputs: AudienceInputs, book: CampaignBook, name: str) -> DataFrame:
    """Every customer with `eligible`, `reason`, `due_date`, one flag per suppression,
    `member` (eligible and not suppressed) and `holdout`, by the campaign's SQL
    (`activation.campaign_sql`, the same query a preview runs in DuckDB)."""
    spark = inputs.features.sparkSession
    relations = _register(spark, {
        "features": inputs.features,
        "profiles": inputs.profiles.select("customer_id", "mobile", "email"),
        "segments": inputs.segments.select("customer_id", "segment_name"),
        "home_dealers": inputs.home_dealers.select("customer_id", "dealer_code"),
        "owned_models": inputs.owned_models.select("customer_id", "model"),
        "reminders": inputs.reminders.select("customer_id", "kind", "due_date"),
        "consent": inputs.consent.select("customer_id", "channel", "opted_out", "opted_in"),
        "contacts": inputs.contacts.select("campaign", "customer_id", "built_at"),
    })
    query = campaign_query(
        book, name, as_of=inputs.as_of, now=inputs.now, feature_columns=inputs.features.columns,
        require_opt_in=inputs.require_opt_in, dialect=SPARK, relations=relations,
    )
    return spark.sql(query)


def summarise_audience(evaluated: DataFrame, inputs: AudienceInputs, book: CampaignBook, name: str) -> AudiencePreview:
    """Counts of an evaluated campaign, before anything is written: qualifying customers,
    what each suppression removes, members, control group, and how many qualifying
    customers each channel would reach."""
    spark = evaluated.sparkSession
    relations = _register(spark, {"evaluated": evaluated, "consent": inputs.consent})
    row = spark.sql(summary_query(relations["evaluated"], inputs.require_opt_in, SPARK, relations["consent"])).first().asDict()
    return preview_from_counts(row, name, book.get(name).channel)


def preview_from_counts(row: dict[str, object], name: str, channel: str) -> AudiencePreview:
    """An AudiencePreview from the row of `summary_query`, whichever engine ran it."""
    def value(key: str) -> int:
        return int(row[key] or 0)  # type: ignore[call-overload]

    return AudiencePreview(
        campaign=name,
        channel=channel,
        qualifying=value("qualifying"),
        suppressed_alone={flag: value(f"alone_{flag}") for flag in SUPPRESSIONS},
        suppressed_in_order={flag: value(f"order_{flag}") for flag in SUPPRESSIONS},
        members=value("members"),
        holdout=value("holdout"),
        reachable_by_channel={c: value(f"reach_{c}") for c in CHANNELS},
    )


def build_audience(
    evaluated: DataFrame, book: CampaignBook, name: str, version: int, definition_hash: str, now: dt.datetime, as_of: dt.date
) -> DataFrame:
    """An evaluated campaign (or its members alone) -> its list (members, control group
    flagged) as `AUDIENCE_COLUMNS`, built at `now` for `as_of`. Grain: customer_id."""
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
            F.lit(now).cast("timestamp").alias("built_at"),
            F.lit(definition_hash).alias("definition_hash"),
            F.lit(as_of).alias("as_of_date"),
        )
    )
