"""`cdp` command line: generate demo data, run jobs."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import sys

from cdp.config import ConfigError

__all__ = ["main"]

_JOBS = (
    "ingest", "resolve", "features", "train_segments", "segment", "reminders", "audiences", "train_winback", "winback", "pipeline",
)
# Job modules named differently from their job: a script run by spark-submit has its own
# folder first on the path, so `jobs/features.py` would hide the `features` package.
_JOB_MODULES = {"features": "build_features"}
_COMMANDS = {
    "customer": "customer", "link": "link", "model": "model", "segments": "segments", "audience": "audience",
    "winback": "lists", "reminders": "lists", "privacy": "privacy",
}
# Commands served by one module for several lists: the module sees the command name first.
_SHARED = ("winback", "reminders")


def _generate(argv: list[str]) -> int:
    from cdp.logs import configure_logging
    from datagen import generate

    parser = argparse.ArgumentParser(prog="cdp generate", description="Write synthetic dealer feeds with ground truth.")
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", required=True)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2026, 6, 30), help="last day of history (YYYY-MM-DD)")
    parser.add_argument("--error-rate", type=float, default=0.002, help="share of records with an export fault")
    parser.add_argument("--rows-per-file", type=int, default=250_000)
    args = parser.parse_args(argv)
    configure_logging("INFO")
    summary = generate(args.customers, args.seed, args.out, as_of=args.as_of, error_rate=args.error_rate, rows_per_file=args.rows_per_file)
    for feed, rows in summary.records.items():
        print(f"{feed:<20} {rows:>10}")
    print(f"{'total':<20} {summary.total_records:>10}  ({summary.people} people, {summary.truth_rows} truth rows, {summary.seconds:.1f}s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = (
        "usage: cdp generate ... | cdp run {" + ",".join(_JOBS) + "} ... | cdp evaluate resolution --truth FILE\n"
        "       cdp customer {show,explain} ID | cdp link --mapping YAML --out PATH FILE [FILE]\n"
        "       cdp model {list,compare,promote} ... | cdp segments {list,show} ...\n"
        "       cdp audience {list,preview,build,export,versions} ... | cdp winback {show,export} ... | cdp reminders export ...\n"
        "       cdp privacy {erase,vacuum,audit} ..."
    )
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    command, rest = argv[0], argv[1:]
    try:
        if command == "generate":
            return _generate(rest)
        if command == "evaluate":
            from jobs import evaluate

            return int(evaluate.main(rest))
        if command in _COMMANDS:
            module = importlib.import_module(f"jobs.{_COMMANDS[command]}")
            return int(module.main([command, *rest] if command in _SHARED else rest))
        if command == "run":
            if not rest or rest[0] not in _JOBS:
                print(f"cdp run: choose a job from {', '.join(_JOBS)}", file=sys.stderr)
                return 2
            job = importlib.import_module(f"jobs.{_JOB_MODULES.get(rest[0], rest[0])}")
            return int(job.main(rest[1:]))
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
