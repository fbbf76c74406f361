"""The whole pipeline on generated data, step by step, with plain Splink beside it.

Generates N customers (100,000 by default, about 1.4 million records) and holds back a share
of every feed's records (1% by default). Runs every step in one `cdp run pipeline` process on
the embedded default profile, as a daily run is scheduled (`--steps-apart`: each step as a
process of its own, as one task per step would). Beside it, scores the crosswalk against the
generator's truth and runs plain Splink (DuckDB, no project standardisation) on the same
mentions. Then runs the held-back records through one `cdp run pipeline --incremental`
process: their ingest, incremental resolution and every later step.

Every stage reports wall time, rows in and out, rows per second and the peak memory of the
driver (Python, with DuckDB inside it), of the JVM and of the whole process tree; the steps of
one pipeline run report their time from the run ledger. The targets of `bench.targets` are
printed as met or not. Everything goes to WORK/bench.json; `--compare OLD.json` prints the
time ratios against an earlier run.

    python -m bench.run --customers 100000 --work /tmp/cdp-bench
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.measure import StageRun, agreement, lake_rows, run_measured
from bench.spark_events import event_log_settings, read_events, work_by_step
from bench.targets import targets
from cdp import catalog
from cdp.lake import Lake

__all__ = ["PIPELINE", "Stage", "main", "targets"]

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True)
class Stage:
    """A job of the pipeline: its `cdp` arguments and the tables that count as its rows."""

    name: str
    args: tuple[str, ...]
    rows_in: str | None
    rows_out: str | None
    dated: bool = True


PIPELINE = (
    Stage("ingest", ("run", "ingest"), "bronze/*", "silver/*", dated=False),
    Stage("resolve", ("run", "resolve", "--no-track"), "gold/person_mentions", "gold/customers", dated=False),
    Stage("consent", ("run", "consent"), "silver/contact_preferences", "gold/customer_consent", dated=False),
    Stage("ownership", ("run", "ownership"), "gold/customer_xref", "gold/vehicle_owners"),
    Stage("complaint_cases", ("run", "complaint_cases"), "silver/complaints", "gold/complaint_cases"),
    Stage("satisfaction", ("run", "satisfaction"), "silver/surveys", "gold/satisfaction_monthly"),
    Stage("features", ("run", "features"), "gold/customer_xref", "gold/customer_features"),
    Stage("train_segments", ("run", "train_segments"), "gold/customer_features", None),
    Stage("segment", ("run", "segment"), "gold/customer_features", "gold/customer_segments"),
    Stage("reminders", ("run", "reminders"), "gold/vehicle_owners", "gold/reminders"),
    Stage("audiences", ("run", "audiences"), "gold/customers", "gold/audiences"),
    Stage("train_winback", ("run", "train_winback"), "gold/customer_features", None),
    Stage("winback", ("run", "winback"), "gold/customer_features", "gold/winback"),
    Stage("dealer_kpis", ("run", "dealer_kpis"), "silver/service_orders", "gold/dealer_kpis_monthly"),
    Stage("campaign_results", ("run", "campaign_results"), "gold/audiences", "gold/campaign_results"),
)


def _cdp() -> list[str]:
    script = Path(sys.executable).parent / "cdp"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def write_profile(work: Path) -> Path:
    """The embedded default profile with its lake, MLflow store and JARs under `work`."""
    conf = work / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "conf").glob("*.yaml"):
        shutil.copy(path, conf / path.name)
    profile = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text(encoding="utf-8"))
    profile["lake"] = {"root": str(work / "lake"), "raw_root": str(work / "raw")}
    profile["mlflow"] = {"tracking_uri": str(work / "mlflow.db"), "artifact_root": str(work / "mlruns")}
    profile["spark"]["jars_dir"] = str(ROOT / profile["spark"]["jars_dir"])
    # Spark's event log, for each step's queries and jobs (`bench.spark_events`).
    (work / "events").mkdir(exist_ok=True)
    profile["spark"]["settings"] = {**profile["spark"].get("settings", {}), **event_log_settings(work / "events")}
    (conf / "local.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return conf / "local.yaml"


class Bench:
    """Runs and records the stages; stops at the first failure with the log's tail."""

    def __init__(self, work: Path, env: dict[str, str]) -> None:
        self.work = work
        self.lake = work / "lake"
        self.env = env
        self.rows: list[dict] = []
        self.held_back: dict[str, int] = {}

    def run(self, name: str, command: list[str], rows_in: str | int | None = None, rows_out: str | None = None) -> dict:
        before = lake_rows(self.lake, rows_out) if rows_out else 0
        print(f"bench: {name} ...", flush=True)
        measured: StageRun = run_measured(command, self.work / "logs" / f"{name}.log", self.env)
        row = {
            "stage": name,
            "seconds": round(measured.seconds, 1),
            "rows_in": lake_rows(self.lake, rows_in) if isinstance(rows_in, str) else rows_in,
            "rows_out": lake_rows(self.lake, rows_out) - before if rows_out else None,
            "driver_peak_mib": round(measured.driver_peak / MIB),
            "jvm_peak_mib": round(measured.jvm_peak / MIB),
            "tree_peak_mib": round(measured.tree_peak / MIB),
            # When the tree was at its largest, and of what: the job's log tells what ran then.
            "tree_peak_at_s": round(measured.tree_peak_at, 1),
            "tree_peak_parts_mib": {part: round(size / MIB) for part, size in measured.tree_peak_parts.items()},
            "returncode": measured.returncode,
            "log": str(measured.log),
        }
        row["rows_per_second"] = round(row["rows_in"] / measured.seconds) if row["rows_in"] else None
        self.rows.append(row)
        if measured.returncode:
            tail = measured.log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
            print(f"bench: {name} failed with exit status {measured.returncode}; last lines of {measured.log}:", file=sys.stderr)
            print("\n".join(tail), file=sys.stderr)
        return row


