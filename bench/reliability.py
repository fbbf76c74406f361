"""Kill -9 at random points of real jobs, run them again, compare with a clean run.

For each job (ingest, resolve, an audience build), on generated data: a clean run from a
prepared lake gives the expected tables and the job's duration; then, `--kills` times, the
job starts on a fresh copy of the prepared lake, receives SIGKILL (the whole process group:
the Python driver and its JVM) after a seeded random share of the clean duration, and runs
again to the end. The re-run's lake must equal the clean one table by table (row hashes, load
times left out) with no duplicate keys. Figures go to stdout and `--json`.

    python -m bench.reliability --customers 300 --kills 10 --work /tmp/cdp-reliability
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from cdp.reliability import lake_fingerprint

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-07-01"
# Each job, the steps that prepare its input lake, and its command.
JOBS = {
    "ingest": ([], ["run", "ingest"]),
    "resolve": (["ingest"], ["run", "resolve", "--no-track"]),
    "audience": (["ingest", "resolve", "consent", "ownership", "features", "reminders"], ["audience", "build", "warranty_expiry_phone"]),
}


def _profile(work: Path, lake: Path, raw: Path) -> Path:
    conf = work / f"conf-{lake.name}"
    conf.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "conf").glob("*.yaml"):
        shutil.copy(path, conf / path.name)
    profile = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text(encoding="utf-8"))
    profile["spark"]["jars_dir"] = str(ROOT / "jars")
    profile["lake"] = {"root": str(lake), "raw_root": str(raw)}
    profile["mlflow"] = {"tracking_uri": str(work / f"mlflow-{lake.name}.db"), "artifact_root": str(work / f"mlruns-{lake.name}")}
    (conf / "local.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return conf / "local.yaml"


def _takes_as_of(args: list[str]) -> bool:
    """Whether the command has an `--as-of` option (a registered step's, or an audience build's)."""
    from app.registry import get_step

    if args[0] == "run":
        return any("--as-of" in getattr(p, "opts", ()) for p in get_step(args[1]).params)
    return args[0] == "audience"


def _cdp(args: list[str], profile: Path, log: Path) -> subprocess.Popen:
    as_of = ["--as-of", AS_OF] if _takes_as_of(args) else []
    out = log.open("a", encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args, *as_of, "--conf", str(profile)], stdout=out, stderr=subprocess.STDOUT,
        env={**os.environ, "CDP_CONF": str(profile)}, start_new_session=True,
    )


def _run(args: list[str], profile: Path, log: Path) -> None:
    if _cdp(args, profile, log).wait():
        raise SystemExit(f"reliability: `cdp {' '.join(args)}` failed; see {log}")


def _prepared(work: Path, raw: Path, job: str) -> Path:
    lake = work / f"prepared-{job}"
    shutil.rmtree(lake, ignore_errors=True)
    profile = _profile(work, lake, raw)
    for step in JOBS[job][0]:
        _run(["run", step], profile, work / f"{job}.log")
    return lake


def _trial(work: Path, raw: Path, prepared: Path, job: str, name: str, kill_after: float | None) -> tuple[dict, float, bool]:
    """(fingerprint, seconds, whether the kill landed before the job ended)."""
    lake = work / name
    shutil.rmtree(lake, ignore_errors=True)
    if prepared.exists():
        shutil.copytree(prepared, lake)
    profile = _profile(work, lake, raw)
    log = work / f"{name}.log"
    started = time.perf_counter()
    process = _cdp(JOBS[job][1], profile, log)
    killed = False
    if kill_after is not None:
        try:
            process.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            killed = True
        _run(JOBS[job][1], profile, log)
    elif process.wait():
        raise SystemExit(f"reliability: clean {job} failed; see {log}")
    return lake_fingerprint(lake), time.perf_counter() - started, killed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--kills", type=int, default=10, help="kill points per job")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--job", action="append", choices=sorted(JOBS), help="only this job; repeatable")
    parser.add_argument("--work", required=True)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    from datagen import generate

    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    raw = work / "raw"
    generate(args.customers, args.seed, raw, error_rate=0.01)
    rng = random.Random(args.seed)
    results = {}
    for job in args.job or list(JOBS):
        prepared = _prepared(work, raw, job)
        expected, seconds, _ = _trial(work, raw, prepared, job, f"{job}-clean", None)
        outcomes = []
        for k in range(args.kills):
            after = rng.uniform(0.05, 0.95) * seconds
            got, _, killed = _trial(work, raw, prepared, job, f"{job}-kill{k}", after)
            differing = sorted(t for t in expected.keys() | got.keys() if expected.get(t) != got.get(t))
            duplicates = sorted(t for t, f in got.items() if f["duplicate_keys"])
            outcomes.append({"kill_after_s": round(after, 1), "killed": killed, "equal": not differing, "differing": differing,
                             "duplicate_keys": duplicates})
            verdict = "equal to clean" if not differing else f"DIFFERS in {', '.join(differing)}"
            how = "killed" if killed else "ended before the kill (a replay)"
            print(f"{job:<10} kill {k + 1}/{args.kills} after {after:6.1f}s, {how}: re-run {verdict}", flush=True)
            shutil.rmtree(work / f"{job}-kill{k}", ignore_errors=True)
        equal = sum(o["equal"] for o in outcomes)
        landed = sum(o["killed"] for o in outcomes)
        results[job] = {"clean_seconds": round(seconds, 1), "trials": len(outcomes), "killed": landed, "equal_to_clean": equal, "outcomes": outcomes}
        print(f"{job:<10} clean {seconds:6.1f}s  trials {len(outcomes):>3}  killed {landed:>3}  re-run equal to clean {equal:>3}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0 if all(r["equal_to_clean"] == r["trials"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
