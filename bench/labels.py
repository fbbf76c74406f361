"""The golden phase's labelled links on DuckDB (`entity_resolution.duckdb_engine.label_links_in_duckdb`:
each mention's strongest link, the review band's pairs with their customers, the crosswalk's
rows) on a lake a full `cdp run resolve` has written, with no reviewers' decisions, in a given
number of buckets and DuckDB memory limit. Prints the wall time, the process's peak resident
memory, and the most DuckDB's temporary folder and the intermediate files held (sampled every
second); with `--compare`, whether the rows equal those of an earlier run's `--out`.

    python -m bench.labels --lake /tmp/cdp-bench/lake --out /tmp/labels5 [--buckets 5] [--memory-limit 1GB] [--compare /tmp/labels1]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import threading
import time
from pathlib import Path

__all__ = ["main"]

_OUTPUTS = ("strongest_links", "labelled_pairs", "customer_xref")


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.exists() else 0


def main(argv: list[str] | None = None) -> int:
    import duckdb

    from cdp import catalog
    from cdp.config import ResolutionConfig
    from cdp.reader import LakeReader, local_parquet_files, parquet_scan, text_table
    from entity_resolution.duckdb_engine import LinkSources, label_links_in_duckdb
    from entity_resolution.work import review_range

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", required=True, help="a lake a full resolve has written")
    parser.add_argument("--out", required=True, type=Path, help="a folder for the outputs, DuckDB's spill and the intermediate files")
    parser.add_argument("--buckets", type=int, default=1)
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB's, as resolve's `duckdb_settle_memory_limit`")
    parser.add_argument("--compare", type=Path, help="an earlier run's --out, whose rows these must equal")
    args = parser.parse_args(argv)

    reader = LakeReader(args.lake)
    resolved = reader.exists(catalog.PERSON_MENTIONS) and reader.exists(catalog.MATCH_PAIRS)
    mentions = local_parquet_files(reader.path(catalog.PERSON_MENTIONS)) if resolved else None
    pairs = local_parquet_files(reader.path(catalog.MATCH_PAIRS)) if resolved else None
    ids = Path(reader.path(catalog.work("resolution"))) / "customer_ids"
    if not mentions or not pairs or not ids.is_dir():
        parser.error(f"{args.lake}: no person_mentions, match_pairs or customer IDs on local disk; run `cdp run resolve` first")
    config = ResolutionConfig()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    spill, scratch = args.out / "duckdb_tmp", args.out / "label_buckets"
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    con.execute(f"SET temp_directory = '{spill}'")
    con.execute("SET enable_progress_bar = false")
    text_table(con, "decided", ("mention_id_l", "mention_id_r"), [])
    most = {"spill_bytes": 0, "intermediate_bytes": 0}
    running = True

    def sample() -> None:
        while running:
            most["spill_bytes"] = max(most["spill_bytes"], _size(spill))
            most["intermediate_bytes"] = max(most["intermediate_bytes"], _size(scratch))
            time.sleep(1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = tuple(str(args.out / f"{name}.parquet") for name in _OUTPUTS)
    started = time.perf_counter()
    try:
        label_links_in_duckdb(
            con,
            LinkSources(
                parquet_scan(pairs), parquet_scan(mentions),
                f"(SELECT mention_id, customer_id FROM read_parquet('{ids}/*.parquet') WHERE event IS NULL)", "",
            ),
            config.match_threshold, review_range(config), out, args.buckets, scratch,
        )
    finally:
        running = False
        sampler.join()
    result: dict[str, object] = {
        "buckets": args.buckets,
        "memory_limit": args.memory_limit,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "most_spill_gb": round(most["spill_bytes"] / 2**30, 1),
        "most_intermediate_gb": round(most["intermediate_bytes"] / 2**30, 1),
        **{f"{name}_rows": con.execute(f"SELECT count(*) FROM read_parquet('{path}/*.parquet')").fetchall()[0][0] for name, path in zip(_OUTPUTS, out)},
    }
    same = True
    if args.compare is not None:
        for name, path in zip(_OUTPUTS, out):
            theirs = f"read_parquet('{args.compare}/{name}.parquet/*.parquet')"
            ours = f"read_parquet('{path}/*.parquet')"
            differ = "SELECT count(*) FROM (SELECT * FROM {} EXCEPT ALL SELECT * FROM {})"
            only = (con.execute(differ.format(ours, theirs)).fetchall()[0][0], con.execute(differ.format(theirs, ours)).fetchall()[0][0])
            result[f"{name}_rows_only_here_and_there"] = only
            same = same and only == (0, 0)
    print(json.dumps(result, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
