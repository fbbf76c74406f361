"""`cdp evaluate resolution --truth FILE`: score the customer crosswalk against ground truth."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pyspark.sql import functions as F

from cdp.lake import Lake, read_table
from entity_resolution.evaluation import pairwise_scores, truth_mentions

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp evaluate resolution", description=__doc__)
    parser.add_argument("what", choices=["resolution"])
    parser.add_argument("--truth", required=True, help="CSV with feed, record_id, role, person_id (the generator's truth/mentions.csv)")
    parser.add_argument("--json", help="also write the scores to this JSON file")
    add_common_options(parser)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    lake = Lake(config.resolve(config.lake.root))
    truth_raw = spark.read.option("header", True).csv(args.truth)
    missing = {"feed", "record_id", "role", "person_id"} - set(truth_raw.columns)
    if missing:
        print(f"{args.truth}: missing column(s) {', '.join(sorted(missing))}", file=sys.stderr)
        return 2
    xref = read_table(spark, lake.table("gold", "customer_xref")).select("mention_id", F.col("customer_id").alias("cluster_id"))
    scores = pairwise_scores(xref, truth_mentions(truth_raw))
    for key, value in scores.items():
        print(f"{key:<22} {value:.4f}" if value < 10 else f"{key:<22} {value:.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps(scores, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
