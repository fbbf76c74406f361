"""The DuckDB linkage engine: Splink on DuckDB inside the driver's process, for one machine.

Tables pass between Spark and DuckDB as Parquet files in the work folder. Beyond the base
class, it clusters the scored pairs where it holds them, settles those clusters and gives
them stable IDs in its database, reads the scored pairs' files for the golden phase's links
and, with the mentions on local disk, reads their files itself for training, for prediction and
for the golden profiles and vehicle links. Each gives the same rows as the base class
(`engines.LinkageEngine`, on Spark), checked on random inputs in the tests, but for training's
EM buckets: a hash of each block's key as well, DuckDB's rather than Spark's.
"""

from __future__ import annotations

import logging
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.config import ResolutionConfig
from cdp.lake import table_exists
from cdp.reader import local_parquet_files, parquet_scan, text_table
from cdp.spark import give_back_heap
from entity_resolution.crosswalk import XREF_COLUMNS
from entity_resolution.engines import (
    LabelledLinks,
    LinkageEngine,
    Prediction,
    as_mention_clusters,
    capped_blocking_in_duckdb,
    em_buckets_in_duckdb,
)
from entity_resolution.golden import build_customer_vehicles, build_customer_vehicles_in_duckdb, build_customers, build_customers_in_duckdb
from entity_resolution.incremental import incremental_scope_in_duckdb
from entity_resolution.model import StreamingDuckDBAPI, duckdb_one_thread, reference_u_probability_in_duckdb
from entity_resolution.overrides import Overrides
from entity_resolution.settle import SETTLE_BATCH_ROWS, settle_in_duckdb
from entity_resolution.stable_ids import assign_customer_ids_in_duckdb
from entity_resolution.work import review_range, split_ids

__all__ = ["DuckDBEngine", "LinkSources", "connected_components", "duckdb_time_zone", "label_links_in_duckdb"]

log = logging.getLogger(__name__)


