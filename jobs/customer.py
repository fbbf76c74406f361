"""`cdp customer show|explain`: one customer's unified view, and why its records were joined.

    cdp customer show CU0123456789abcdef        profile, vehicles, timeline (masked)
    cdp customer show --mobile 13812348000      every customer who used that mobile
    cdp customer show CU... --reveal            unmasked, for staff allowed to see it
    cdp customer explain CU...                  match weights of the links that joined it
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.lake import Lake, read_table, table_exists
from entity_resolution.customer_view import build_timeline, explain_links, find_customers, masked_profile

__all__ = ["main"]


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        print("  (none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  " + "  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  " + "  ".join(str(row.get(c, "") if row.get(c) is not None else "").ljust(widths[c]) for c in columns))


def _show(spark, lake: Lake, args: argparse.Namespace) -> int:
    customers = read_table(spark, lake.table("gold", "customers"))
    found = find_customers(customers, customer_id=args.customer_id, mobile=args.mobile)
    shown = found if args.reveal else masked_profile(found)
    rows = shown.orderBy("customer_id").limit(args.limit).collect()
    if not rows:
        print("no such customer", file=sys.stderr)
        return 1
    xref = read_table(spark, lake.table("gold", "customer_xref"))
    vehicles = read_table(spark, lake.table("gold", "customer_vehicles"))
    for row in rows:
        profile = row.asDict()
        print(f"customer {profile['customer_id']}")
        for key, value in profile.items():
            if key != "customer_id":
                print(f"  {key:<14} {value}")
        print("vehicles")
        owned = vehicles.filter(F.col("customer_id") == profile["customer_id"]).orderBy("from_date", "vin")
        _print_table([r.asDict() for r in owned.collect()], ["vin", "role", "from_date", "to_date", "records", "is_current_owner"])
        print("timeline")
        timeline = build_timeline(spark, lake, xref.filter(F.col("customer_id") == profile["customer_id"]))
        if not args.reveal:
            timeline = timeline.withColumn("summary", F.regexp_replace("summary", r"\b(1[3-9]\d)\d{4}(\d{4})\b", "$1****$2"))
        _print_table([r.asDict() for r in timeline.collect()], ["at", "feed", "record_id", "role", "dealer_code", "summary"])
    return 0


def _explain(spark, lake: Lake, config, args: argparse.Namespace) -> int:
    from entity_resolution.model import load_model

    xref = read_table(spark, lake.table("gold", "customer_xref")).filter(F.col("customer_id") == args.customer_id)
    ids = xref.select("mention_id")
    if ids.limit(1).count() == 0:
        print("no such customer", file=sys.stderr)
        return 1
    all_mentions = read_table(spark, lake.table("gold", "person_mentions"))
    mentions = all_mentions.join(ids, "mention_id", "left_semi")
    pairs: DataFrame = (
        read_table(spark, lake.table("gold", "match_pairs"))
        .join(ids.withColumnRenamed("mention_id", "mention_id_l"), "mention_id_l", "left_semi")
        .join(ids.withColumnRenamed("mention_id", "mention_id_r"), "mention_id_r", "left_semi")
    )
    model = load_model(spark, lake.table("_models", "resolution"))
    links = explain_links(mentions, all_mentions, pairs, model, config.resolution.match_threshold)
    if args.json:
        print(json.dumps(links, indent=2))
        return 0
    print(f"customer {args.customer_id}: {mentions.count()} records, joined by {len(links)} link(s)")
    for link in links:
        print(f"\n{link['mention_id_l']}  <->  {link['mention_id_r']}")
        print(f"  match probability {link['match_probability']:.4f}, match weight {link['match_weight']:.2f}")
        _print_table(link["comparisons"], ["comparison", "level", "match_weight"])
    return 0


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp customer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["show", "explain"])
    parser.add_argument("customer_id", nargs="?")
    parser.add_argument("--mobile", help="show: find customers by a mobile they used")
    parser.add_argument("--reveal", action="store_true", help="show: unmasked personal data")
    parser.add_argument("--limit", type=int, default=5, help="show: at most this many customers")
    parser.add_argument("--json", action="store_true", help="explain: print JSON")
    add_common_options(parser)
    args = parser.parse_args(argv)
    if not args.customer_id and not (args.action == "show" and args.mobile):
        parser.error("give a customer ID" + (" or --mobile" if args.action == "show" else ""))
    config = config_from_args(args)
    lake = Lake(config.resolve(config.lake.root))
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    if not table_exists(spark, lake.table("gold", "customers")):
        print("no golden customers yet: run `cdp run resolve` first", file=sys.stderr)
        return 2
    return _show(spark, lake, args) if args.action == "show" else _explain(spark, lake, config, args)


if __name__ == "__main__":
    sys.exit(main())
