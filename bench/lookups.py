"""How fast the read-only commands answer on a built lake, with the Python imports warm.

Runs each lookup once to warm the imports, then `--repeat` more times in the same process
(as the web app would serve it) and reports the median and the slowest wall time. The
lookups read the gold tables with delta-rs and DuckDB; `audience preview` evaluates a
campaign and is measured the same way.

    python -m bench.lookups --conf /tmp/cdp-bench/conf/local.yaml
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import time
from pathlib import Path

__all__ = ["lookups", "main"]


def lookups(conf: str) -> list[tuple[str, list[str]]]:
    """The read-only commands to time, with arguments taken from the lake itself."""
    from cdp import catalog
    from cdp.config import load_config
    from cdp.reader import LakeReader

    config = load_config(conf)
    reader = LakeReader(config.resolve(config.lake.root))
    busiest = reader.query(
        "SELECT customer_id, mobile FROM c WHERE mobile IS NOT NULL ORDER BY mention_count DESC, customer_id LIMIT 1",
        {"c": catalog.CUSTOMERS},
    )[0]
    segment = reader.query("SELECT segment_name FROM s GROUP BY 1 ORDER BY count(*) LIMIT 1", {"s": catalog.CUSTOMER_SEGMENTS})[0]
    campaign = reader.query("SELECT campaign FROM v ORDER BY campaign LIMIT 1", {"v": catalog.AUDIENCE_VERSIONS})[0]["campaign"]
    common = ["--conf", conf]
    return [
        ("segments list", ["segments", "list", *common]),
        ("segments show", ["segments", "show", segment["segment_name"], *common]),
        ("customer show (id)", ["customer", "show", busiest["customer_id"], *common]),
        ("customer show (mobile)", ["customer", "show", "--mobile", busiest["mobile"], *common]),
        ("customer explain", ["customer", "explain", busiest["customer_id"], *common]),
        ("audience list", ["audience", "list", *common]),
        ("audience versions", ["audience", "versions", campaign, *common]),
        ("audience preview", ["audience", "preview", campaign, *common]),
        ("winback show", ["winback", "show", "--top", "20", *common]),
        ("model list", ["model", "list", *common]),
        ("privacy audit", ["privacy", "audit", *common]),
        ("runs", ["runs", *common]),
        ("kpi show", ["kpi", "show", *common]),
        ("complaints due", ["complaints", "due", *common]),
    ]


def _timed(argv: list[str]) -> tuple[float, int]:
    from app.cli import main as cdp_main

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        status = cdp_main(argv)
    return time.perf_counter() - started, status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf", required=True, help="profile of a lake the pipeline has run on")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args(argv)
    results = []
    for label, command in lookups(args.conf):
        first, status = _timed(command)
        if status:
            print(f"{label}: exit {status}", file=sys.stderr)
            return 1
        times = [_timed(command)[0] for _ in range(args.repeat)]
        results.append({"lookup": label, "first_s": round(first, 3), "median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3)})
        print(f"{label:<24} first {first:7.2f}s  warm median {statistics.median(times):6.2f}s  max {max(times):6.2f}s", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