class DuckDBEngine(LinkageEngine):
    name = "duckdb"
    # The golden phase's links are split into buckets of this many customers' mentions
    # (`label_links_in_duckdb`). At 1,000,000 customers the customer IDs of 19.6 million
    # mentions took 1.2 GB of DuckDB's memory as one table, past the settling's limit of 1 GB,
    # and joining 199 million pairs to them at both ends spilled 37 GB to disk.
    label_bucket_mentions = 4_000_000
    # The clusters kept apart are rebuilt this many mentions and links at a time (`settle_in_duckdb`).
    settle_batch_rows = SETTLE_BATCH_ROWS

    def __init__(
        self, spark: SparkSession, work_dir: str, memory_limit: str, settle_memory_limit: str | None = None, on_disk: bool = False
    ) -> None:
        super().__init__(spark, work_dir)
        # The linkage's tables in a database file rather than in memory (`on_disk`): at
        # 1,000,000 customers the chunks' scored pairs piled up beside the next chunk's work,
        # and a late chunk of 16 ran out of DuckDB's memory.
        self._database = f"{_local(work_dir)}/linkage.duckdb" if on_disk else ":memory:"
        self._drop_database()
        self._memory_limit = memory_limit
        # After the linkage: the settling, the IDs and the golden phase's links run while the
        # JVM holds the most it will (it has just written the pairs, and writes beside them).
        self._settle_memory_limit = settle_memory_limit or memory_limit
        self._con = self._connect(memory_limit, self._database)
        self._api = StreamingDuckDBAPI(self._con)
        # The clusters `cluster_scored` returned last, and their table in the database; the
        # rows `settle` returned last, and their file.
        self._held: tuple[DataFrame, str] | None = None
        self._settled: tuple[DataFrame, str] | None = None
        # The golden tables DuckDB builds, written side by side by Spark, are built one at a
        # time: each connection may take the settling's memory limit, beside the links' own.
        self._golden_builds = threading.Lock()

    def _connect(self, memory_limit: str, database: str = ":memory:") -> Any:
        import duckdb

        if database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(database)
        # Unbounded, DuckDB takes up to 80% of RAM (20 GB measured at a million records).
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{_local(self.work_dir)}/duckdb_tmp'")
        return con

    @property
    def db_api(self) -> Any:
        return self._api

    def register(self, df: DataFrame, name: str) -> Any:
        path = f"{self.work_dir}/{name}"
        df.write.mode("overwrite").parquet(path)
        give_back_heap(self.spark)  # what the write took, before DuckDB loads and links beside it
        self._con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet('{_local(path)}/*.parquet')")
        return self._api.register(name)

    @contextmanager
    def pairs_unstored(self) -> Iterator[None]:
        with self._api.pairs_unstored():
            yield

    def after_training(self) -> None:
        """Drop EM's blocked pairs and comparison vectors, which Splink keeps in the database
        (views, made within `pairs_unstored`; tables otherwise, which at 1,000,000 customers
        held 38 GB of DuckDB's spill when prediction began). Term frequencies stay
        (prediction reads them)."""
        starts = " OR ".join(f"starts_with(name, '{p}')" for p in StreamingDuckDBAPI.PAIR_TABLES)
        left = self._con.execute(
            "SELECT kind, name FROM (SELECT 'VIEW' AS kind, view_name AS name FROM duckdb_views() "
            f"UNION ALL SELECT 'TABLE', table_name FROM duckdb_tables()) WHERE {starts}"
        ).fetchall()
        for kind, name in left:
            self._con.execute(f"DROP {kind} {name}")
        self._checkpoint()

    def _checkpoint(self) -> None:
        """Make the blocks of the tables dropped since the last checkpoint free for new ones.
        In a database file DuckDB reuses them only after one: each chunk of a prediction
        otherwise grew the file by what its dropped tables held (at 1,000,000 customers from
        15.0 GB after 4 chunks of 16 to 26.4 GB after 12)."""
        self._con.execute("CHECKPOINT")

    @contextmanager
    def spilling(self) -> Iterator[None]:
        """Without insertion order DuckDB can spill what it would otherwise hold in memory
        (its own advice when a chunk ran out of memory at 1,000,000 customers)."""
        self._con.execute("SET preserve_insertion_order = false")
        try:
            yield
        finally:
            self._con.execute("RESET preserve_insertion_order")

    def scalar(self, sql: str) -> Any:
        return self._con.execute(sql).fetchall()[0][0]

    def load_for_prediction(self, mentions: DataFrame, config: ResolutionConfig, table: str | None = None) -> tuple[Any, DataFrame, list[Any] | None]:
        """Read by DuckDB from the Delta table's files when they are on this machine's disk,
        the blocks sized there too (`capped_blocking_in_duckdb`); else as the base class does.
        At 100,000 customers an incremental run's Spark pass to size the blocks and its write
        of the keyed mentions for DuckDB took 9.0 s and 8.2 s. The rows handed back are
        `mentions`: `register_new_and_existing` selects in the database."""
        source = self._local_mentions(table)
        if source is None:
            return super().load_for_prediction(mentions, config, table)
        rules = capped_blocking_in_duckdb(self._con, source, config.model, "mentions")
        return self._api.register("mentions"), mentions, rules

    def load_for_training(self, mentions: DataFrame, config: ResolutionConfig, table: str | None = None) -> tuple[Any, list[Any] | None, float | None]:
        """Read by DuckDB as for prediction (`load_for_prediction`), with the EM buckets by
        DuckDB's hash (`engines.em_buckets_in_duckdb`) and the u of one mention naming the
        other counted there; else as the base class does. At 100,000 customers Spark's passes
        (the blocks sized, the buckets, the count and the write) took 25.4 s of a full run."""
        source = self._local_mentions(table)
        if source is None:
            return super().load_for_training(mentions, config, table)
        rules = capped_blocking_in_duckdb(self._con, f"(SELECT *{em_buckets_in_duckdb(config.model)} FROM {source})", config.model, "mentions")
        return self._api.register("mentions"), rules, reference_u_probability_in_duckdb(self._con, "mentions")

    def _local_mentions(self, table: str | None) -> str | None:
        """The files of the mentions' Delta table `table` as a DuckDB scan, when they are on
        this machine's disk (else None), with the JVM's idle heap given back first."""
        files = local_parquet_files(table) if table is not None else None
        if files is None:
            return None
        give_back_heap(self.spark)  # what writing the mentions took, before DuckDB loads and links beside it
        Path(_local(self.work_dir)).mkdir(parents=True, exist_ok=True)  # for the pairs it writes: Spark has written nothing there
        return parquet_scan(files)

    def customers(self, resolved: DataFrame, config: ResolutionConfig, mentions_table: str, ids_path: str) -> DataFrame:
        """Built by DuckDB (`golden.build_customers_in_duckdb`) when the mentions are on this
        machine's disk (`_golden_table`)."""
        built = self._golden_table(
            mentions_table, ids_path, None, "customers", lambda con, source, out: build_customers_in_duckdb(con, source, config, out)
        )
        if built is None:
            return super().customers(resolved, config, mentions_table, ids_path)
        return _typed_as(built, build_customers(resolved, config))

    def vehicles(self, resolved: DataFrame, mentions_table: str, ids_path: str, vins_path: str | None = None) -> DataFrame:
        """Built by DuckDB (`golden.build_customer_vehicles_in_duckdb`) when the mentions are on
        this machine's disk (`_golden_table`), its dates in Spark's session time zone."""
        built = self._golden_table(mentions_table, ids_path, vins_path, "customer_vehicles", build_customer_vehicles_in_duckdb)
        if built is None:
            return super().vehicles(resolved, mentions_table, ids_path, vins_path)
        return _typed_as(built, build_customer_vehicles(resolved))

    def _golden_table(
        self, mentions_table: str, ids_path: str, vins_path: str | None, name: str, build: Callable[[Any, str, str], None]
    ) -> DataFrame | None:
        """`build(con, source, out)` on a connection of its own (the linkage's may be closed):
        `source` joins the mentions' files to the IDs' (a row with an `event` is no ID), with
        `vins_path` only the mentions of its VINs; `out`, a Parquet file in the work folder, is
        read back. None when the mentions are not on this machine's disk."""
        files = local_parquet_files(mentions_table)
        if files is None:
            return None
        out = f"{_local(self.work_dir)}/{name}.parquet"
        with self._golden_builds:
            self._build_golden(files, ids_path, vins_path, out, build)
        return self.spark.read.parquet(out)

    def _build_golden(self, files: list[str], ids_path: str, vins_path: str | None, out: str, build: Callable[[Any, str, str], None]) -> None:
        """`_golden_table`'s query, over the mentions' `files`."""
        ids = f"read_parquet('{_local(ids_path)}/*.parquet')"
        con = self._connect(self._settle_memory_limit)
        try:
            con.execute(f"SET TimeZone = '{duckdb_time_zone(self.spark.conf.get('spark.sql.session.timeZone') or 'UTC')}'")
            named = {d[0] for d in con.execute(f"SELECT * FROM {ids} LIMIT 0").description}
            assigned = f"(SELECT mention_id, customer_id FROM {ids}{' WHERE event IS NULL' if 'event' in named else ''})"
            source = f"SELECT m.*, i.customer_id FROM {parquet_scan(files)} m JOIN {assigned} i USING (mention_id)"
            if vins_path is not None:
                source += f" WHERE m.vin IN (SELECT vin FROM read_parquet('{_local(vins_path)}/*.parquet'))"
            build(con, f"({source})", out)
        finally:
            con.close()

    def register_new_and_existing(self, everything: DataFrame, everything_name: str, ids: DataFrame) -> tuple[Any, Any]:
        """The rows are in the database already: selected there, not computed and written out
        again; only the ids are, once."""
        path = f"{self.work_dir}/new_mention_ids"
        ids.select("mention_id").write.mode("overwrite").parquet(path)
        self._con.execute(f"CREATE OR REPLACE TABLE new_mention_ids AS SELECT * FROM read_parquet('{_local(path)}/*.parquet')")
        for name, join in (("new_mentions", "SEMI"), ("existing_mentions", "ANTI")):
            self._con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {everything_name} {join} JOIN new_mention_ids USING (mention_id)")
        return self._api.register("new_mentions"), self._api.register("existing_mentions")

    def to_spark(self, splink_df: Any, name: str, columns: list[str]) -> DataFrame:
        path = f"{self.work_dir}/{name}.parquet"
        relation = splink_df.as_duckdbpyrelation().select(", ".join(columns))
        relation.write_parquet(_local(path), overwrite=True)
        return self.spark.read.parquet(path)

    def _predict_at_once(self, linker: Any, threshold: float) -> tuple[DataFrame, Any]:
        """The blocked pairs and the scored pairs as views (`StreamingDuckDBAPI.pairs_unstored`):
        the pairs are made, scored and sorted by DuckDB into their file in one pass (Spark's
        sort of the same pairs took longer), and `scored` is a view of that file. At 300,000
        customers DuckDB's temporary folder peaked at 21.8 GiB so, and at 32.6 GiB with both
        stored; prediction took 307.0 s against 340.5 s. A pass that runs out of DuckDB's
        memory is made again with the pairs stored (as in the 300,000-customer pipeline, right
        after training: 460.6 s in all, of them about 150 s in the failed pass)."""
        import duckdb

        path = f"{self.work_dir}/pairs.parquet"

        def predicted_and_sorted() -> Any:
            predictions = linker.inference.predict(threshold_match_probability=threshold)
            self._write_sorted(predictions.physical_name, _local(path), overwrite=True)
            return predictions

        try:
            with self._api.pairs_unstored(StreamingDuckDBAPI.PREDICTION_TABLES, inline_ctes=True):
                predictions = predicted_and_sorted()
        except duckdb.OutOfMemoryException as exc:
            # Making, scoring and sorting every pair in one query holds more at once than
            # storing them first: right after training, the 300,000-customer pipeline's
            # prediction ran out of DuckDB's memory so (2.7 GiB of a 3 GB limit).
            log.warning("predict: in one pass DuckDB ran out of memory (%s); again with the pairs stored", str(exc).splitlines()[0])
            predictions = predicted_and_sorted()
        predictions.drop_table_from_database_and_remove_from_cache()
        return self.spark.read.parquet(path), self._scored(_local(path))

    def _scored(self, files: str) -> Any:
        """`Prediction.scored`: a view of the sorted pairs' Parquet `files`."""
        self._con.execute(f"CREATE OR REPLACE VIEW scored_pairs AS SELECT * FROM read_parquet('{files}')")
        return self._api.register("scored_pairs")

    def _write_sorted(self, table: str, path: str, overwrite: bool = False) -> None:
        """Splink's scored pairs in `table` to the Parquet file `path`, mention_id_l <
        mention_id_r, in (mention_id_l, mention_id_r) order."""
        self._con.sql(
            "SELECT least(mention_id_l, mention_id_r) AS mention_id_l, greatest(mention_id_l, mention_id_r) AS mention_id_r, "
            f"match_probability, match_weight FROM {table} ORDER BY 1, 2"
        ).write_parquet(path, overwrite=overwrite)

    def _predict_in_chunks(self, linker: Any, chunks: int, threshold: float) -> tuple[DataFrame, Any]:
        """Each chunk's pairs sorted into a file of their own as soon as they are scored, and
        its table dropped: at 1,000,000 customers Splink's union of the chunks and the sort of
        all their pairs spilled 17 GB beside the database file (7 GB of the disk was left).
        `scored` is a view of the files, each in (mention_id_l, mention_id_r) order."""
        from itertools import product

        folder = _empty_folder(f"{self.work_dir}/pairs.parquet")
        started = time.perf_counter()
        for number, (left, right) in enumerate(product(range(1, chunks + 1), repeat=2), start=1):
            chunk = linker.inference.predict_chunk(
                left_chunk=(left, chunks), right_chunk=(right, chunks), threshold_match_probability=threshold, warning_mode="never"
            )
            self._write_sorted(chunk.physical_name, str(folder / f"part-{number:05d}.parquet"))
            chunk.drop_table_from_database_and_remove_from_cache()
            self._checkpoint()
            held = f", database file {Path(self._database).stat().st_size / 2**20:.1f} MiB" if self._database != ":memory:" else ""
            log.info("predict: chunk %d of %d scored, %.0f s so far%s", number, chunks * chunks, time.perf_counter() - started, held)
        return self.spark.read.parquet(f"{self.work_dir}/pairs.parquet"), self._scored(f"{folder}/*.parquet")

    def cluster_scored(self, prediction: Prediction, nodes: DataFrame, changes: DataFrame | None, threshold: float) -> DataFrame:
        """Clusters from the scored pairs where DuckDB keeps them: millions of pairs are not
        written out by Spark and read in again, only the reviewers' few changes are."""
        if prediction.scored is None:
            return super().cluster_scored(prediction, nodes, changes, threshold)
        # Spark has just written the pairs: the heap that took is given back before DuckDB
        # clusters them (its process held up to 2.9 GB doing so at 100,000 customers).
        give_back_heap(self.spark)
        scored = (
            f"SELECT least(mention_id_l, mention_id_r) AS id_l, greatest(mention_id_l, mention_id_r) AS id_r, match_probability "
            f"FROM {prediction.scored.physical_name} WHERE match_probability >= {float(threshold)!r}"
        )
        if changes is not None:
            self.register(changes, "override_changes")
            scored = (
                f"SELECT s.* FROM ({scored}) s ANTI JOIN override_changes c ON s.id_l = c.mention_id_l AND s.id_r = c.mention_id_r "
                "UNION ALL SELECT mention_id_l, mention_id_r, match_probability FROM override_changes WHERE match_probability IS NOT NULL"
            )
        self._con.execute(f"CREATE OR REPLACE TABLE cluster_edges AS {scored}")
        held = self._cluster_table(self.register(nodes.select("id"), "cluster_nodes"), self._api.register("cluster_edges"), threshold)
        clusters = as_mention_clusters(self.to_spark(held, "clusters", ["id", "cluster_id"]))
        self._held = (clusters, held.physical_name)
        return clusters

    def _cluster_table(self, nodes: Any, edges: Any, threshold: float) -> Any:
        """The same clusters as Splink's, by `connected_components` (Splink's SQL walks the
        graph one step per query)."""
        connected_components(self._con, nodes.physical_name, edges.physical_name, threshold, "cluster_components")
        return self._api.register("cluster_components")

    def stored_pairs(self, pairs_table: str, pairs: DataFrame, out_path: str) -> DataFrame:
        """The same, in DuckDB over the table's files: at 100,000 customers, looking up 1,200
        pairs among 20 million took 0.4 s."""
        files = local_parquet_files(pairs_table)
        if files is None:
            return super().stored_pairs(pairs_table, pairs, out_path)
        keys_path = f"{self.work_dir}/stored_pairs_keys"
        pairs.select("mention_id_l", "mention_id_r").write.mode("overwrite").parquet(keys_path)
        folder = _empty_folder(out_path)
        con = self._connect(self._settle_memory_limit)
        try:
            con.execute(f"""
                COPY (
                    SELECT * FROM {parquet_scan(files)}
                    SEMI JOIN (SELECT DISTINCT mention_id_l, mention_id_r FROM read_parquet('{_local(keys_path)}/*.parquet')) k
                    USING (mention_id_l, mention_id_r)
                ) TO '{folder / 'part-00000.parquet'}' (FORMAT parquet)
            """)
        finally:
            con.close()
        return self.spark.read.parquet(out_path)

    def scope(
        self, mentions_table: str, xref_table: str, based_on: int, fresh: DataFrame, new_pairs: DataFrame,
        overrides: Overrides, threshold: float, out_path: str,
    ) -> DataFrame:
        """The same, in DuckDB over the mentions' and the crosswalk's files, on a connection of
        its own: at 100,000 customers (1,978,873 mentions), the cluster phase took 6.8 s less
        than with Spark's joins. Tables not on this machine's disk, by the base class."""
        mention_files = local_parquet_files(mentions_table)
        previous_files = local_parquet_files(xref_table, version=based_on) if based_on >= 0 else None
        if mention_files is None or previous_files is None:
            return super().scope(mentions_table, xref_table, based_on, fresh, new_pairs, overrides, threshold, out_path)
        inputs = {name: f"{self.work_dir}/scope_{name}" for name in ("fresh", "new_pairs")}
        fresh.select("mention_id").write.mode("overwrite").parquet(inputs["fresh"])
        new_pairs.select("mention_id_l", "mention_id_r", "match_probability").write.mode("overwrite").parquet(inputs["new_pairs"])
        folder = _empty_folder(out_path)
        con = self._connect(self._settle_memory_limit)
        try:
            query = incremental_scope_in_duckdb(
                con, parquet_scan(mention_files), parquet_scan(previous_files),
                *(f"read_parquet('{_local(path)}/*.parquet')" for path in inputs.values()), overrides, threshold,
            )
            con.execute(f"COPY ({query}) TO '{folder / 'part-00000.parquet'}' (FORMAT parquet)")
        finally:
            con.close()
        return self.spark.read.parquet(out_path)

    def settle(
        self, mentions: DataFrame, clusters: DataFrame, pairs_table: str, overrides: Overrides, config: ResolutionConfig
    ) -> DataFrame:
        """The same, in DuckDB: at 100,000 customers Spark took about 95 s. Clusters this engine
        made of its own scored pairs (`cluster_scored`) are settled with the mentions it linked
        and the links it clustered. Others (an incremental run's) are loaded with their
        mentions, and the links are read from the pairs' files: at 100,000 customers, Spark
        took 29.4 s to settle an incremental run's 294,746 mentions. Pairs not on this
        machine's disk, by the base class."""
        held = self._held
        if held is not None and clusters is held[0]:
            mentions_name, clusters_name, links = "mentions", held[1], "cluster_edges"
            # The linkage's other tables are dropped: Splink's scored pairs, with every
            # comparison's columns, are not spilled to make room, and at 300,000 customers
            # (68 million pairs) settling ran out of its memory beside them.
            self._drop_tables_but(mentions_name, clusters_name, links)
        elif (files := local_parquet_files(pairs_table)) is not None:
            mentions_name, links = "settle_mentions", (
                f"(SELECT mention_id_l AS id_l, mention_id_r AS id_r, match_probability FROM {parquet_scan(files)} "
                f"WHERE match_probability >= {float(config.match_threshold)!r})"
            )
            self.register(mentions, mentions_name)
            clusters_name = self.register(clusters.select(F.col("mention_id").alias("id"), "cluster_id"), "settle_clusters").physical_name
        else:
            return super().settle(mentions, clusters, pairs_table, overrides, config)
        path = f"{self.work_dir}/resolved_clusters.parquet"
        # What the linkage held beyond this is spilled to the work folder: with the settling's
        # tables at 100,000 customers, the process went from 2.3 to 1.0 GB and settling took
        # 21.2 s against 18.5 s. (Lowered before the clustering, that phase took 15 s longer.)
        self._con.execute(f"SET memory_limit = '{self._settle_memory_limit}'")
        settle_in_duckdb(self._con, mentions_name, clusters_name, links, overrides, config, _local(path), self.settle_batch_rows)
        settled = self.spark.read.parquet(path)
        self._settled = (settled, path)
        return settled

    def _drop_tables_but(self, *keep: str) -> None:
        """Drop the tables of the linkage's connection but those named `keep`: its Splink
        linker is not used after this."""
        held = self._con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()
        for schema, name in held:
            if name not in keep:
                self._con.execute(f'DROP TABLE "{schema}"."{name}"')
        self._checkpoint()

    def assign_ids(
        self, settled: DataFrame, xref_table: str, based_on: int, history_table: str, ids_path: str, cells_path: str,
        scope: str | None = None,
    ) -> tuple[DataFrame, DataFrame]:
        """The same, in DuckDB, for the clusters it settled (`settle`), reading the crosswalk's
        and the history's files, on a connection of its own: at 100,000 customers Spark's two
        passes took about 20 s. Any others, or tables not on local disk, by the base class."""
        held = self._settled
        previous = local_parquet_files(xref_table, version=based_on, empty=True) if based_on >= 0 else []
        history = local_parquet_files(history_table, empty=True) if table_exists(self.spark, history_table) else []
        if held is None or settled is not held[0] or previous is None or history is None:
            return super().assign_ids(settled, xref_table, based_on, history_table, ids_path, cells_path, scope)
        issued = [f"SELECT customer_id FROM {parquet_scan(history)} UNION ALL SELECT related_customer_id FROM {parquet_scan(history)}"] if history else []
        in_scope = ""
        if scope is not None and previous:
            issued.append(f"SELECT customer_id FROM {parquet_scan(previous)}")
            in_scope = f" p SEMI JOIN read_parquet('{_local(scope)}/*.parquet') s USING (mention_id)"
        folder = _empty_folder(ids_path)
        con = self._connect(self._settle_memory_limit)
        try:
            assign_customer_ids_in_duckdb(
                con,
                clusters=f"(SELECT mention_id, cluster_id FROM read_parquet('{_local(held[1])}') WHERE identified)",
                previous=f"(SELECT mention_id, customer_id FROM {parquet_scan(previous)}{in_scope})" if previous else None,
                issued=f"(SELECT customer_id FROM ({' UNION ALL '.join(issued)}) WHERE customer_id IS NOT NULL)" if issued else None,
                based_on_version=based_on,
                out_path=str(folder / "part-00000.parquet"),
            )
        finally:
            con.close()
        return split_ids(self.spark.read.parquet(ids_path))

    def label_links(
        self, pairs_table: str, ids_path: str, mentions_table: str, config: ResolutionConfig, decided: DataFrame | None,
        within: str | None = None,
    ) -> LabelledLinks:
        """The same, run by DuckDB over the pairs' and the mentions' Parquet files on a
        connection of its own (the linkage's may be closed), each written to a folder in the
        work folder (`label_links_in_duckdb`). At 100,000 customers, the strongest of 19
        million links of 2 million mentions took 3.9 s, where Spark's joins and aggregation
        took 28.7 s; an incremental run's links of 294,746 mentions (`within`) took Spark
        32.7 s to label. Over `label_bucket_mentions` customers' mentions, the work is split
        into buckets of them."""
        files, mention_files = local_parquet_files(pairs_table), local_parquet_files(mentions_table)
        if files is None or mention_files is None:
            return super().label_links(pairs_table, ids_path, mentions_table, config, decided, within)
        out = tuple(f"{_local(self.work_dir)}/{name}.parquet" for name in ("strongest_links", "labelled_pairs", "customer_xref"))
        con = self._connect(self._settle_memory_limit)
        try:
            # The reviewers' decisions: a few pairs, not a table's worth.
            rows = [(r.mention_id_l, r.mention_id_r) for r in decided.collect()] if decided is not None else []
            text_table(con, "decided", ("mention_id_l", "mention_id_r"), rows)
            ids = f"(SELECT mention_id, customer_id FROM read_parquet('{_local(ids_path)}/*.parquet') WHERE event IS NULL)"
            count = con.execute(f"SELECT count(*) FROM {ids}").fetchall()[0][0]
            pairs, mentions, inside = parquet_scan(files), parquet_scan(mention_files), ""
            if within is not None:
                con.execute(f"CREATE TEMP TABLE within_ids AS SELECT DISTINCT mention_id FROM read_parquet('{_local(within)}/*.parquet')")
                con.execute(f"""
                    CREATE TEMP TABLE pairs_within AS SELECT DISTINCT * FROM {pairs}
                    WHERE mention_id_l IN (SELECT mention_id FROM within_ids) OR mention_id_r IN (SELECT mention_id FROM within_ids)
                """)
                pairs, mentions, inside = "pairs_within", f"(SELECT * FROM {mentions} SEMI JOIN within_ids USING (mention_id))", "SEMI JOIN within_ids USING (mention_id)"
            label_links_in_duckdb(
                con, LinkSources(pairs, mentions, ids, inside), config.match_threshold, review_range(config), out,
                buckets=max(1, math.ceil(count / self.label_bucket_mentions)), scratch=Path(f"{_local(self.work_dir)}/label_buckets"),
            )
        finally:
            con.close()
        return LabelledLinks(*(self.spark.read.parquet(path) for path in out))

    def close(self) -> None:
        self._con.close()
        self._drop_database()

    def _drop_database(self) -> None:
        if self._database != ":memory:":
            for path in (self._database, f"{self._database}.wal"):
                Path(path).unlink(missing_ok=True)

    def reproducible(self) -> AbstractContextManager[None]:
        """One thread (`model.duckdb_one_thread`)."""
        return duckdb_one_thread(self._con)


