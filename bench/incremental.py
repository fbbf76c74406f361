"""Incremental resolution against a full re-run on the same data.

Generates N customers, holds back a random share of every feed's records as "new", ingests
the rest and runs a full resolution, then ingests the held-back records and runs
`resolve --incremental`, and finally a full resolution on everything. Prints both timings
and how well the incremental crosswalk agrees with the full one (pairwise, the full run as
reference) and with the generator's truth. Results go to WORK/incremental.json.

    python -m bench.incremental --customers 10000 --work /tmp/bench-inc
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import time
from pathlib import Path

from pyspark.sql import functions as F

from cdp import catalog

__all__ = ["main", "split_feed_files"]

ROOT = Path(__file__).resolve().parent.parent


def _split_rows(rows: list, share: float, rng: random.Random) -> tuple[list, list]:
    late = [rng.random() < share for _ in rows]
    return [r for r, x in zip(rows, late) if not x], [r for r, x in zip(rows, late) if x]


def split_feed_files(source: Path, early: Path, late: Path, share: float, seed: int) -> dict[str, int]:
    """Copy every feed file under `source` to `early`, moving a random `share` of its records
    into a same-format file under `late`. Returns held-back records per feed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    held: dict[str, int] = {}
    for path in sorted(source.glob("*/*")):
        feed = path.parent.name
        if feed == "truth":
            continue
        (early / feed).mkdir(parents=True, exist_ok=True)
        (late / feed).mkdir(parents=True, exist_ok=True)
        late_path = late / feed / f"{path.stem}_late{path.suffix}"
        if feed == "contact_preferences":
            shutil.copy(path, early / feed / path.name)
            continue
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                header, *rows = list(csv.reader(f))
            keep, hold = _split_rows(rows, share, rng)
            for target, part in ((early / feed / path.name, keep), (late_path, hold)):
                with target.open("w", newline="", encoding="utf-8") as f:
                    csv.writer(f).writerows([header, *part])
        elif path.suffix == ".jsonl":
            keep, hold = _split_rows(path.read_text(encoding="utf-8").splitlines(), share, rng)
            (early / feed / path.name).write_text("".join(line + "\n" for line in keep), encoding="utf-8")
            late_path.write_text("".join(line + "\n" for line in hold), encoding="utf-8")
        else:
            table = pq.read_table(path)
            keep_idx, hold_idx = _split_rows(list(range(table.num_rows)), share, rng)
            # Typed indices: an empty list (nothing held back) would otherwise be a null array.
            pq.write_table(table.take(pa.array(keep_idx, type=pa.int64())), early / feed / path.name)
            pq.write_table(table.take(pa.array(hold_idx, type=pa.int64())), late_path)
        held[feed] = held.get(feed, 0) + len(hold if path.suffix != ".parquet" else hold_idx)
    return held


def main(argv: list[str] | None = None) -> int:
    from cdp.config import LakeConfig, MlflowConfig, load_config
    from cdp.lake import Lake, read_table
    from cdp.logs import configure_logging
    from cdp.spark import build_spark_session
    from datagen import generate
    from entity_resolution.evaluation import pairwise_scores, truth_mentions
    from entity_resolution.resolve import resolve_identities
    from ingestion import ingest_feeds

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--new-share", type=float, default=0.01)
    parser.add_argument("--work", required=True)
    parser.add_argument("--conf", default=str(ROOT / "conf" / "local.yaml"))
    args = parser.parse_args(argv)
    configure_logging("INFO")
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    generate(args.customers, args.seed, work / "generated", error_rate=0.0)
    held = split_feed_files(work / "generated", work / "raw", work / "late", args.new_share, args.seed)
    config = load_config(args.conf).model_copy(
        update={
            "lake": LakeConfig(root=str(work / "lake"), raw_root=str(work / "raw")),
            "mlflow": MlflowConfig(tracking_uri=str(work / "mlflow.db"), artifact_root=str(work / "mlruns")),
        }
    )
    spark = build_spark_session(config)
    ingest_feeds(spark, config, Lake(config.resolve(config.lake.root)))
    first = resolve_identities(spark, config)
    for path in sorted((work / "late").glob("*/*")):
        shutil.copy(path, work / "raw" / path.parent.name / path.name)
    ingest_feeds(spark, config, Lake(config.resolve(config.lake.root)))
    started = time.perf_counter()
    incremental = resolve_identities(spark, config, incremental=True)
    incremental_seconds = time.perf_counter() - started
    lake = Lake(config.lake.root)
    xref_path = str(work / "incremental_xref")
    read_table(spark, lake.path(catalog.CUSTOMER_XREF)).write.mode("overwrite").parquet(xref_path)
    started = time.perf_counter()
    full = resolve_identities(spark, config)
    full_seconds = time.perf_counter() - started

    as_cluster = spark.read.parquet(xref_path).select("mention_id", F.col("customer_id").alias("cluster_id"))
    full_xref = read_table(spark, lake.path(catalog.CUSTOMER_XREF))
    agreement = pairwise_scores(as_cluster, full_xref.select("mention_id", F.col("customer_id").alias("person_id")))
    truth = truth_mentions(spark.read.option("header", True).csv(str(work / "generated" / "truth" / "mentions.csv")))
    result = {
        "customers": args.customers,
        "held_back_records": held,
        "mentions": full.mentions,
        "new_mentions": incremental.new_mentions,
        "first_full_seconds": sum(first.timings.values()),
        "incremental_seconds": incremental_seconds,
        "incremental_timings": incremental.timings,
        "incremental_events": incremental.events,
        "full_seconds": full_seconds,
        "full_timings": full.timings,
        "agreement_with_full": {k: agreement[k] for k in ("pairwise_precision", "pairwise_recall", "pairwise_f1")},
        "incremental_vs_truth": {k: v for k, v in pairwise_scores(as_cluster, truth).items() if k.startswith("pairwise")},
        "full_vs_truth": {
            k: v
            for k, v in pairwise_scores(full_xref.select("mention_id", F.col("customer_id").alias("cluster_id")), truth).items()
            if k.startswith("pairwise")
        },
    }
    (work / "incremental.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