def _resolve_phases(log: Path, incremental: bool = False) -> dict[str, float]:
    mode = "incremental" if incremental else "full"
    match = re.search(rf"resolution \({mode}, .*timings (\{{[^}}]*\}})", log.read_text(encoding="utf-8", errors="replace"))
    return ast.literal_eval(match.group(1)) if match else {}


def _feature_dates(log: Path) -> dict[str, float]:
    """Seconds of each as-of date the features step built (its `as of DATE: N customers in Xs` lines)."""
    found = re.findall(r"as of (\d{4}-\d{2}-\d{2}): \d+ customers in ([\d.]+)s", log.read_text(encoding="utf-8", errors="replace"))
    return {date: float(seconds) for date, seconds in found}


def _ledger(lake: Path) -> list[dict]:
    """The run ledger's rows (`_ops/runs`), read with delta-rs; empty before the first run."""
    from deltalake import DeltaTable

    path = Lake(str(lake)).path(catalog.RUNS)
    if not (Path(path) / "_delta_log").is_dir():
        return []
    columns = ["run_id", "step", "started_at", "finished_at", "status", "seconds", "rows_read", "rows_written"]
    return DeltaTable(path).to_pyarrow_table(columns=columns).to_pylist()


def _epoch(moment: dt.datetime) -> float:
    """Seconds since the epoch of a ledger time (naive times are UTC, as the ledger writes them)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def _add_spark_work(bench: Bench, rows: dict[str, dict], ledger: dict[str, dict]) -> None:
    """Each step's Spark queries, jobs and longest call sites (`bench.spark_events`), added to its row."""
    windows = {step: (_epoch(entry["started_at"]), _epoch(entry["finished_at"])) for step, entry in ledger.items() if step in rows}
    try:
        work = work_by_step(read_events(bench.work / "events"), windows)
    except (OSError, ValueError) as exc:
        print(f"bench: no Spark work per step ({exc})", file=sys.stderr)
        return
    for step, found in work.items():
        rows[step].update(found.as_row())


def _crosswalk(lake: Path, out: Path) -> None:
    """The crosswalk as it stands, saved to a Parquet file (for the incremental run's agreement)."""
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    table = DeltaTable(Lake(str(lake)).path(catalog.CUSTOMER_XREF)).to_pyarrow_table(columns=["mention_id", "customer_id"])
    pq.write_table(table, out)


