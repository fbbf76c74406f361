"""Ingest job: every configured feed from its raw folder into bronze, silver and quarantine."""

from __future__ import annotations

import argparse
import logging
import sys

from pyspark.sql import SparkSession

from cdp.config import AppConfig
from cdp.lake import Lake
from ingestion import FeedError, FeedReport, ingest_feed

__all__ = ["main", "run"]

log = logging.getLogger(__name__)


def run(spark: SparkSession, config: AppConfig, feeds: list[str] | None = None) -> tuple[list[FeedReport], list[FeedError]]:
    """Ingest the chosen feeds (all by default). A feed that breaks a hard rule is reported in
    the errors and left untouched; the others still load."""
    lake = Lake(config.resolve(config.lake.root))
    raw_root = config.resolve(config.lake.raw_root)
    reports, errors = [], []
    for name, feed in config.ingest.feeds.items():
        if feeds and name not in feeds:
            continue
        folder = feed.path if ("://" in feed.path or feed.path.startswith("/")) else f"{raw_root.rstrip('/')}/{feed.path}"
        try:
            reports.append(ingest_feed(spark, lake, name, feed, folder))
        except FeedError as exc:
            log.error("%s", exc)
            errors.append(exc)
    return reports, errors


def format_reports(reports: list[FeedReport]) -> str:
    header = f"{'feed':<20} {'new files':>9} {'skipped':>7} {'read':>9} {'loaded':>9} {'quarantined':>11}  reconciled"
    lines = [header, "-" * len(header)]
    for r in reports:
        lines.append(
            f"{r.feed:<20} {r.files_new:>9} {r.files_skipped:>7} {r.rows_read:>9} {r.rows_loaded:>9} "
            f"{r.rows_quarantined:>11}  {'yes' if r.reconciled else 'NO'}"
        )
    totals = FeedReport("total", rows_read=sum(r.rows_read for r in reports),
                        rows_loaded=sum(r.rows_loaded for r in reports),
                        rows_quarantined=sum(r.rows_quarantined for r in reports))
    lines.append(f"{'total':<20} {'':>9} {'':>7} {totals.rows_read:>9} {totals.rows_loaded:>9} {totals.rows_quarantined:>11}  {'yes' if totals.reconciled else 'NO'}")
    for r in reports:
        if r.quarantine_by_rule:
            rules = ", ".join(f"{k}={v}" for k, v in sorted(r.quarantine_by_rule.items()))
            lines.append(f"  {r.feed} quarantine by rule: {rules}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp run ingest", description=__doc__)
    add_common_options(parser)
    parser.add_argument("--feed", action="append", help="only this feed; repeatable")
    args = parser.parse_args(argv)
    config = config_from_args(args)
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    reports, errors = run(spark, config, args.feed)
    print(format_reports(reports))
    for error in errors:
        print(f"ERROR {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
