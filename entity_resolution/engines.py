"""Linkage engines: the same Splink settings on DuckDB (one machine) or Spark (a cluster).

Both take Spark DataFrames in and give Spark DataFrames back; DuckDB exchanges data with
Spark through Parquet files in a work folder, so nothing passes through the driver's memory.
What differs between the engines is how a table gets in and out of Splink's database, where
the clusters are settled into people and given stable IDs (`settle`, `assign_ids`: DuckDB
keeps the clusters it made in its database), and where the golden phase reads the scored
pairs (`label_links`: DuckDB reads their files). The DuckDB engine gives the same rows as the
base class (Spark) on each of them, checked on random inputs.
"""

from __future__ import annotations

import logging
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.config import LinkageModelConfig, ResolutionConfig
from cdp.lake import read_table, table_exists
from cdp.reader import local_parquet_files, parquet_scan
from cdp.spark import give_back_heap
from entity_resolution.attach import split_unidentified
from entity_resolution.crosswalk import XREF_COLUMNS, build_customer_xref, label_pairs, strongest_links
from entity_resolution.model import build_settings, in_dialect, reference_u_probability, train_linker, trained_model
from entity_resolution.overrides import Overrides
from entity_resolution.settle import settle_clusters, settle_in_duckdb
from entity_resolution.stable_ids import assign_customer_ids_in_duckdb
from entity_resolution.work import checkpoint, issued_ids, materialise_ids, review_range, split_ids

__all__ = [
    "DuckDBEngine",
    "LinkageEngine",
    "PAIR_COLUMNS",
    "PAIR_SCHEMA",
    "Prediction",
    "SparkEngine",
    "capped_blocking",
    "choose_engine",
    "model_tf_columns",
]

log = logging.getLogger(__name__)

PAIR_COLUMNS = ["mention_id_l", "mention_id_r", "match_probability", "match_weight"]
PAIR_SCHEMA = "mention_id_l string, mention_id_r string, match_probability double, match_weight double"


@dataclass
class Prediction:
    """Scored pairs (mention_id_l < mention_id_r, match_probability, match_weight), the
    model as a dict, timings in seconds and the linker (for charts). Pairs of a full
    prediction (`train_and_predict`, `predict_with`) come in (mention_id_l, mention_id_r)
    order within each partition. `scored`: Splink's table of the same pairs, in the engine's
    own database (the DuckDB engine clusters from it)."""

    pairs: DataFrame
    model: dict[str, Any]
    timings: dict[str, float]
    linker: Any
    scored: Any = None


class LabelledLinks(NamedTuple):
    """The scored pairs as the golden phase reads them: each mention's strongest links
    (`crosswalk.strongest_links`), the pairs in the review band below its top labelled with
    each side's customer (`crosswalk.label_pairs`), and the crosswalk's rows
    (`crosswalk.build_customer_xref`)."""

    strongest: DataFrame
    band: DataFrame
    xref: DataFrame


