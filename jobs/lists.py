"""`cdp winback` and `cdp reminders`: look at and export the win-back list and reminders.

    cdp winback show [--as-of DATE] [--dealer CODE] [--top N]
    cdp winback export [--as-of DATE] [--dealer CODE] [--top N] --format csv|parquet --out PATH [--privileged --purpose TEXT]
    cdp reminders export --kind KIND [--within-days N] [--channel sms] [--as-of DATE] --format ... --out PATH

Exports leave out anyone who opted out of the channel, mask mobiles and names unless
privileged, and are recorded in gold/export_audit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from dataclasses import replace

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from activation.exports import ExportError, ExportRequest
from activation.reminders import REMINDER_KINDS
from cdp.activation_config import CHANNELS
from cdp.config import AppConfig
from cdp.privacy import build_masked_name
from cdp.lake import read_table, table_exists
from jobs.activation_common import ActivationError, add_export_options, export_list, lake_of, load_consent, mentions_with_customers

__all__ = ["main"]

_WINBACK_FIELDS = ("rank", "dealer_rank", "customer_id", "name", "mobile", "dealer_code", "lifecycle_stage", "reason_codes", "p_return", "expected_value")
_REMINDER_FIELDS = ("customer_id", "name", "mobile", "kind", "due_date", "dealer_code", "model", "basis")


def _latest(spark: SparkSession, config: AppConfig, table: str, as_of: dt.date | None, job: str) -> tuple[DataFrame, dt.date]:
    path = lake_of(config).table("gold", table)
    if not table_exists(spark, path):
        raise ActivationError(f"no {table} yet: run `cdp run {job}` first")
    rows = read_table(spark, path)
    as_of = as_of or rows.agg(F.max("as_of_date")).first()[0]
    rows = rows.filter(F.col("as_of_date") == F.lit(as_of))
    if as_of is None or rows.limit(1).count() == 0:
        raise ActivationError(f"no {table} as of {as_of}: run `cdp run {job}` first")
    return rows, as_of


def _with_profiles(spark: SparkSession, config: AppConfig, rows: DataFrame) -> DataFrame:
    profiles = read_table(spark, lake_of(config).table("gold", "customers")).select("customer_id", "name", "mobile", "email")
    return rows.join(profiles, "customer_id", "left")


def _winback_rows(spark: SparkSession, config: AppConfig, args: argparse.Namespace) -> tuple[DataFrame, dt.date]:
    rows, as_of = _latest(spark, config, "winback", args.as_of, "winback")
    if args.dealer:
        rows = rows.filter(F.col("dealer_code") == args.dealer)
    if args.top:
        rows = rows.filter(F.col("dealer_rank" if args.dealer else "rank") <= args.top)
    return rows, as_of


def _export(
    spark: SparkSession, config: AppConfig, rows: DataFrame, request: ExportRequest, args: argparse.Namespace
) -> int:
    if args.fields:
        request = replace(request, fields=tuple(args.fields.split(",")))
    consent = load_consent(spark, lake_of(config), mentions_with_customers(spark, lake_of(config)))
    return export_list(spark, config, _with_profiles(spark, config, rows), consent, request)


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    lists = parser.add_subparsers(dest="list", required=True)
    winback = lists.add_parser("winback").add_subparsers(dest="command", required=True)
    reminders = lists.add_parser("reminders").add_subparsers(dest="command", required=True)
    show = winback.add_parser("show", help="the top of the list, masked")
    wexport = winback.add_parser("export")
    rexport = reminders.add_parser("export")
    for sub in (show, wexport):
        sub.add_argument("--dealer", help="one dealer's list, ranked within the dealer")
        sub.add_argument("--top", type=int, help="only the N best-ranked")
    rexport.add_argument("--kind", choices=REMINDER_KINDS, required=True)
    rexport.add_argument("--within-days", type=int, default=30, help="due from the as-of date up to N days later (default 30)")
    rexport.add_argument("--channel", choices=CHANNELS, default="sms")
    for sub in (show, wexport, rexport):
        add_common_options(sub)
        sub.add_argument("--as-of", type=dt.date.fromisoformat, help="default: the latest")
    for sub in (wexport, rexport):
        add_export_options(sub)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    try:
        if args.list == "winback" and args.command == "show":
            rows, as_of = _winback_rows(spark, config, args)
            print(f"win-back list as of {as_of} (masked)")
            order = "dealer_rank" if args.dealer else "rank"
            shown = _with_profiles(spark, config, rows).orderBy(order).limit(args.top or 20)
            for r in shown.select(order, "customer_id", build_masked_name(F.col("name")).alias("name"), "dealer_code", "lifecycle_stage", "p_return", "expected_value", "reason_codes").collect():
                print(f"{r[order]:>5} {r['customer_id']} {r['name'] or '-':<6} {r['dealer_code'] or '-':<6} {r['lifecycle_stage']:<8} p={r['p_return']:.2f} value={r['expected_value']:>9.0f}  {'; '.join(r['reason_codes'])}")
            return 0
        if args.list == "winback":
            rows, as_of = _winback_rows(spark, config, args)
            name = f"winback{'_' + args.dealer if args.dealer else ''}"
            version = rows.select("model_version").first()[0]
            request = ExportRequest(
                "winback", name, f"model {version}", as_of, config.activation.winback.channel, _WINBACK_FIELDS, args.format,
                args.out, args.user, args.privileged, args.purpose, order_by=("dealer_rank" if args.dealer else "rank",),
            )
            n = _export(spark, config, rows, request, args)
        else:
            rows, as_of = _latest(spark, config, "reminders", args.as_of, "reminders")
            rows = rows.filter((F.col("kind") == args.kind) & F.col("days_until_due").between(0, args.within_days - 1))
            request = ExportRequest(
                "reminders", f"{args.kind}_{args.within_days}d", "-", as_of, args.channel, _REMINDER_FIELDS, args.format,
                args.out, args.user, args.privileged, args.purpose, order_by=("due_date", "customer_id"),
            )
            n = _export(spark, config, rows, request, args)
        print(f"exported {n} rows to {args.out}{' (privileged)' if args.privileged else ' (masked)'}")
    except (ActivationError, ExportError) as exc:
        print(f"cdp {args.list}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
