"""One large repair-order export, ingested in byte ranges: past Spark's 2 GB file limit.

Writes a single `service_orders` CSV of about `--gib` GiB: the demo generator's repair orders
repeated under new order numbers, with a malformed row (short row, unclosed quote, bad date)
every `--bad-every` rows. Then runs `cdp run ingest` twice on a profile of its own, each as
its own process: the first loads it (timed, with peak memory), the second must load nothing.
Prints rows read, loaded and quarantined (read = loaded + quarantined is checked), rows/s
and the number of byte ranges. A benchmark, not a test: a 3 GiB file takes a while.

    python -m bench.big_file --gib 3 --work /tmp/cdp-big
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from bench.measure import lake_rows, run_measured

ROOT = Path(__file__).resolve().parent.parent
GIB = 1024**3


def _template(work: Path) -> tuple[str, list[list[str]]]:
    """The header and rows of a small generated repair-order feed."""
    raw = work / "template"
    if not (raw / "service_orders").is_dir():
        subprocess.run([sys.executable, "-m", "app.cli", "generate", "--customers", "300", "--seed", "7", "--out", str(raw)], check=True, cwd=ROOT)
    text = next((raw / "service_orders").glob("*.csv")).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    return ",".join(rows[0]), rows[1:]


def write_big_file(path: Path, target_bytes: int, bad_every: int, work: Path) -> tuple[int, int]:
    """(rows written, malformed rows among them)."""
    header, rows = _template(work)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = bad = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(header + "\n")
        writer = csv.writer(out, lineterminator="\n")
        while out.tell() < target_bytes:
            for row in rows:
                written += 1
                row = [f"RO{written:012d}", *row[1:]]
                if written % bad_every == 0:
                    bad += 1
                    kind = bad % 3
                    if kind == 0:
                        out.write(",".join(row[:3]) + "\n")  # short row
                        continue
                    if kind == 1:
                        out.write(",".join(row[:7]) + ',"' + ",".join(row[7:]) + "\n")  # unclosed quote
                        continue
                    row[2] = "2023/02/30 10:00"  # not a date
                writer.writerow(row)
            out.flush()
    return written, bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=3.0, help="file size in GiB")
    parser.add_argument("--bad-every", type=int, default=10_000, help="one malformed row in this many")
    parser.add_argument("--work", required=True)
    args = parser.parse_args(argv)
    work = Path(args.work)
    raw, lake = work / "raw", work / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    big = raw / "service_orders" / "service_orders_all.csv"
    if not big.exists() or big.stat().st_size < args.gib * GIB * 0.99:
        written, bad = write_big_file(big, int(args.gib * GIB), args.bad_every, work)
        print(f"wrote {big}: {big.stat().st_size / GIB:.2f} GiB, {written} rows, {bad} malformed", flush=True)
    profile = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text(encoding="utf-8"))
    profile["lake"] = {"root": str(lake), "raw_root": str(raw)}
    profile["spark"]["jars_dir"] = str(ROOT / "jars")
    profile["mlflow"] = {"tracking_uri": str(work / "mlflow.db"), "artifact_root": str(work / "mlruns")}
    (work / "conf").mkdir(exist_ok=True)
    (work / "conf" / "local.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    (work / "conf" / "feeds.yaml").write_text((ROOT / "conf" / "feeds.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    command = [sys.executable, "-m", "app.cli", "run", "ingest", "--feed", "service_orders", "--json", "--conf", str(work / "conf" / "local.yaml")]
    first = run_measured(command, work / "ingest.log")
    again = run_measured(command, work / "ingest_again.log")
    silver, quarantine, bronze = (lake_rows(lake, f"{layer}/service_orders") for layer in ("silver", "quarantine", "bronze"))
    size = big.stat().st_size
    from cdp.config import load_config

    split_bytes = load_config(str(work / "conf" / "local.yaml")).ingest.feeds["service_orders"].split_bytes
    result = {
        "file_bytes": size, "ranges": -(-size // split_bytes), "exit_codes": [first.returncode, again.returncode],
        "seconds": round(first.seconds, 1), "rerun_seconds": round(again.seconds, 1),
        "bronze_rows": bronze, "silver_rows": silver, "quarantined_rows": quarantine,
        "reconciled": bronze == silver + quarantine, "rows_per_second": round(bronze / first.seconds) if first.seconds else None,
        "tree_peak_mib": round(first.tree_peak / 2**20) if first.tree_peak else None,
    }
    print(json.dumps(result, indent=2))
    (work / "big_file.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if result["reconciled"] and first.returncode == 0 and again.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