class LinkageEngine(ABC):
    """One Splink database backend, with Spark DataFrames on both sides."""

    name: str

    def __init__(self, spark: SparkSession, work_dir: str) -> None:
        self.spark = spark
        self.work_dir = work_dir.rstrip("/")

    @property
    @abstractmethod
    def db_api(self) -> Any:
        """The Splink database API."""

    @abstractmethod
    def register(self, df: DataFrame, name: str) -> Any:
        """A Spark DataFrame as a Splink table."""

    @abstractmethod
    def to_spark(self, splink_df: Any, name: str, columns: list[str]) -> DataFrame:
        """A Splink table as a Spark DataFrame with the given columns."""

    def close(self) -> None:
        """Release the backend's resources."""

    @contextmanager
    def reproducible(self) -> Iterator[None]:
        """Within it, sums come out the same on every run (EM's estimates depend on them)."""
        yield

    def in_own_dialect(self, model: dict[str, Any]) -> dict[str, Any]:
        """A saved model (trained on any engine) with its SQL in this engine's dialect."""
        return in_dialect(model, self.db_api.sql_dialect.sql_dialect_str)

    def register_new_and_existing(self, everything: DataFrame, everything_name: str, ids: DataFrame) -> tuple[Any, Any]:
        """Register the rows of `everything` (registered as `everything_name`) whose mention is
        in `ids` (mention_id) as `new_mentions`, and the other rows as `existing_mentions`."""
        return (
            self.register(everything.join(ids, "mention_id", "left_semi"), "new_mentions"),
            self.register(everything.join(ids, "mention_id", "left_anti"), "existing_mentions"),
        )

    def label_links(
        self, pairs_table: str, ids_path: str, mentions_table: str, config: ResolutionConfig, decided: DataFrame | None
    ) -> LabelledLinks:
        """What the review queue and the crosswalk read of the scored pairs in the Delta table
        `pairs_table`, under the customers in the Parquet folder `ids_path` (mention_id,
        customer_id; rows with an `event` are the ID history, not customers), and the mentions
        in the Delta table `mentions_table` (`LabelledLinks`). The strongest links and the band
        are written to the work folder once and read back."""
        pairs = read_table(self.spark, pairs_table)
        ids = self.spark.read.parquet(ids_path).filter(F.col("event").isNull()).select("mention_id", "customer_id")
        floor, high = review_range(config)
        strongest = checkpoint(self.spark, strongest_links(pairs, ids, config.match_threshold, decided), f"{self.work_dir}/strongest_links")
        band = label_pairs(pairs.filter(F.col("match_probability") < high), ids, floor)
        xref = build_customer_xref(read_table(self.spark, mentions_table), ids, pairs, config.match_threshold, strongest)
        return LabelledLinks(strongest, checkpoint(self.spark, band, f"{self.work_dir}/labelled_pairs"), xref)

    def settle(
        self, mentions: DataFrame, clusters: DataFrame, pairs: DataFrame, overrides: Overrides, config: ResolutionConfig
    ) -> DataFrame:
        """(mention_id, cluster_id, identified): `clusters` (mention_id, cluster_id) of the
        `mentions` settled into people (`entity_resolution.settle`); `pairs`, the scored pairs
        with the reviewers' decisions applied. Written to the work folder once and read back."""
        return settle_clusters(self.spark, mentions, clusters, pairs, overrides, config, self.work_dir)

    def assign_ids(
        self, settled: DataFrame, xref_table: str, based_on: int, history_table: str, ids_path: str, cells_path: str
    ) -> tuple[DataFrame, DataFrame]:
        """Stable customer IDs (`stable_ids`) of the identified clusters of `settled` (`settle`'s
        rows) against the crosswalk `xref_table` as of its version `based_on` (none when
        negative), never one the ID history `history_table` holds: (mention_id, customer_id) and
        the ID events, written to the folder `ids_path` (`work.materialise_ids`) and read back."""
        previous = read_table(self.spark, xref_table, version=based_on).select("mention_id", "customer_id") if based_on >= 0 else None
        clusters, _ = split_unidentified(settled)
        return materialise_ids(self.spark, clusters, previous, issued_ids(self.spark, history_table), based_on, ids_path, cells_path)

    # -- the linkage steps, the same on every engine --------------------------------

    def train_and_predict(self, mentions: DataFrame, config: ResolutionConfig) -> Prediction:
        """Train a model on the mentions (λ, u by sampling, m by EM) and score blocked pairs."""
        from splink import Linker

        timings: dict[str, float] = {}
        started = time.perf_counter()
        keyed, rules = capped_blocking(mentions, config.model, f"{self.work_dir}/oversized_blocks")
        table = self.register(keyed, "mentions")
        linker = Linker(table, build_settings(config.model, reference_u_probability(mentions)), log_level=logging.WARNING)
        timings["load"] = time.perf_counter() - started
        started = time.perf_counter()
        with self.reproducible():
            train_linker(linker, config.model, seed=config.seed)
        # Predict with the model as saved: rounded, so that a re-run scores the same.
        model = trained_model(linker)
        timings["train"] = time.perf_counter() - started
        return self._predict_all(table, model, rules, config, timings)

    def predict_with(self, mentions: DataFrame, model: dict[str, Any], config: ResolutionConfig) -> Prediction:
        """Score blocked pairs of the mentions with a trained model (the registry's champion)."""
        started = time.perf_counter()
        keyed, rules = capped_blocking(mentions, config.model, f"{self.work_dir}/oversized_blocks")
        table = self.register(keyed, "mentions")
        return self._predict_all(table, model, rules, config, {"load": time.perf_counter() - started})

    def _blocked_by(self, model: dict[str, Any], rules: list[Any] | None) -> dict[str, Any]:
        """The model in this engine's dialect, predicting on the capped rules when there are any
        (the model itself, as saved, keeps the rules it was trained with)."""
        own = self.in_own_dialect(model)
        if rules is None:
            return own
        dialect = self.db_api.sql_dialect.sql_dialect_str
        return {**own, "blocking_rules_to_generate_predictions": [r.get_blocking_rule(dialect).as_dict() for r in rules]}

    def _predict_all(
        self, table: Any, model: dict[str, Any], rules: list[Any] | None, config: ResolutionConfig, timings: dict[str, float]
    ) -> Prediction:
        from splink import Linker

        started = time.perf_counter()
        linker = Linker(table, self._blocked_by(model, rules), log_level=logging.WARNING)
        predictions = linker.inference.predict(threshold_match_probability=config.prediction_threshold)
        pairs = self._sorted_pairs(predictions)
        timings["predict"] = time.perf_counter() - started
        return Prediction(pairs, model, timings, linker, predictions)

    def _sorted_pairs(self, predictions: Any) -> DataFrame:
        """Splink's predictions as `Prediction.pairs`, each partition in (mention_id_l, mention_id_r) order."""
        return _ordered(self.to_spark(predictions, "pairs", PAIR_COLUMNS)).sortWithinPartitions("mention_id_l", "mention_id_r")

    def predict_new(self, mentions: DataFrame, new: DataFrame, model: dict[str, Any], config: ResolutionConfig) -> Prediction:
        """Score the `new` mentions (mention_id) against every other mention and among
        themselves with a saved model, without retraining. Term frequencies come from all
        mentions, as in a full run."""
        from splink import Linker

        timings: dict[str, float] = {}
        started = time.perf_counter()
        # Blocks are sized over all the mentions, as in a full run.
        keyed, rules = capped_blocking(mentions, config.model, f"{self.work_dir}/oversized_blocks")
        linker = Linker(self.register(keyed, "mentions"), self._blocked_by(model, rules), log_level=logging.WARNING)
        new_table, existing_table = self.register_new_and_existing(keyed, "mentions", new.select("mention_id"))
        for column in model_tf_columns(model):
            linker.table_management.compute_tf_table(column)
        timings["load"] = time.perf_counter() - started
        started = time.perf_counter()
        threshold = config.prediction_threshold
        between = linker.inference.predict_between(new_table, existing_table, threshold_match_probability=threshold)
        within = linker.inference.predict_within(new_table, threshold_match_probability=threshold)
        pairs = _ordered(
            self.to_spark(between, "pairs_between", PAIR_COLUMNS).unionByName(self.to_spark(within, "pairs_within", PAIR_COLUMNS))
        )
        timings["predict"] = time.perf_counter() - started
        return Prediction(pairs, model, timings, linker)

    def link_and_cluster(
        self,
        tables: list[DataFrame],
        settings: Any,
        train: Callable[[Any], None],
        prediction_threshold: float,
        match_threshold: float,
    ) -> tuple[DataFrame, dict[str, Any]]:
        """Any records with `unique_id` (and `source_dataset` when linking two tables):
        train with `train(linker)`, predict, cluster -> (source_dataset, unique_id,
        cluster_id) and the model."""
        from splink import Linker

        registered = [self.register(t, f"input_{i}") for i, t in enumerate(tables)]
        inputs = registered if len(registered) > 1 else registered[0]
        linker = Linker(inputs, settings, log_level=logging.WARNING)
        with self.reproducible():
            train(linker)
        linker = Linker(inputs, trained_model(linker), log_level=logging.WARNING)
        predictions = linker.inference.predict(threshold_match_probability=prediction_threshold)
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, match_threshold)
        out = self.to_spark(clusters, "link_clusters", ["source_dataset", "unique_id", "cluster_id"])
        return out, linker.misc.save_model_to_json()

    def cluster(self, nodes: DataFrame, edges: DataFrame, threshold: float) -> DataFrame:
        """Connected components of `edges` (id_l, id_r, match_probability) at the threshold:
        (id, cluster_id) for every node in `nodes` (id)."""
        return self._components(
            self.register(nodes.select("id"), "cluster_nodes"),
            self.register(edges.select("id_l", "id_r", "match_probability"), "cluster_edges"),
            threshold,
        )

    def cluster_scored(self, prediction: Prediction, nodes: DataFrame, changes: DataFrame | None, threshold: float) -> DataFrame:
        """(mention_id, cluster_id): `cluster` of the prediction's pairs with the reviewers'
        `changes` applied (`overrides.override_changes`: a must-link's probability set to 1, a
        cannot-link's edge removed)."""
        from entity_resolution.overrides import apply_changes

        edges = apply_changes(prediction.pairs, changes)
        clusters = self.cluster(nodes, edges.select(F.col("mention_id_l").alias("id_l"), F.col("mention_id_r").alias("id_r"), "match_probability"), threshold)
        return _as_mention_clusters(clusters)

    def _components(self, nodes: Any, edges: Any, threshold: float) -> DataFrame:
        return self.to_spark(self._cluster_table(nodes, edges, threshold), "clusters", ["id", "cluster_id"])

    def _cluster_table(self, nodes: Any, edges: Any, threshold: float) -> Any:
        from splink.clustering import cluster_pairwise_predictions_at_threshold

        return cluster_pairwise_predictions_at_threshold(
            nodes, edges, db_api=self.db_api, node_id_column_name="id", threshold_match_probability=threshold
        )


