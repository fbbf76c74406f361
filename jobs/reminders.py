"""Reminders job: gold/reminders as of a date (default today), one partition per date,
replaced as a whole on a re-run.

    cdp run reminders [--as-of DATE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import dataclass

from pyspark.sql import SparkSession

from activation.history import build_visits
from activation.reminders import build_reminders
from cdp.config import AppConfig
from cdp.lake import read_table, replace_partition
from jobs.activation_common import ActivationError, home_dealers, lake_of, load_feed, mentions_with_customers, owned_vehicles

__all__ = ["RemindersReport", "main", "run"]


@dataclass
class RemindersReport:
    as_of: dt.date
    by_kind: dict[str, int]
    seconds: float


def run(spark: SparkSession, config: AppConfig, as_of: dt.date) -> RemindersReport:
    started = time.perf_counter()
    lake = lake_of(config)
    mentions = mentions_with_customers(spark, lake)
    owners, vehicles = owned_vehicles(spark, lake, mentions, as_of)
    customers = read_table(spark, lake.table("gold", "customers")).select("customer_id", "birth_date")
    reminders = build_reminders(
        owners, vehicles, build_visits(load_feed(spark, lake, "service_orders"), as_of), customers,
        home_dealers(spark, lake, as_of), as_of, config.activation.reminders,
    )
    path = lake.table("gold", "reminders")
    replace_partition(spark, reminders, path, "as_of_date", as_of)
    written = read_table(spark, path).filter(f"as_of_date = '{as_of}'")
    by_kind = {row["kind"]: int(row["count"]) for row in written.groupBy("kind").count().collect()}
    return RemindersReport(as_of, by_kind, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp run reminders", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="YYYY-MM-DD (default: today)")
    args = parser.parse_args(argv)
    config = config_from_args(args)
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    try:
        report = run(spark, config, args.as_of or dt.datetime.now(dt.timezone.utc).date())
    except ActivationError as exc:
        print(f"cdp run reminders: {exc}", file=sys.stderr)
        return 2
    total = sum(report.by_kind.values())
    print(f"as of {report.as_of}: {total} reminders in {report.seconds:.1f}s")
    for kind, n in sorted(report.by_kind.items()):
        print(f"  {kind:<20} {n:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
