"""The settling on DuckDB (`entity_resolution.settle.settle_in_duckdb`: conflicts kept apart,
records that name nobody joined to their car's owner, the identified flag) on a lake a full
`cdp run resolve` has written, with no reviewers' decisions, its clusters kept apart rebuilt
`--batch-rows` mentions and links at a time. Reads the mentions and the clusters the run left
in its work folder and the links of `gold.match_pairs` at the match threshold. Prints the wall
time, the process's peak resident memory and the rows; with `--compare`, whether the rows equal
another settling's (the run's own `resolved_clusters.parquet`, or an earlier run's `--out`).

    python -m bench.settle --lake /tmp/cdp-bench/lake --out /tmp/settle [--batch-rows 2000000] [--memory-limit 1GB]
        [--compare /tmp/cdp-bench/lake/_work/resolution/resolved_clusters.parquet]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import time
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    import duckdb

    from cdp import catalog
    from cdp.config import ResolutionConfig
    from cdp.reader import LakeReader, local_parquet_files, parquet_scan
    from entity_resolution.overrides import Overrides
    from entity_resolution.settle import SETTLE_BATCH_ROWS, settle_in_duckdb

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", required=True, help="a lake a full resolve has written")
    parser.add_argument("--out", required=True, type=Path, help="a folder for the output and DuckDB's spill")
    parser.add_argument("--batch-rows", type=int, default=SETTLE_BATCH_ROWS)
    parser.add_argument("--memory-limit", default="1GB", help="DuckDB's, as resolve's `duckdb_settle_memory_limit`")
    parser.add_argument("--compare", type=Path, help="a settling's Parquet file or folder, whose rows these must equal")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # how many clusters were kept apart, in how many batches

    if args.batch_rows < 1:
        parser.error(f"--batch-rows must be 1 or more, not {args.batch_rows}")
    reader = LakeReader(args.lake)
    work = Path(reader.path(catalog.work("resolution")))
    pairs = local_parquet_files(reader.path(catalog.MATCH_PAIRS)) if reader.exists(catalog.MATCH_PAIRS) else None
    if not pairs or not (work / "mentions").is_dir() or not (work / "clusters.parquet").is_file():
        parser.error(f"{args.lake}: no match_pairs, or no mentions and clusters in {work}; run `cdp run resolve` first")
    config = ResolutionConfig()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    con.execute(f"SET temp_directory = '{args.out / 'duckdb_tmp'}'")
    con.execute("SET enable_progress_bar = false")
    started = time.perf_counter()
    con.execute(f"CREATE TABLE mentions AS SELECT * FROM read_parquet('{work}/mentions/*.parquet')")
    con.execute(f"CREATE TABLE clusters AS SELECT * FROM read_parquet('{work}/clusters.parquet')")
    links = (
        f"(SELECT mention_id_l AS id_l, mention_id_r AS id_r, match_probability FROM {parquet_scan(pairs)} "
        f"WHERE match_probability >= {float(config.match_threshold)!r})"
    )
    loaded = time.perf_counter()
    out = args.out / "resolved_clusters.parquet"
    settle_in_duckdb(con, "mentions", "clusters", links, Overrides(), config, str(out), args.batch_rows)
    result: dict[str, object] = {
        "batch_rows": args.batch_rows,
        "memory_limit": args.memory_limit,
        "load_seconds": round(loaded - started, 1),
        "settle_seconds": round(time.perf_counter() - loaded, 1),
        "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rows": con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchall()[0][0],
    }
    same = True
    if args.compare is not None:
        theirs = f"read_parquet('{args.compare}/**/*.parquet')" if args.compare.is_dir() else f"read_parquet('{args.compare}')"
        ours = f"read_parquet('{out}')"
        differ = "SELECT count(*) FROM (SELECT mention_id, cluster_id, identified FROM {} EXCEPT ALL SELECT mention_id, cluster_id, identified FROM {})"
        only = (con.execute(differ.format(ours, theirs)).fetchall()[0][0], con.execute(differ.format(theirs, ours)).fetchall()[0][0])
        result["rows_only_here_and_there"] = only
        same = only == (0, 0)
    print(json.dumps(result, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