def capped_blocking(mentions: DataFrame, params: LinkageModelConfig, work: str) -> tuple[DataFrame, list[Any] | None]:
    """The mentions and, when some prediction rule has a block of more than
    `max_block_records` mentions, the rules to predict with instead: such a rule blocks on a
    key column of its own (`_block_<n>`, its values joined) that is null in its oversized
    blocks, so their mentions are compared only through the other rules. None when no block
    is oversized: the model's rules stand. One aggregation sizes every rule's blocks."""
    from splink import block_on

    cap = params.max_block_records
    if cap is None:
        return mentions, None
    keys = {}
    for n, columns in enumerate(params.prediction_blocking):
        values = [F.expr(c).cast("string") for c in columns]
        present = F.lit(True)
        for value in values:
            present = present & value.isNotNull()
        keys[n] = F.when(present, F.concat_ws("\u001f", *values))
    blocks = F.explode(F.array(*[F.struct(F.lit(n).alias("rule"), key.alias("key")) for n, key in keys.items()]))
    oversized = checkpoint(
        mentions.sparkSession,
        mentions.select(blocks.alias("b")).select("b.*").filter(F.col("key").isNotNull()).groupBy("rule", "key").count()
        .filter(F.col("count") > cap).select("rule", "key"),
        work,
    )
    capped = sorted(r["rule"] for r in oversized.select("rule").distinct().collect())
    if not capped:
        return mentions, None
    log.info("blocking: %s rule(s) leave out blocks of more than %d mentions", len(capped), cap)
    keyed = mentions
    for n in capped:
        column = f"_block_{n}"
        big = F.broadcast(oversized.filter(F.col("rule") == n).select(F.col("key").alias(column), F.lit(True).alias("_oversized")))
        keyed = (
            keyed.withColumn(column, keys[n]).join(big, column, "left")
            .withColumn(column, F.when(F.col("_oversized").isNull(), F.col(column))).drop("_oversized")
        )
    rules = [block_on(f"_block_{n}") if n in capped else block_on(*columns) for n, columns in enumerate(params.prediction_blocking)]
    return keyed, rules