class LinkSources(NamedTuple):
    """What the golden phase's links are labelled from, as DuckDB SQL: the scored `pairs`,
    the `mentions`, the customer `ids` (mention_id, customer_id), and `inside`, a clause that
    keeps an incremental run's mentions after a FROM (empty for all)."""

    pairs: str
    mentions: str
    ids: str
    inside: str


def label_links_in_duckdb(
    con: Any, sources: LinkSources, threshold: float, review: tuple[float, float], out: tuple[str, ...], buckets: int, scratch: Path
) -> None:
    """The golden phase's links (`LinkageEngine.label_links`) on `con`, which holds the table
    `decided` (the reviewers' pairs): each mention's strongest links within its customer, the
    pairs of the review band `review` (floor, top) with the customers at their ends, and the
    crosswalk's rows, each written to its folder of `out` (a file per bucket).

    In one bucket the customer IDs are one table, joined to the pairs at both ends. In more,
    everything is split by a hash of the mention, so that each join holds one bucket's IDs:
    the IDs; the pairs with their left end's customer, by their right end's bucket; per
    bucket of those, the review band's pairs and the links within one customer, with both
    ends' buckets; per bucket of mentions, their strongest links from the links at either
    end, then their crosswalk rows. No query holds more than one bucket's IDs or mentions: at
    1,000,000 customers grouping one bucket's links by mention, every mention at a left end,
    ran out of 1 GB. The intermediate files go to `scratch`, removed at the end."""
    floor, high = review
    for folder in (*out, scratch, scratch / "pairs", scratch / "links"):
        _empty_folder(str(folder))
    split = buckets > 1
    if split:  # Nothing here needs the rows in order (DuckDB's advice when it runs out of memory).
        con.execute("SET preserve_insertion_order = false")

    def part(folder: str | Path, bucket: int) -> str:
        return f"'{folder}/part-{bucket:05d}.parquet'"

    def bucket_of(column: str, name: str = "bucket") -> str:
        return f"hash({column}) % {buckets} AS {name}"

    def read(pattern: str, empty: str) -> str:
        """The files of a bucket under `scratch`, or the typed `empty` when it has none."""
        files = sorted(str(f) for f in scratch.glob(pattern))
        listed = ", ".join(f"'{f}'" for f in files)
        return f"read_parquet([{listed}], hive_partitioning = false)" if files else f"({empty} LIMIT 0)"

    if split:
        con.execute(f"COPY (SELECT *, {bucket_of('mention_id')} FROM {sources.ids}) TO '{scratch}/ids' (FORMAT parquet, PARTITION_BY (bucket))")
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE ids AS SELECT * FROM {sources.ids}")

    def ids(bucket: int) -> str:
        return read(f"ids/bucket={bucket}/*.parquet", "SELECT NULL::VARCHAR AS mention_id, NULL::VARCHAR AS customer_id") if split else "ids"

    with_left = f"SELECT p.*, l.customer_id AS customer_id_l FROM {sources.pairs} p JOIN {{ids}} l ON l.mention_id = p.mention_id_l"
    if split:
        for bucket in range(buckets):
            query = f"SELECT *, {bucket_of('mention_id_r')} FROM ({with_left.format(ids=ids(bucket))})"
            con.execute(f"COPY ({query}) TO '{scratch}/pairs/{bucket}' (FORMAT parquet, PARTITION_BY (bucket))")
    for bucket in range(buckets):
        # The pairs whose right end is in this bucket, with the customers at both ends.
        if split:
            left = read(f"pairs/*/bucket={bucket}/*.parquet", f"SELECT p.*, NULL::VARCHAR AS customer_id_l FROM {sources.pairs} p")
        else:
            left = f"({with_left.format(ids='ids')})"
        labelled = f"(SELECT h.*, r.customer_id AS customer_id_r FROM {left} h JOIN {ids(bucket)} r ON r.mention_id = h.mention_id_r)"
        con.execute(f"""
            COPY (SELECT * FROM {labelled} p WHERE p.match_probability >= {float(floor)!r} AND p.match_probability < {float(high)!r})
            TO {part(out[1], bucket)} (FORMAT parquet)
        """)
        links = f"""
            SELECT p.mention_id_l, p.mention_id_r, p.match_probability,
                   p.origin = 'model' AND d.mention_id_l IS NULL AS reviewable
            FROM {labelled} p
            LEFT JOIN decided d ON d.mention_id_l = p.mention_id_l AND d.mention_id_r = p.mention_id_r
            WHERE p.match_probability >= {float(threshold)!r} AND p.customer_id_l = p.customer_id_r
        """
        if split:  # Each mention's links are taken together below, from every bucket's file.
            ends = f"SELECT *, {bucket_of('mention_id_l', 'bucket_l')}, {bucket_of('mention_id_r', 'bucket_r')} FROM ({links})"
            con.execute(f"COPY ({ends}) TO {part(scratch / 'links', bucket)} (FORMAT parquet)")
        else:
            con.execute(f"COPY ({_strongest('links', 'links', sources.inside, links)}) TO {part(out[0], bucket)} (FORMAT parquet)")
    role = "CASE WHEN m.role = 'contact' THEN 'contact' ELSE 'primary' END"
    columns = {"role": role, "mention_role": "m.role", "customer_id": "i.customer_id", "match_probability": "s.match_probability"}
    for bucket in range(buckets):
        if split:
            every_link = read("links/*.parquet", "SELECT NULL::VARCHAR AS mention_id_l, NULL::VARCHAR AS mention_id_r, NULL::DOUBLE AS match_probability, NULL::BOOLEAN AS reviewable, 0 AS bucket_l, 0 AS bucket_r")
            strongest = _strongest(
                f"(SELECT * FROM {every_link} WHERE bucket_l = {bucket})", f"(SELECT * FROM {every_link} WHERE bucket_r = {bucket})", sources.inside
            )
            con.execute(f"COPY ({strongest}) TO {part(out[0], bucket)} (FORMAT parquet)")
        con.execute(f"""
            COPY (
                SELECT {", ".join(f"{columns.get(c, f'm.{c}')} AS {c}" for c in XREF_COLUMNS)}
                FROM {sources.mentions} m JOIN {ids(bucket)} i ON i.mention_id = m.mention_id
                LEFT JOIN read_parquet({part(out[0], bucket)}) s ON s.mention_id = m.mention_id
            ) TO {part(out[2], bucket)} (FORMAT parquet)
        """)
    shutil.rmtree(scratch, ignore_errors=True)