def _fmt(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_table(result: dict) -> str:
    header = ("stage", "wall s", "rows in", "rows out", "rows/s", "driver MiB", "JVM MiB", "tree MiB", "queries", "jobs")
    lines = [header]
    for r in result["stages"]:
        lines.append(
            (
                r["stage"],
                f"{r['seconds']:.1f}",
                _fmt(r["rows_in"]),
                _fmt(r["rows_out"]),
                _fmt(r["rows_per_second"]),
                _fmt(r["driver_peak_mib"]),
                _fmt(r["jvm_peak_mib"]),
                _fmt(r["tree_peak_mib"]),
                _fmt(r.get("spark_queries")),
                _fmt(r.get("spark_jobs")),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = ["| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))) + " |" for line in lines]
    rendered.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out = ["\n".join(rendered), ""]
    for key in ("resolution", "plain_splink", "resolution_incremental"):
        scores = result.get(key)
        if scores:
            out.append(
                f"{key:<24} precision {scores['pairwise_precision']:.4f}  recall {scores['pairwise_recall']:.4f}"
                f"  F1 {scores['pairwise_f1']:.4f}"
            )
    consent = result.get("consent")
    if consent:
        out.append(
            f"{'consent':<24} reachable {consent['reachable']}  leaked {consent['leaked_rows']}"
            f" (split {consent['leaked_split']}, missed {consent['leaked_missed']})  list rows leaked {consent['audience_rows_leaked']}"
            f" of {consent['audience_rows']}  held back in doubt {consent['held_back_in_doubt']}"
        )
    for name, target in result["targets"].items():
        figures = ", ".join(f"{k} {round(v, 4) if isinstance(v, float) else v}" for k, v in target.items() if k != "met")
        out.append(f"target {name:<30} {'met' if target['met'] else 'NOT met'} ({figures})")
    return "\n".join(out)


def compare(result: dict, old: dict) -> str:
    before = {r["stage"]: r for r in old["stages"]}
    lines = [f"against {old.get('started', '?')} ({old.get('customers')} customers):"]
    for r in result["stages"]:
        o = before.get(r["stage"])
        if o and o["seconds"]:
            lines.append(f"  {r['stage']:<22} {o['seconds']:>8.1f}s -> {r['seconds']:>8.1f}s  ×{r['seconds'] / o['seconds']:.2f}")
    return "\n".join(lines)


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _machine() -> dict:
    memory = next((int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return {"cpus": os.cpu_count(), "memory_gib": round(memory / GIB, 1)}


def _generate(bench: Bench, args: argparse.Namespace) -> None:
    """Generate the feeds unless `generated/` already holds the same customers and seed."""
    from bench.incremental import split_feed_files

    generated = bench.work / "generated"
    stamp = generated / ".bench.json"
    wanted = {"customers": args.customers, "seed": args.seed}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        print(f"bench: reusing {generated}")
    else:
        shutil.rmtree(generated, ignore_errors=True)
        row = bench.run("generate", [*_cdp(), "generate", "--customers", str(args.customers), "--seed", str(args.seed), "--out", str(generated)], rows_in=args.customers)
        if row["returncode"]:
            raise SystemExit(1)
        stamp.write_text(json.dumps(wanted))
    for folder in ("raw", "late"):
        shutil.rmtree(bench.work / folder, ignore_errors=True)
    held = split_feed_files(generated, bench.work / "raw", bench.work / "late", args.new_share, args.seed)
    shutil.copytree(generated / "truth", bench.work / "raw" / "truth")
    bench.held_back = held


def _ledger_row(stage: str, entry: dict, log: str) -> dict:
    """A stage row for a step of a pipeline run, timed by the run ledger; memory is the run's."""
    return {
        "stage": stage, "seconds": round(entry["seconds"], 1), "status": entry["status"], "rows_in": entry["rows_read"],
        "rows_out": entry["rows_written"], "rows_per_second": None, "driver_peak_mib": None, "jvm_peak_mib": None, "tree_peak_mib": None,
        "returncode": None, "log": log,
    }


def _annotate(bench: Bench, row: dict, step: str, incremental: bool = False) -> None:
    """Ingest's quarantined rows and resolve's phases, added to the step's row."""
    if step == "ingest" and not incremental:
        row["quarantined"] = lake_rows(bench.lake, "quarantine/*")
    if step == "resolve":
        row["phases"] = _resolve_phases(Path(row["log"]), incremental)
    if step == "features" and not incremental:
        row["dates"] = _feature_dates(Path(row["log"]))


def _pipeline(bench: Bench, cdp: list[str], args: argparse.Namespace) -> int:
    """Every step in one `cdp run pipeline` process (one Spark application, as a daily run is
    scheduled); each step's row comes from the run ledger, its rows from the Delta logs."""
    steps = [s for s in PIPELINE if s.name not in args.skip]
    only = [a for s in steps for a in ("--only", s.name)] if len(steps) < len(PIPELINE) else []
    known = {r["run_id"] for r in _ledger(bench.lake)}
    row = bench.run("pipeline", [*cdp, "run", "pipeline", "--as-of", args.as_of, *only], "bronze/*", "gold/customers")
    ledger = {r["step"]: r for r in _ledger(bench.lake) if r["run_id"] not in known}
    added: dict[str, dict] = {}
    for stage in steps:
        entry = ledger.get(stage.name)
        if entry is None:
            continue
        rows_in = lake_rows(bench.lake, stage.rows_in) if stage.rows_in else None
        step = _ledger_row(stage.name, entry, row["log"]) | {"step": True, "rows_in": rows_in}
        step["rows_out"] = lake_rows(bench.lake, stage.rows_out) if stage.rows_out else None
        step["rows_per_second"] = round(rows_in / entry["seconds"]) if rows_in and entry["seconds"] else None
        _annotate(bench, step, stage.name)
        bench.rows.append(step)
        added[stage.name] = step
    _add_spark_work(bench, added, ledger)
    return row["returncode"]


def _steps_apart(bench: Bench, cdp: list[str], args: argparse.Namespace) -> int:
    """Each step as a process of its own, as a scheduler running one task per step would."""
    for stage in PIPELINE:
        if stage.name in args.skip:
            continue
        row = bench.run(stage.name, [*cdp, *stage.args, *(["--as-of", args.as_of] if stage.dated else [])], stage.rows_in, stage.rows_out)
        row["step"] = True
        _annotate(bench, row, stage.name)
        if row["returncode"] and stage.name == "train_winback":
            print("bench: no win-back model, win-back list skipped", file=sys.stderr)
            return 0
        if row["returncode"]:
            return 1
    return 0


def _incremental(bench: Bench, cdp: list[str], args: argparse.Namespace, result: dict) -> int:
    """The held-back records in one `cdp run pipeline --incremental` process: ingested,
    resolved incrementally with the saved model, then every later step with the champion
    models (nothing is trained). Each step's row comes from the run ledger."""
    work = bench.work
    _crosswalk(bench.lake, work / "full_xref.parquet")
    for path in sorted((work / "late").glob("*/*")):
        shutil.copy(path, work / "raw" / path.parent.name / path.name)
    bronze, silver = lake_rows(bench.lake, "bronze/*"), lake_rows(bench.lake, "silver/*")
    known = {r["run_id"] for r in _ledger(bench.lake)}
    row = bench.run("incremental", [*cdp, "run", "pipeline", "--incremental", "--as-of", args.as_of])
    row["rows_in"] = lake_rows(bench.lake, "bronze/*") - bronze
    row["rows_out"] = lake_rows(bench.lake, "silver/*") - silver
    order = {stage.name: i for i, stage in enumerate(PIPELINE)}
    ledger = {r["step"]: r for r in _ledger(bench.lake) if r["run_id"] not in known}
    added: dict[str, dict] = {}
    for entry in sorted(ledger.values(), key=lambda r: order.get(r["step"], len(order))):
        bench.rows.append(_ledger_row(f"{entry['step']} (incremental)", entry, row["log"]))
        _annotate(bench, bench.rows[-1], entry["step"], incremental=True)
        added[entry["step"]] = bench.rows[-1]
    _add_spark_work(bench, added, ledger)
    if row["returncode"]:
        return 1
    _crosswalk(bench.lake, work / "incremental_xref.parquet")
    result["incremental_agreement"] = agreement(work / "incremental_xref.parquet", work / "full_xref.parquet")
    truth = str(work / "raw" / "truth" / "mentions.csv")
    evaluation = bench.run("evaluate_incremental", [*cdp, "evaluate", "resolution", "--truth", truth, "--out", str(work / "resolution_incremental.json")])
    if evaluation["returncode"]:
        return 1
    result["resolution_incremental"] = json.loads((work / "resolution_incremental.json").read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", default="2026-07-01", help="date the features, segments and lists are built for")
    parser.add_argument("--new-share", type=float, default=0.01, help="share of records held back for the incremental run")
    parser.add_argument("--work", required=True, help="working folder; its lake is rebuilt on every run")
    parser.add_argument("--skip", action="append", default=[], help="a stage to leave out (e.g. plain_splink); repeatable")
    parser.add_argument("--steps-apart", action="store_true", help="run each step as a process of its own instead of one pipeline run")
    parser.add_argument("--json", help="result file (default WORK/bench.json)")
    parser.add_argument("--compare", help="an earlier result file to compare stage times with")
    args = parser.parse_args(argv)

    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for stale in ("lake", "mlflow.db", "mlruns", "logs", "events", "plain_splink.json", "resolution.json", "resolution_incremental.json",
                  "full_xref.parquet", "incremental_xref.parquet"):
        path = work / stale
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    profile = write_profile(work)
    env = {**os.environ, "CDP_CONF": str(profile)}
    bench = Bench(work, env)
    truth = str(work / "raw" / "truth" / "mentions.csv")
    result: dict = {
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "customers": args.customers,
        "seed": args.seed,
        "as_of": args.as_of,
        "new_share": args.new_share,
        "mode": "steps apart" if args.steps_apart else "one pipeline run",
        "commit": _git_commit(),
        "machine": _machine(),
    }
    cdp = _cdp()
    status = 0
    baseline_failed = False
    try:
        _generate(bench, args)
        result["held_back_records"] = bench.held_back
        status = (_steps_apart if args.steps_apart else _pipeline)(bench, cdp, args)
        if not status:
            evaluation = bench.run("evaluate", [*cdp, "evaluate", "resolution", "--truth", truth, "--out", str(work / "resolution.json")])
            status = evaluation["returncode"]
            if not status:
                result["resolution"] = json.loads((work / "resolution.json").read_text())
        if not status:
            consent = bench.run("evaluate_consent", [*cdp, "evaluate", "consent", "--truth", str(Path(truth).parent), "--out", str(work / "consent.json")])
            status = consent["returncode"]
            if not status:
                result["consent"] = json.loads((work / "consent.json").read_text())
        if not status and "plain_splink" not in args.skip:
            plain = bench.run(
                "plain_splink",
                [sys.executable, "-m", "bench.plain_splink", "--conf", str(profile), "--truth", truth, "--json", str(work / "plain_splink.json")],
                rows_in="gold/person_mentions",
            )
            if plain["returncode"]:  # the baseline failing does not stop the platform's stages
                baseline_failed = True
                print("bench: plain Splink failed; the run goes on without the comparison", file=sys.stderr)
            else:
                result["plain_splink"] = json.loads((work / "plain_splink.json").read_text())
        if not status and args.new_share > 0 and "incremental" not in args.skip:
            status = _incremental(bench, cdp, args, result)
    finally:
        result["stages"] = bench.rows
        result["targets"] = targets(result)
        out = Path(args.json) if args.json else work / "bench.json"
        out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print()
    print(format_table(result))
    if args.compare:
        print(compare(result, json.loads(Path(args.compare).read_text())))
    print(f"\nbench: results in {out}")
    return status or int(baseline_failed)


if __name__ == "__main__":
    sys.exit(main())