def model_tf_columns(model: dict[str, Any]) -> list[str]:
    """Columns the model adjusts for term frequency."""
    columns = {
        level["tf_adjustment_column"]
        for comparison in model.get("comparisons", [])
        for level in comparison.get("comparison_levels", [])
        if level.get("tf_adjustment_column")
    }
    return sorted(columns)


def _as_mention_clusters(clusters: DataFrame) -> DataFrame:
    return clusters.select(F.col("id").alias("mention_id"), F.col("cluster_id").cast("string"))


def _ordered(pairs: DataFrame) -> DataFrame:
    """Each pair once, with the smaller id on the left."""
    return pairs.select(
        F.least("mention_id_l", "mention_id_r").alias("mention_id_l"),
        F.greatest("mention_id_l", "mention_id_r").alias("mention_id_r"),
        "match_probability",
        "match_weight",
    )


class DuckDBEngine(LinkageEngine):
    name = "duckdb"

    def __init__(self, spark: SparkSession, work_dir: str, memory_limit: str, settle_memory_limit: str | None = None) -> None:
        from splink import DuckDBAPI

        super().__init__(spark, work_dir)
        self._memory_limit = memory_limit
        # After the linkage: the settling, the IDs and the golden phase's links run while the
        # JVM holds the most it will (it has just written the pairs, and writes beside them).
        self._settle_memory_limit = settle_memory_limit or memory_limit
        self._con = self._connect(memory_limit)
        self._api = DuckDBAPI(self._con)
        # The clusters `cluster_scored` returned last, and their table in the database; the
        # rows `settle` returned last, and their file.
        self._held: tuple[DataFrame, str] | None = None
        self._settled: tuple[DataFrame, str] | None = None

    def _connect(self, memory_limit: str) -> Any:
        import duckdb

        con = duckdb.connect()
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
        give_back_heap(self.spark)
        self._con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM read_parquet('{_local(path)}/*.parquet')")
        return self._api.register(name)

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

    def _sorted_pairs(self, predictions: Any) -> DataFrame:
        """Sorted by DuckDB as it writes them (Spark's sort of the same pairs took longer)."""
        path = f"{self.work_dir}/pairs.parquet"
        self._con.sql(
            "SELECT least(mention_id_l, mention_id_r) AS mention_id_l, greatest(mention_id_l, mention_id_r) AS mention_id_r, "
            f"match_probability, match_weight FROM {predictions.physical_name} ORDER BY 1, 2"
        ).write_parquet(_local(path), overwrite=True)
        return self.spark.read.parquet(path)

    def cluster_scored(self, prediction: Prediction, nodes: DataFrame, changes: DataFrame | None, threshold: float) -> DataFrame:
        """Clusters from the scored pairs where DuckDB keeps them: millions of pairs are not
        written out by Spark and read in again, only the reviewers' few changes are."""
        if prediction.scored is None:
            return super().cluster_scored(prediction, nodes, changes, threshold)
        # Spark has just written the pairs: the heap that took is given back before DuckDB
        # clusters them (at 100,000 customers the two peaked together at over 8 GiB).
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
        clusters = _as_mention_clusters(self.to_spark(held, "clusters", ["id", "cluster_id"]))
        self._held = (clusters, held.physical_name)
        return clusters

    def settle(
        self, mentions: DataFrame, clusters: DataFrame, pairs: DataFrame, overrides: Overrides, config: ResolutionConfig
    ) -> DataFrame:
        """The same. Clusters this engine made of its own scored pairs (`cluster_scored`) are
        settled in DuckDB, with the mentions it linked and the links it clustered: at 100,000
        customers Spark took about 95 s. Any others, by the base class."""
        held = self._held
        if held is None or clusters is not held[0]:
            return super().settle(mentions, clusters, pairs, overrides, config)
        path = f"{self.work_dir}/resolved_clusters.parquet"
        # What the linkage held beyond this is spilled to the work folder: with the settling's
        # tables at 100,000 customers, the process went from 2.3 to 1.0 GB and settling took
        # 21.2 s against 18.5 s. (Lowered before the clustering, that phase took 15 s longer.)
        self._con.execute(f"SET memory_limit = '{self._settle_memory_limit}'")
        settle_in_duckdb(self._con, "mentions", held[1], "cluster_edges", overrides, config, _local(path))
        settled = self.spark.read.parquet(path)
        self._settled = (settled, path)
        return settled

    def assign_ids(
        self, settled: DataFrame, xref_table: str, based_on: int, history_table: str, ids_path: str, cells_path: str
    ) -> tuple[DataFrame, DataFrame]:
        """The same, in DuckDB, for the clusters it settled (`settle`), reading the crosswalk's
        and the history's files, on a connection of its own: at 100,000 customers Spark's two
        passes took about 20 s. Any others, or tables not on local disk, by the base class."""
        held = self._settled
        previous = local_parquet_files(xref_table, version=based_on) if based_on >= 0 else []
        history = local_parquet_files(history_table) if table_exists(self.spark, history_table) else []
        if held is None or settled is not held[0] or previous is None or history is None:
            return super().assign_ids(settled, xref_table, based_on, history_table, ids_path, cells_path)
        folder = Path(_local(ids_path))
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        con = self._connect(self._settle_memory_limit)
        try:
            assign_customer_ids_in_duckdb(
                con,
                clusters=f"(SELECT mention_id, cluster_id FROM read_parquet('{_local(held[1])}') WHERE identified)",
                previous=f"(SELECT mention_id, customer_id FROM {parquet_scan(previous)})" if previous else None,
                issued=(
                    f"(SELECT customer_id FROM (SELECT customer_id FROM {parquet_scan(history)} UNION ALL "
                    f"SELECT related_customer_id FROM {parquet_scan(history)}) WHERE customer_id IS NOT NULL)"
                ) if history else None,
                based_on_version=based_on,
                out_path=str(folder / "part-00000.parquet"),
            )
        finally:
            con.close()
        return split_ids(self.spark.read.parquet(ids_path))

    def label_links(
        self, pairs_table: str, ids_path: str, mentions_table: str, config: ResolutionConfig, decided: DataFrame | None
    ) -> LabelledLinks:
        """The same, run by DuckDB over the pairs' and the mentions' Parquet files on a
        connection of its own (the linkage's may be closed), each written to the work folder
        as one file. At 100,000 customers, the strongest of 19 million links of 2 million
        mentions took 3.9 s, where Spark's joins and aggregation took 28.7 s."""
        files, mention_files = local_parquet_files(pairs_table), local_parquet_files(mentions_table)
        if files is None or mention_files is None:
            return super().label_links(pairs_table, ids_path, mentions_table, config, decided)
        strongest_path, band_path, xref_path = (f"{self.work_dir}/{name}.parquet" for name in ("strongest_links", "labelled_pairs", "customer_xref"))
        Path(_local(self.work_dir)).mkdir(parents=True, exist_ok=True)
        floor, high = review_range(config)
        con = self._connect(self._settle_memory_limit)
        try:
            # The reviewers' decisions: a few pairs, not a table's worth.
            con.execute("CREATE TEMP TABLE decided (mention_id_l VARCHAR, mention_id_r VARCHAR)")
            rows = [(r.mention_id_l, r.mention_id_r) for r in decided.collect()] if decided is not None else []
            if rows:
                con.executemany("INSERT INTO decided VALUES (?, ?)", rows)
            # A table first: joined twice to the pairs straight from the files, the same query took 19 s.
            con.execute(
                "CREATE TEMP TABLE ids AS SELECT mention_id, customer_id "
                f"FROM read_parquet('{_local(ids_path)}/*.parquet') WHERE event IS NULL"
            )
            labelled = f"""
                SELECT p.*, l.customer_id AS customer_id_l, r.customer_id AS customer_id_r
                FROM {parquet_scan(files)} p
                JOIN ids l ON l.mention_id = p.mention_id_l
                JOIN ids r ON r.mention_id = p.mention_id_r
            """
            con.execute(f"""
                CREATE TEMP TABLE strongest AS
                WITH links AS (
                    SELECT p.mention_id_l, p.mention_id_r, p.match_probability,
                           p.origin = 'model' AND d.mention_id_l IS NULL AS reviewable
                    FROM ({labelled}) p
                    LEFT JOIN decided d ON d.mention_id_l = p.mention_id_l AND d.mention_id_r = p.mention_id_r
                    WHERE p.match_probability >= {float(config.match_threshold)!r} AND p.customer_id_l = p.customer_id_r
                ),
                ends AS (
                    SELECT mention_id_l AS mention_id, match_probability, reviewable FROM links
                    UNION ALL SELECT mention_id_r, match_probability, reviewable FROM links
                )
                SELECT mention_id, max(match_probability) AS match_probability,
                       max(CASE WHEN reviewable THEN match_probability END) AS reviewable_probability
                FROM ends GROUP BY mention_id
            """)
            con.execute(f"COPY strongest TO '{_local(strongest_path)}' (FORMAT parquet)")
            con.execute(f"""
                COPY (SELECT * FROM ({labelled}) p WHERE p.match_probability >= {float(floor)!r} AND p.match_probability < {float(high)!r})
                TO '{_local(band_path)}' (FORMAT parquet)
            """)
            role = "CASE WHEN m.role = 'contact' THEN 'contact' ELSE 'primary' END"
            columns = {"role": role, "mention_role": "m.role", "customer_id": "i.customer_id", "match_probability": "s.match_probability"}
            con.execute(f"""
                COPY (
                    SELECT {", ".join(f"{columns.get(c, f'm.{c}')} AS {c}" for c in XREF_COLUMNS)}
                    FROM {parquet_scan(mention_files)} m JOIN ids i ON i.mention_id = m.mention_id
                    LEFT JOIN strongest s ON s.mention_id = m.mention_id
                ) TO '{_local(xref_path)}' (FORMAT parquet)
            """)
        finally:
            con.close()
        return LabelledLinks(*(self.spark.read.parquet(path) for path in (strongest_path, band_path, xref_path)))

    def close(self) -> None:
        self._con.close()

    @contextmanager
    def reproducible(self) -> Iterator[None]:
        """One thread: a parallel SUM of doubles adds its parts in the order the threads finish,
        which changes the last bits from run to run, and EM can then stop an iteration earlier
        or later. Training is a small share of a run (its pairs are blocked and sampled)."""
        threads = self._con.execute("SELECT current_setting('threads')").fetchall()[0][0]
        self._con.execute("SET threads = 1")
        try:
            yield
        finally:
            self._con.execute(f"SET threads = {int(threads)}")


