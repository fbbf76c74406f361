"""Connected components of a full resolve's scored pairs: Splink's clustering against the
DuckDB engine's own (`entity_resolution.duckdb_engine.connected_components`), one after the
other in one process on the same DuckDB tables, on a lake a full `cdp run resolve` has written.
Prints the wall time of each, the process's peak resident memory after loading and after each
(ours runs first; `--only` runs one, for its own peak), and whether the two give the same rows
(id, cluster_id).

    python -m bench.clustering --lake /tmp/cdp-bench/lake [--only duckdb_engine|splink]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

__all__ = ["main"]


def _peak_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main(argv: list[str] | None = None) -> int:
    import duckdb
    from splink import DuckDBAPI
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    from cdp import catalog
    from cdp.reader import LakeReader, local_parquet_files, parquet_scan
    from entity_resolution.duckdb_engine import connected_components

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", required=True, help="a lake a full resolve has written")
    parser.add_argument("--threshold", type=float, default=0.95)
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB's, as resolve's `duckdb_memory_limit`")
    parser.add_argument("--only", choices=["duckdb_engine", "splink"], help="run one of the two (its own peak memory), compare none")
    args = parser.parse_args(argv)

    reader = LakeReader(args.lake)
    mentions = local_parquet_files(reader.path(catalog.PERSON_MENTIONS))
    pairs = local_parquet_files(reader.path(catalog.MATCH_PAIRS))
    if not mentions or not pairs:
        parser.error(f"{args.lake}: no person_mentions or match_pairs on local disk; run `cdp run resolve` first")
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    con.execute(f"CREATE TABLE nodes AS SELECT mention_id AS id FROM {parquet_scan(mentions)}")
    con.execute(
        "CREATE TABLE edges AS SELECT least(mention_id_l, mention_id_r) AS id_l, greatest(mention_id_l, mention_id_r) AS id_r, "
        f"match_probability FROM {parquet_scan(pairs)} WHERE match_probability >= {args.threshold!r}"
    )
    result: dict[str, object] = {
        "nodes": con.execute("SELECT count(*) FROM nodes").fetchall()[0][0],
        "edges": con.execute("SELECT count(*) FROM edges").fetchall()[0][0],
        "peak_mib_after_loading": _peak_mib(),
    }
    if args.only != "splink":
        started = time.perf_counter()
        connected_components(con, "nodes", "edges", args.threshold, "ours")
        result["duckdb_engine_seconds"] = round(time.perf_counter() - started, 2)
        result["peak_mib_after_duckdb_engine"] = _peak_mib()
    if args.only != "duckdb_engine":
        api = DuckDBAPI(con)
        started = time.perf_counter()
        splinks = cluster_pairwise_predictions_at_threshold(
            api.register("nodes"), api.register("edges"), db_api=api, node_id_column_name="id", threshold_match_probability=args.threshold
        )
        con.execute(f"CREATE TABLE splinks AS SELECT id, cluster_id FROM {splinks.physical_name}")
        result["splink_seconds"] = round(time.perf_counter() - started, 2)
        result["peak_mib_after_splink"] = _peak_mib()
    if args.only:
        print(json.dumps(result, indent=2))
        return 0
    differ = "SELECT count(*) FROM (SELECT id, cluster_id FROM {} EXCEPT ALL SELECT id, cluster_id FROM {})"
    result["rows_only_in_ours"] = con.execute(differ.format("ours", "splinks")).fetchall()[0][0]
    result["rows_only_in_splinks"] = con.execute(differ.format("splinks", "ours")).fetchall()[0][0]
    result["clusters"] = con.execute("SELECT count(DISTINCT cluster_id) FROM ours").fetchall()[0][0]
    print(json.dumps(result, indent=2))
    return 0 if result["rows_only_in_ours"] == result["rows_only_in_splinks"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
