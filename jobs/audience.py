"""`cdp audience`: campaigns from `conf/campaigns.yaml` into versioned lists.

    cdp audience list
    cdp audience preview NAME [--as-of DATE]
    cdp audience build NAME [NAME ...] | --all [--as-of DATE]
    cdp audience versions NAME
    cdp audience export NAME [--version N] --format csv|parquet --out PATH [--privileged --purpose TEXT]

A build writes gold/audiences (campaign, version, customer, reason, channel, holdout flag,
built at, definition hash) and a row in gold/audience_versions with the definition and its
counts. Building again with the same definition and as-of date rebuilds that version in
place; a changed definition or date makes a new version.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from activation.audiences import AudienceInputs, AudiencePreview, build_audience, evaluate_campaign, summarise_audience
from activation.campaigns import CampaignBook, CampaignError, definition_hash
from activation.exports import ExportError, ExportRequest
from cdp.config import AppConfig, load_yaml_model
from cdp.lake import Lake, merge_into, read_table, remove_path, table_exists
from jobs.activation_common import (
    ActivationError,
    add_export_options,
    export_list,
    features_of,
    home_dealers,
    lake_of,
    load_consent,
    mentions_with_customers,
    owned_vehicles,
    table_or_empty,
)

__all__ = ["BuildReport", "audience_inputs", "build", "export", "load_campaigns", "main", "preview"]

log = logging.getLogger(__name__)

_VERSION_SCHEMA = (
    "campaign string, version int, definition_hash string, definition string, as_of_date date, built_at timestamp, "
    "qualifying bigint, members bigint, listed bigint, holdout bigint, suppressed map<string,bigint>"
)


@dataclass
class BuildReport:
    campaign: str
    version: int
    rebuilt: bool
    preview: AudiencePreview
    seconds: float


def load_campaigns(config: AppConfig) -> CampaignBook:
    """The campaigns file beside the profile; none defined when it does not exist."""
    path = config.conf_path(config.activation.campaigns_file)
    if not Path(path).exists():
        log.warning("no campaigns file at %s: no campaigns defined", path)
        return CampaignBook()
    return load_yaml_model(path, CampaignBook)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


def _contacts(spark: SparkSession, lake: Lake) -> DataFrame:
    audiences = table_or_empty(
        spark, lake.table("gold", "audiences"), "campaign string, customer_id string, built_at timestamp, holdout boolean"
    )
    return audiences.filter(~F.col("holdout")).select("campaign", "customer_id", "built_at")


def audience_inputs(
    spark: SparkSession, config: AppConfig, as_of: dt.date | None, now: dt.datetime, *, cache: bool = False
) -> AudienceInputs:
    """The inputs of every campaign as of a date. With `cache`, the ones that do not change
    while lists are built are kept by Spark, for building several campaigns in one run."""
    lake = lake_of(config)
    features, as_of = features_of(spark, lake, as_of)
    mentions = mentions_with_customers(spark, lake)
    owners, vehicles = owned_vehicles(spark, lake, mentions, as_of)
    segments = table_or_empty(spark, lake.table("gold", "customer_segments"), "customer_id string, segment_name string, as_of_date date")
    reminders = table_or_empty(spark, lake.table("gold", "reminders"), "customer_id string, kind string, due_date date, as_of_date date")
    kept = {
        "features": features,
        "profiles": read_table(spark, lake.table("gold", "customers")),
        "segments": segments.filter(F.col("as_of_date") == F.lit(as_of)),
        "home_dealers": home_dealers(spark, lake, as_of),
        "owned_models": owners.join(vehicles, "vin").select("customer_id", "model"),
        "reminders": reminders.filter(F.col("as_of_date") == F.lit(as_of)),
        "consent": load_consent(spark, lake, mentions),
    }
    if cache:
        kept = {name: df.persist() for name, df in kept.items()}
    return AudienceInputs(
        **kept,
        contacts=_contacts(spark, lake),
        as_of=as_of,
        now=now,
        require_opt_in=tuple(config.activation.consent.require_opt_in),
    )


def _warnings(inputs: AudienceInputs, book: CampaignBook, name: str) -> list[str]:
    campaign = book.get(name)
    notes = []
    if campaign.audience.segment:
        known = {r[0] for r in inputs.segments.select("segment_name").distinct().collect()}
        unknown = sorted(set(campaign.audience.segment) - known)
        if unknown:
            notes.append(f"segment(s) {unknown} not scored as of {inputs.as_of}; scored: {sorted(known) or 'none'}")
    if campaign.audience.due is not None and inputs.reminders.limit(1).count() == 0:
        notes.append(f"no reminders as of {inputs.as_of}: run `cdp run reminders --as-of {inputs.as_of}` first")
    return notes


def preview(spark: SparkSession, config: AppConfig, name: str, as_of: dt.date | None = None, now: dt.datetime | None = None) -> AudiencePreview:
    book = load_campaigns(config)
    book.get(name)
    inputs = audience_inputs(spark, config, as_of, now or _now())
    summary = summarise_audience(evaluate_campaign(inputs, book, name), inputs, book, name)
    summary.warnings = _warnings(inputs, book, name)
    return summary


def _next_version(spark: SparkSession, path: str, name: str, digest: str, as_of: dt.date) -> tuple[int, bool]:
    if not table_exists(spark, path):
        return 1, False
    versions = read_table(spark, path).filter(F.col("campaign") == name).orderBy(F.desc("version")).limit(1).collect()
    if not versions:
        return 1, False
    latest = versions[0]
    if latest["definition_hash"] == digest and latest["as_of_date"] == as_of:
        return int(latest["version"]), True
    return int(latest["version"]) + 1, False


def build(
    spark: SparkSession,
    config: AppConfig,
    name: str,
    as_of: dt.date | None = None,
    now: dt.datetime | None = None,
    shared: AudienceInputs | None = None,
) -> BuildReport:
    """Evaluate the campaign and write its list as a new version (or rebuild the same one).
    `shared` inputs (from `audience_inputs(..., cache=True)`) are reused, with the lists
    written so far read afresh."""
    started = time.perf_counter()
    book = load_campaigns(config)
    book.get(name)
    lake = lake_of(config)
    if shared is None:
        inputs = audience_inputs(spark, config, as_of, now or _now())
    else:
        inputs = dataclasses.replace(shared, contacts=_contacts(spark, lake))
    digest = definition_hash(book, name)
    versions_path = lake.table("gold", "audience_versions")
    version, rebuilt = _next_version(spark, versions_path, name, digest, inputs.as_of)
    # Evaluated once for both the list and its counts.
    evaluated = evaluate_campaign(inputs, book, name).cache()
    staging = lake.table("_work", f"audience_{name}")
    build_audience(evaluated, inputs, book, name, version, digest).write.mode("overwrite").parquet(staging)
    rows = spark.read.parquet(staging)
    summary = summarise_audience(evaluated, inputs, book, name)
    evaluated.unpersist()
    summary.warnings = _warnings(inputs, book, name)
    path = lake.table("gold", "audiences")
    writer = rows.write.format("delta").partitionBy("campaign")
    if table_exists(spark, path):
        writer.mode("overwrite").option("replaceWhere", f"campaign = '{name}' AND version = {version}").save(path)
    else:
        writer.mode("errorifexists").save(path)
    definition = json.dumps(book.get(name).model_dump(mode="json"), ensure_ascii=False, sort_keys=True)
    record = (
        name, version, digest, definition, inputs.as_of, inputs.now, summary.qualifying, summary.members, summary.listed,
        summary.holdout, summary.suppressed_in_order,
    )
    merge_into(spark, spark.createDataFrame([record], _VERSION_SCHEMA), versions_path, ["campaign", "version"])
    remove_path(spark, staging)
    return BuildReport(name, version, rebuilt, summary, time.perf_counter() - started)


def _audience_rows(spark: SparkSession, config: AppConfig, name: str, version: int | None) -> tuple[DataFrame, int, dt.date]:
    lake = lake_of(config)
    path = lake.table("gold", "audiences")
    if not table_exists(spark, path):
        raise ActivationError(f"no audiences built yet: run `cdp audience build {name}` first")
    lists = read_table(spark, path).filter(F.col("campaign") == name)
    if version is None:
        version = lists.agg(F.max("version")).first()[0]
        if version is None:
            raise ActivationError(f"campaign {name} has no list yet: run `cdp audience build {name}` first")
    rows = lists.filter(F.col("version") == version)
    first = rows.select("as_of_date").limit(1).collect()
    if not first:
        raise ActivationError(f"campaign {name} has no version {version} (or it is empty)")
    as_of = first[0][0]
    features = read_table(spark, lake.table("gold", "customer_features")).filter(F.col("as_of_date") == F.lit(as_of)).select(
        "customer_id", "gender", "city", "province", "lifecycle_stage", F.col("newest_vehicle_model").alias("vehicle_model")
    )
    segments = table_or_empty(spark, lake.table("gold", "customer_segments"), "customer_id string, segment_name string, as_of_date date")
    profiles = read_table(spark, lake.table("gold", "customers")).select("customer_id", "name", "mobile", "email")
    listed = (
        rows.filter(~F.col("holdout"))
        .join(profiles, "customer_id", "left")
        .join(features, "customer_id", "left")
        .join(segments.filter(F.col("as_of_date") == F.lit(as_of)).select("customer_id", "segment_name"), "customer_id", "left")
    )
    return listed, int(version), as_of


def export(spark: SparkSession, config: AppConfig, name: str, args: argparse.Namespace) -> int:
    book = load_campaigns(config)
    campaign = book.get(name)
    rows, version, as_of = _audience_rows(spark, config, name, args.version)
    fields = tuple(args.fields.split(",")) if args.fields else tuple(campaign.export_fields())
    request = ExportRequest(
        "audience", name, str(version), as_of, campaign.channel, fields, args.format, args.out, args.user, args.privileged,
        args.purpose, order_by=("dealer_code", "customer_id"),
    )
    return export_list(spark, config, rows, load_consent(spark, lake_of(config), mentions_with_customers(spark, lake_of(config))), request)


def _print_preview(p: AudiencePreview) -> None:
    print(f"campaign {p.campaign} ({p.channel}): {p.qualifying} customers qualify")
    print(f"  {'suppression':<22} {'alone':>8} {'in order':>9}")
    for flag, n in p.suppressed_in_order.items():
        print(f"  {flag:<22} {p.suppressed_alone[flag]:>8} {n:>9}")
    print(f"  members {p.members} = list {p.listed} + control group {p.holdout}")
    reach = ", ".join(f"{channel} {n}" for channel, n in p.reachable_by_channel.items())
    print(f"  reachable among those qualifying: {reach}")
    for note in p.warnings:
        print(f"  warning: {note}")


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp audience", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="campaigns and their latest versions")
    show = commands.add_parser("preview", help="sizes and suppressions, nothing written")
    show.add_argument("name")
    make = commands.add_parser("build", help="write a new version of the list")
    make.add_argument("names", nargs="*")
    make.add_argument("--all", action="store_true")
    versions = commands.add_parser("versions", help="every version of a campaign's list")
    versions.add_argument("name")
    out = commands.add_parser("export", help="write a list for a dialer or a messaging platform")
    out.add_argument("name")
    out.add_argument("--version", type=int, help="default: the latest")
    add_export_options(out)
    for sub in (listing, show, make, versions, out):
        add_common_options(sub)
    for sub in (show, make):
        sub.add_argument("--as-of", type=dt.date.fromisoformat, help="features of this date (default: the latest)")
    args = parser.parse_args(argv)
    config = config_from_args(args)
    try:
        book = load_campaigns(config)
        if args.command == "list":
            return _list(book, config, args)
        spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
        if args.command == "preview":
            _print_preview(preview(spark, config, args.name, args.as_of))
        elif args.command == "build":
            if not args.all and not args.names:
                parser.error("name a campaign or give --all")
            names = sorted(book.campaigns) if args.all else args.names
            if not names:
                print("no campaigns defined")
            # Several campaigns share one set of inputs; each still sees the lists built before it.
            shared = audience_inputs(spark, config, args.as_of, _now(), cache=True) if len(names) > 1 else None
            for name in names:
                report = build(spark, config, name, args.as_of, shared=shared)
                state = "rebuilt" if report.rebuilt else "new"
                print(f"{name}: version {report.version} ({state}), {report.preview.listed} listed + {report.preview.holdout} control, {report.seconds:.1f}s")
                for note in report.preview.warnings:
                    print(f"  warning: {note}")
        elif args.command == "versions":
            path = lake_of(config).table("gold", "audience_versions")
            rows = read_table(spark, path).filter(F.col("campaign") == args.name).orderBy("version").collect() if table_exists(spark, path) else []
            print(f"{'version':>7} {'as of':<10} {'built at':<19} {'listed':>8} {'control':>8} definition")
            for r in rows:
                print(f"{r['version']:>7} {r['as_of_date']!s:<10} {r['built_at']!s:<19} {r['listed']:>8} {r['holdout']:>8} {r['definition_hash'][:12]}")
        else:
            n = export(spark, config, args.name, args)
            print(f"exported {n} rows of {args.name} to {args.out}{' (privileged)' if args.privileged else ' (masked)'}")
    except (ActivationError, CampaignError, ExportError) as exc:
        print(f"cdp audience: {exc}", file=sys.stderr)
        return 2
    return 0


def _list(book: CampaignBook, config: AppConfig, args: argparse.Namespace) -> int:
    print(f"{'campaign':<28} {'channel':<7} {'group':<10} {'prio':>4} {'holdout':>7}  description")
    for name, c in sorted(book.campaigns.items()):
        print(f"{name:<28} {c.channel:<7} {c.group or '-':<10} {c.priority:>4} {c.holdout_percent:>6.1f}%  {c.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