def _local(path: str) -> str:
    return path.removeprefix("file:")


class SparkEngine(LinkageEngine):
    name = "spark"

    def __init__(self, spark: SparkSession, work_dir: str) -> None:
        from splink import SparkAPI

        super().__init__(spark, work_dir)
        if spark.sparkContext.getCheckpointDir() is None:
            # Splink's Spark backend breaks long lineages with checkpoints.
            spark.sparkContext.setCheckpointDir(f"{self.work_dir}/checkpoints")
        self._api = SparkAPI(spark_session=spark)

    @property
    def db_api(self) -> Any:
        return self._api

    def register(self, df: DataFrame, name: str) -> Any:
        return self._api.register(df)

    def to_spark(self, splink_df: Any, name: str, columns: list[str]) -> DataFrame:
        path = f"{self.work_dir}/{name}"
        splink_df.as_spark_dataframe().select(*columns).write.mode("overwrite").parquet(path)
        return self.spark.read.parquet(path)


def choose_engine(spark: SparkSession, config: ResolutionConfig, mention_count: int, work_dir: str) -> LinkageEngine:
    """The configured engine; `auto` picks DuckDB on a local master for up to
    `duckdb_max_mentions` mentions (one machine), Spark otherwise."""
    engine = config.engine
    if engine == "auto":
        local = spark.sparkContext.master.startswith("local")
        engine = "duckdb" if local and mention_count <= config.duckdb_max_mentions else "spark"
    log.info("linkage engine: %s (%d mentions)", engine, mention_count)
    if engine == "duckdb":
        return DuckDBEngine(spark, work_dir, config.duckdb_memory_limit, config.duckdb_settle_memory_limit)
    return SparkEngine(spark, work_dir)