def _strongest(left: str, right: str, inside: str, links: str | None = None) -> str:
    """Each mention's strongest link and strongest reviewable link, as SQL, from links
    (mention_id_l, mention_id_r, match_probability, reviewable): at their left ends those of
    `left`, at their right ends those of `right`; with `links`, the query both name `links`.
    (A query named twice is held whole: at 1,000,000 customers, 188 million links from the
    files ran out of 1 GB, so each bucket reads them twice.)"""
    named = f"links AS ({links})," if links is not None else ""
    return f"""
        WITH {named}
        ends AS (
            SELECT mention_id_l AS mention_id, match_probability, reviewable FROM {left}
            UNION ALL SELECT mention_id_r, match_probability, reviewable FROM {right}
        )
        SELECT mention_id, max(match_probability) AS match_probability,
               max(CASE WHEN reviewable THEN match_probability END) AS reviewable_probability
        FROM ends {inside} GROUP BY mention_id
    """


def _local(path: str) -> str:
    return path.removeprefix("file:")


def _empty_folder(path: str) -> Path:
    """The folder `path` on local disk, emptied (or made) for a query's output files. A file
    there (an earlier version wrote some outputs as one file) is removed."""
    folder = Path(_local(path))
    if folder.is_file():
        folder.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def connected_components(con: Any, nodes: str, edges: str, threshold: float, out: str, batch_rows: int = 10_000_000) -> None:
    """The table `out` (id, cluster_id) on `con`: the connected components of the nodes (`id`)
    joined by the edges (`id_l`, `id_r`, `match_probability`) at `threshold` or above, each
    named by its smallest id, as Splink's clustering names them. Found by scipy on the edges as
    integer arrays: at 100,000 customers (1,978,873 mentions, 19,227,724 links) this took 5.0 s
    and Splink's SQL, one step of the walk per query, 17.9 s (`bench.clustering`). The ids are
    numbered in DuckDB's order, so the smallest number is the smallest id; an edge links its
    ends when both are nodes. The edges come `batch_rows` at a time, each batch joining the
    components found so far, so memory holds one batch, not every link (hundreds of millions
    at 1,000,000 customers)."""
    import numpy as np
    import pyarrow as pa
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as components

    con.execute(
        "CREATE OR REPLACE TEMP TABLE cluster_numbers AS "
        f"SELECT id, (row_number() OVER (ORDER BY id) - 1)::INTEGER AS k FROM (SELECT DISTINCT id FROM {nodes})"
    )
    count = con.execute("SELECT count(*) FROM cluster_numbers").fetchall()[0][0]
    batches = con.sql(
        f"SELECT l.k AS k_l, r.k AS k_r FROM {edges} e JOIN cluster_numbers l ON e.id_l = l.id JOIN cluster_numbers r ON e.id_r = r.id "
        f"WHERE e.match_probability >= {float(threshold)!r}"
    ).to_arrow_reader(batch_rows)
    # Each node's component so far, by a number among the nodes'; a batch's edges join the
    # components of their ends.
    component = np.arange(count, dtype=np.int32)
    for batch in batches:
        if not batch.num_rows:
            continue
        ends_l = component[batch.column("k_l").to_numpy()]
        ends_r = component[batch.column("k_r").to_numpy()]
        graph = coo_matrix((np.ones(len(ends_l), dtype=np.int8), (ends_l, ends_r)), shape=(count, count)).tocsr()
        component = components(graph, directed=False)[1][component].astype(np.int32)
    # Numbers ascend, so a component's first number is its smallest.
    _, first, which = np.unique(component, return_index=True, return_inverse=True)
    con.register("cluster_smallest", pa.table({"k": np.arange(count, dtype=np.int32), "smallest": first[which].astype(np.int32)}))
    try:
        con.execute(
            f"CREATE OR REPLACE TABLE {out} AS SELECT n.id, c.id AS cluster_id FROM cluster_numbers n "
            "JOIN cluster_smallest s ON n.k = s.k JOIN cluster_numbers c ON c.k = s.smallest"
        )
    finally:
        con.unregister("cluster_smallest")
        con.execute("DROP TABLE cluster_numbers")


def _typed_as(built: DataFrame, spark_built: DataFrame) -> DataFrame:
    """`built`'s columns with the types of the same table built by Spark (`spark_built`, not run)."""
    return built.select(*[F.col(c).cast(kind) for c, kind in spark_built.dtypes])


def duckdb_time_zone(zone: str) -> str:
    """Spark's session time zone as DuckDB names it: an offset (`+08:00`) as `GMT+08:00`, `Z`
    as `UTC`; a region (`Asia/Shanghai`) as it is."""
    if zone[:1] in ("+", "-"):
        return f"GMT{zone}"
    return "UTC" if zone == "Z" else zone
