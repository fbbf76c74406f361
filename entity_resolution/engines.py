"""Linkage engines: the same Splink settings on DuckDB (one machine) or Spark (a cluster).

Both take Spark DataFrames in and give Spark DataFrames back; DuckDB exchanges data with
Spark through Parquet files in a work folder, so nothing passes through the driver's memory.
What differs between the engines is how a table gets in and out of Splink's database, where
the clusters are settled into people and given stable IDs (`settle`, `assign_ids`: DuckDB
keeps the clusters it made in its database), and where the golden phase reads the scored
pairs (`label_links`: DuckDB reads their files). The DuckDB engine (`duckdb_engine`) gives the
same rows as the base class (Spark) on each of them, checked on random inputs.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp.config import LinkageModelConfig, ResolutionConfig
from cdp.lake import read_table
from entity_resolution.attach import split_unidentified
from entity_resolution.crosswalk import build_customer_xref, label_pairs, strongest_links
from entity_resolution.golden import build_customer_vehicles, build_customers
from entity_resolution.incremental import incremental_scope
from entity_resolution.model import OneThread, build_settings, in_dialect, reference_u_probability, train_linker, trained_model
from entity_resolution.overrides import Overrides
from entity_resolution.settle import settle_clusters
from entity_resolution.work import checkpoint, issued_ids, materialise_ids, review_range

__all__ = [
    "LinkageEngine",
    "PAIR_COLUMNS",
    "PAIR_SCHEMA",
    "Prediction",
    "SparkEngine",
    "as_mention_clusters",
    "EM_BUCKETS",
    "capped_blocking",
    "capped_blocking_in_duckdb",
    "choose_engine",
    "em_buckets_in_duckdb",
    "model_tf_columns",
    "pairs_with_an_end_in",
    "with_em_buckets",
]

log = logging.getLogger(__name__)

PAIR_COLUMNS = ["mention_id_l", "mention_id_r", "match_probability", "match_weight"]
PAIR_SCHEMA = "mention_id_l string, mention_id_r string, match_probability double, match_weight double"


@dataclass
class Prediction:
    """Scored pairs (mention_id_l < mention_id_r, match_probability, match_weight), the
    model as a dict, timings in seconds and the linker (for charts). Pairs of a full
    prediction (`train_and_predict`, `predict_with`) come in (mention_id_l, mention_id_r)
    order within each partition. `scored`: the same pairs in the engine's own database,
    Splink's table or a view of their files (the DuckDB engine clusters from it)."""

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

    @abstractmethod
    def scalar(self, sql: str) -> Any:
        """The one value a query over Splink's tables gives, computed in the backend."""

    def em_rules(self, table: Any, params: LinkageModelConfig) -> list[Any]:
        """One blocking rule per EM session (`training_blocking`). A rule making more than
        `max_pairs_for_em` pairs keeps the blocks of some of `EM_BUCKETS` buckets only
        (`with_em_buckets`): whole blocks, about that many pairs. Pairs are counted from
        the blocks' sizes, in the backend."""
        from splink import block_on
        from splink.blocking_rule_library import And, CustomRule

        cap = params.max_pairs_for_em
        rules = []
        for n, columns in enumerate(params.training_blocking):
            rule = block_on(*columns)
            if cap is not None:
                present = " AND ".join(f"({c}) IS NOT NULL" for c in columns)
                pairs = int(self.scalar(
                    f"SELECT coalesce(sum(n * (n - 1) / 2), 0) FROM "
                    f"(SELECT count(*) AS n FROM {table.physical_name} WHERE {present} GROUP BY {', '.join(columns)})"
                ))
                if pairs > cap:
                    kept = max(1, int(EM_BUCKETS * cap / pairs))
                    log.info(
                        "EM session on %s: %d pairs; trained on the blocks of %d of %d buckets (about %d pairs)",
                        " & ".join(columns), pairs, kept, EM_BUCKETS, pairs * kept // EM_BUCKETS,
                    )
                    rule = And(rule, CustomRule(f"l._em_{n} < {kept} AND r._em_{n} < {kept}"))
            rules.append(rule)
        return rules

    def after_training(self) -> None:
        """Free what training left in the backend that prediction does not read."""

    def close(self) -> None:
        """Release the backend's resources."""

    @contextmanager
    def spilling(self) -> Iterator[None]:
        """Within it the backend may trade row order for memory (a prediction in chunks, whose
        pairs are sorted afterwards)."""
        yield

    @contextmanager
    def pairs_unstored(self) -> Iterator[None]:
        """Within it, EM's blocked pairs and comparison vectors are not stored in the backend
        but computed as the session counts its agreement patterns (training)."""
        yield

    @contextmanager
    def reproducible(self) -> Iterator[None]:
        """Within it the backend adds in the same order on every run, and draws the same sample
        for a seed (training's `one_thread`)."""
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
        self, pairs_table: str, ids_path: str, mentions_table: str, config: ResolutionConfig, decided: DataFrame | None,
        within: str | None = None,
    ) -> LabelledLinks:
        """What the review queue and the crosswalk read of the scored pairs in the Delta table
        `pairs_table`, under the customers in the Parquet folder `ids_path` (mention_id,
        customer_id; rows with an `event` are the ID history, not customers), and the mentions
        in the Delta table `mentions_table` (`LabelledLinks`). With `within`, a Parquet folder
        of mention_id (an incremental run's touched customers), only the pairs with an end
        among them, and only their strongest links and crosswalk rows. The strongest links
        and the band are written to the work folder once and read back."""
        pairs = read_table(self.spark, pairs_table)
        ids = self.spark.read.parquet(ids_path).filter(F.col("event").isNull()).select("mention_id", "customer_id")
        mentions = read_table(self.spark, mentions_table)
        inside = None
        if within is not None:
            inside = self.spark.read.parquet(within).select("mention_id").distinct()
            pairs = checkpoint(self.spark, pairs_with_an_end_in(pairs, inside), f"{self.work_dir}/pairs_within")
            mentions = mentions.join(inside, "mention_id", "left_semi")
        floor, high = review_range(config)
        strongest = strongest_links(pairs, ids, config.match_threshold, decided)
        if inside is not None:
            strongest = strongest.join(inside, "mention_id", "left_semi")
        strongest = checkpoint(self.spark, strongest, f"{self.work_dir}/strongest_links")
        band = label_pairs(pairs.filter(F.col("match_probability") < high), ids, floor)
        xref = build_customer_xref(mentions, ids, pairs, config.match_threshold, strongest)
        return LabelledLinks(strongest, checkpoint(self.spark, band, f"{self.work_dir}/labelled_pairs"), xref)

    def stored_pairs(self, pairs_table: str, pairs: DataFrame, out_path: str) -> DataFrame:
        """The rows of the Delta table of scored pairs `pairs_table` whose key (mention_id_l,
        mention_id_r) is one of `pairs`', written to the folder `out_path` and read back. An
        incremental run scores again the links of records that named nobody, which the table
        may hold from an earlier run."""
        keys = pairs.select("mention_id_l", "mention_id_r").distinct()
        stored = read_table(self.spark, pairs_table).join(F.broadcast(keys), ["mention_id_l", "mention_id_r"], "left_semi")
        return checkpoint(self.spark, stored, out_path)

    def scope(
        self, mentions_table: str, xref_table: str, based_on: int, fresh: DataFrame, new_pairs: DataFrame,
        overrides: Overrides, threshold: float, out_path: str,
    ) -> DataFrame:
        """An incremental run's scope (`incremental.incremental_scope`) against the crosswalk
        `xref_table` as of its version `based_on`: mention_id, written to the folder `out_path`
        and read back."""
        mentions = read_table(self.spark, mentions_table)
        previous = read_table(self.spark, xref_table, version=based_on).select("mention_id", "customer_id")
        return checkpoint(self.spark, incremental_scope(mentions, previous, fresh, new_pairs, overrides, threshold), out_path)

    def settle(
        self, mentions: DataFrame, clusters: DataFrame, pairs_table: str, overrides: Overrides, config: ResolutionConfig
    ) -> DataFrame:
        """(mention_id, cluster_id, identified): `clusters` (mention_id, cluster_id) of the
        `mentions` settled into people (`entity_resolution.settle`); `pairs_table`, the Delta
        table of the scored pairs with the reviewers' decisions applied. Written to the work
        folder once and read back."""
        return settle_clusters(self.spark, mentions, clusters, read_table(self.spark, pairs_table), overrides, config, self.work_dir)

    def assign_ids(
        self, settled: DataFrame, xref_table: str, based_on: int, history_table: str, ids_path: str, cells_path: str,
        scope: str | None = None,
    ) -> tuple[DataFrame, DataFrame]:
        """Stable customer IDs (`stable_ids`) of the identified clusters of `settled` (`settle`'s
        rows) against the crosswalk `xref_table` as of its version `based_on` (none when
        negative), never one the ID history `history_table` holds: (mention_id, customer_id) and
        the ID events, written to the folder `ids_path` (`work.materialise_ids`) and read back.
        With `scope`, a Parquet folder of mention_id (an incremental run's, which settled only
        those mentions), only their rows of the crosswalk count as previous customers, and every
        ID the crosswalk holds is taken."""
        previous = read_table(self.spark, xref_table, version=based_on).select("mention_id", "customer_id") if based_on >= 0 else None
        issued = issued_ids(self.spark, history_table)
        if scope is not None and previous is not None:
            issued = previous.select("customer_id") if issued is None else issued.union(previous.select("customer_id"))
            previous = previous.join(self.spark.read.parquet(scope).select("mention_id"), "mention_id", "left_semi")
        clusters, _ = split_unidentified(settled)
        return materialise_ids(self.spark, clusters, previous, issued, based_on, ids_path, cells_path)

    # -- the linkage steps, the same on every engine --------------------------------

    def train_and_predict(self, mentions: DataFrame, config: ResolutionConfig, table: str | None = None) -> Prediction:
        """Train a model on the mentions (λ, u by sampling, m by EM) and score blocked pairs;
        `table` as in `load_for_prediction`."""
        from splink import Linker

        timings: dict[str, float] = {}
        started = time.perf_counter()
        registered, rules, reference_u = self.load_for_training(mentions, config, table)
        linker = Linker(registered, build_settings(config.model, reference_u), log_level=logging.WARNING)
        timings["load"] = time.perf_counter() - started
        started = time.perf_counter()
        with self.pairs_unstored():
            train_linker(linker, config.model, seed=config.seed, one_thread=self.reproducible, em_rules=self.em_rules(registered, config.model))
        # Predict with the model as saved: rounded, so that a re-run scores the same.
        model = trained_model(linker)
        self.after_training()
        timings["train"] = time.perf_counter() - started
        return self._predict_all(registered, model, rules, config, timings)

    def load_for_training(self, mentions: DataFrame, config: ResolutionConfig, table: str | None = None) -> tuple[Any, list[Any] | None, float | None]:
        """`load_for_prediction`'s table with the EM buckets (`with_em_buckets`) too: that
        table, the rules to predict with (None: the model's) and the u of one mention naming
        the other (`model.reference_u_probability`)."""
        keyed, rules = capped_blocking(mentions, config.model, f"{self.work_dir}/oversized_blocks")
        return self.register(with_em_buckets(keyed, config.model), "mentions"), rules, reference_u_probability(mentions)

    def load_for_prediction(self, mentions: DataFrame, config: ResolutionConfig, table: str | None = None) -> tuple[Any, DataFrame, list[Any] | None]:
        """The mentions as Splink's table `mentions`, with the blocking keys of
        `capped_blocking`: that table, the rows it holds (for `register_new_and_existing`) and
        the rules to predict with (None: the model's). `table`: the Delta table the mentions
        were read from, whose files an engine may read itself."""
        keyed, rules = capped_blocking(mentions, config.model, f"{self.work_dir}/oversized_blocks")
        return self.register(keyed, "mentions"), keyed, rules

    def customers(self, resolved: DataFrame, config: ResolutionConfig, mentions_table: str, ids_path: str) -> DataFrame:
        """The golden profiles (`golden.build_customers`) of `resolved`: the mentions of the
        Delta table `mentions_table` with their customer_id from the Parquet folder `ids_path`
        (mention_id, customer_id; a row with an `event` is no ID), which an engine may read itself."""
        return build_customers(resolved, config)

    def vehicles(self, resolved: DataFrame, mentions_table: str, ids_path: str, vins_path: str | None = None) -> DataFrame:
        """The customer-vehicle links (`golden.build_customer_vehicles`) of `resolved`: as in
        `customers`, and with `vins_path` (a Parquet folder of vin) only the mentions of those VINs."""
        return build_customer_vehicles(resolved)

    def predict_with(self, mentions: DataFrame, model: dict[str, Any], config: ResolutionConfig, table: str | None = None) -> Prediction:
        """Score blocked pairs of the mentions with a trained model (the registry's champion);
        `table` as in `load_for_prediction`."""
        started = time.perf_counter()
        registered, _, rules = self.load_for_prediction(mentions, config, table)
        return self._predict_all(registered, model, rules, config, {"load": time.perf_counter() - started})

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
        chunks = 1
        if config.predict_chunk_mentions is not None:
            chunks = max(1, math.ceil(int(self.scalar(f"SELECT count(*) FROM {table.physical_name}")) / config.predict_chunk_mentions))
        if chunks > 1:
            # Both sides: with the right side whole (14 x 1 chunks at 1,000,000 customers), the
            # mentions a chunk's pairs reach on the right ran DuckDB out of memory.
            log.info("predict: the pairs of the mentions in %d x %d chunks", chunks, chunks)
            with self.spilling():
                pairs, predictions = self._predict_in_chunks(linker, chunks, config.prediction_threshold)
        else:
            pairs, predictions = self._predict_at_once(linker, config.prediction_threshold)
        timings["predict"] = time.perf_counter() - started
        return Prediction(pairs, model, timings, linker, predictions)

    def _predict_at_once(self, linker: Any, threshold: float) -> tuple[DataFrame, Any]:
        """`Prediction.pairs` and `scored` of a prediction in one pass."""
        predictions = linker.inference.predict(threshold_match_probability=threshold)
        return self._sorted_pairs(predictions), predictions

    def _predict_in_chunks(self, linker: Any, chunks: int, threshold: float) -> tuple[DataFrame, Any]:
        """`Prediction.pairs` and `scored` of a prediction in `chunks` x `chunks` of Splink's chunks."""
        with _chunk_progress():
            predictions = linker.inference.predict(threshold_match_probability=threshold, num_chunks_left=chunks, num_chunks_right=chunks)
        return self._sorted_pairs(predictions), predictions

    def _sorted_pairs(self, predictions: Any) -> DataFrame:
        """Splink's predictions as `Prediction.pairs`, each partition in (mention_id_l, mention_id_r) order."""
        return _ordered(self.to_spark(predictions, "pairs", PAIR_COLUMNS)).sortWithinPartitions("mention_id_l", "mention_id_r")

    def predict_new(
        self, mentions: DataFrame, new: DataFrame, model: dict[str, Any], config: ResolutionConfig, table: str | None = None
    ) -> Prediction:
        """Score the `new` mentions (mention_id) against every other mention and among
        themselves with a saved model, without retraining. Term frequencies come from all
        mentions, as in a full run; `table` as in `load_for_prediction`."""
        from splink import Linker

        timings: dict[str, float] = {}
        started = time.perf_counter()
        # Blocks are sized over all the mentions, as in a full run.
        registered, keyed, rules = self.load_for_prediction(mentions, config, table)
        linker = Linker(registered, self._blocked_by(model, rules), log_level=logging.WARNING)
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
        train: Callable[[Any, OneThread], None],
        prediction_threshold: float,
        match_threshold: float,
    ) -> tuple[DataFrame, dict[str, Any]]:
        """Any records with `unique_id` (and `source_dataset` when linking two tables):
        train with `train(linker, one_thread)`, predict, cluster -> (source_dataset, unique_id,
        cluster_id) and the model."""
        from splink import Linker

        registered = [self.register(t, f"input_{i}") for i, t in enumerate(tables)]
        inputs = registered if len(registered) > 1 else registered[0]
        linker = Linker(inputs, settings, log_level=logging.WARNING)
        with self.pairs_unstored():
            train(linker, self.reproducible)
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
        return as_mention_clusters(clusters)

    def _components(self, nodes: Any, edges: Any, threshold: float) -> DataFrame:
        return self.to_spark(self._cluster_table(nodes, edges, threshold), "clusters", ["id", "cluster_id"])

    def _cluster_table(self, nodes: Any, edges: Any, threshold: float) -> Any:
        from splink.clustering import cluster_pairwise_predictions_at_threshold

        return cluster_pairwise_predictions_at_threshold(
            nodes, edges, db_api=self.db_api, node_id_column_name="id", threshold_match_probability=threshold
        )


@contextmanager
def _chunk_progress() -> Iterator[None]:
    """Splink's line per chunk, with the time it expects the rest to take, in the job's log
    (the linker logs warnings only): at 1,000,000 customers the chunks take half an hour."""
    progress = logging.getLogger("splink.internals.linker_components.inference")
    level = progress.level
    progress.setLevel(logging.INFO)
    try:
        yield
    finally:
        progress.setLevel(level)


def pairs_with_an_end_in(pairs: DataFrame, mentions: DataFrame) -> DataFrame:
    """The pairs with at least one end among `mentions` (mention_id), each once."""
    ends = [mentions.select(F.col("mention_id").alias(f"mention_id_{side}")) for side in ("l", "r")]
    return pairs.join(ends[0], "mention_id_l", "left_semi").unionByName(pairs.join(ends[1], "mention_id_r", "left_semi")).distinct()


# EM sessions over too many pairs train on whole blocks of some of this many buckets.
EM_BUCKETS = 1000


def with_em_buckets(mentions: DataFrame, params: LinkageModelConfig) -> DataFrame:
    """The mentions with, per EM training rule n, `_em_<n>`: the bucket (0 to `EM_BUCKETS` - 1)
    of the mention's block under that rule, by a hash of its key values, so a block's mentions
    share one. Unchanged without `max_pairs_for_em`."""
    if params.max_pairs_for_em is None:
        return mentions
    return mentions.withColumns({
        f"_em_{n}": F.pmod(F.xxhash64(*[F.expr(c) for c in columns]), F.lit(EM_BUCKETS)).cast("int")
        for n, columns in enumerate(params.training_blocking)
    })


def em_buckets_in_duckdb(params: LinkageModelConfig) -> str:
    """`with_em_buckets`' columns as DuckDB SQL, each after a comma (empty without
    `max_pairs_for_em`): by DuckDB's hash of the key values, so the buckets, though not
    Spark's, again give a block's mentions one."""
    if params.max_pairs_for_em is None:
        return ""
    return "".join(
        f", CAST(hash({', '.join(f'({c})' for c in columns)}) % {EM_BUCKETS} AS INTEGER) AS _em_{n}"
        for n, columns in enumerate(params.training_blocking)
    )


# Joins the values of a capped rule's columns into its key (`capped_blocking`).
BLOCK_KEY_SEPARATOR = "\u001f"


def capped_blocking(mentions: DataFrame, params: LinkageModelConfig, work: str) -> tuple[DataFrame, list[Any] | None]:
    """The mentions and, when some prediction rule has a block of more than
    `max_block_records` mentions, the rules to predict with instead: such a rule blocks on a
    key column of its own (`_block_<n>`, its values joined) that is null in its oversized
    blocks, so their mentions are compared only through the other rules. None when no block
    is oversized: the model's rules stand. One aggregation sizes every rule's blocks."""
    cap = params.max_block_records
    if cap is None:
        return mentions, None
    keys = {}
    for n, columns in enumerate(params.prediction_blocking):
        values = [F.expr(c).cast("string") for c in columns]
        present = F.lit(True)
        for value in values:
            present = present & value.isNotNull()
        keys[n] = F.when(present, F.concat_ws(BLOCK_KEY_SEPARATOR, *values))
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
    return keyed, _capped_rules(params, capped)


def capped_blocking_in_duckdb(con: Any, source: str, params: LinkageModelConfig, name: str) -> list[Any] | None:
    """`capped_blocking` on the DuckDB connection `con`: the table `name` holds the rows of
    `source` (a relation, as SQL) with the same `_block_<n>` columns, and the same rules are
    returned. The blocks are sized in one pass over `source`, the table written in another."""
    cap = params.max_block_records
    keys = {}
    for n, columns in enumerate(params.prediction_blocking):
        present = " AND ".join(f"({c}) IS NOT NULL" for c in columns)
        joined = ", ".join(f"CAST(({c}) AS VARCHAR)" for c in columns)
        keys[n] = f"CASE WHEN {present} THEN concat_ws(chr({ord(BLOCK_KEY_SEPARATOR)}), {joined}) END"
    capped: list[int] = []
    if cap is not None:
        blocks = ", ".join(f"{{'rule': {n}, 'key': {key}}}" for n, key in keys.items())
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE oversized_blocks AS
            SELECT b.rule, b.key FROM (SELECT unnest([{blocks}]) AS b FROM {source})
            WHERE b.key IS NOT NULL GROUP BY b.rule, b.key HAVING count(*) > {int(cap)}
        """)
        capped = sorted(r for (r,) in con.execute("SELECT DISTINCT rule FROM oversized_blocks").fetchall())
    columns = "".join(
        f", CASE WHEN ({keys[n]}) IN (SELECT key FROM oversized_blocks WHERE rule = {n}) THEN NULL ELSE {keys[n]} END AS _block_{n}"
        for n in capped
    )
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT *{columns} FROM {source}")
    if not capped:
        return None
    log.info("blocking: %s rule(s) leave out blocks of more than %d mentions", len(capped), cap)
    return _capped_rules(params, capped)


def _capped_rules(params: LinkageModelConfig, capped: list[int]) -> list[Any]:
    """The prediction rules, those numbered in `capped` on their key column `_block_<n>`."""
    from splink import block_on

    return [block_on(f"_block_{n}") if n in capped else block_on(*columns) for n, columns in enumerate(params.prediction_blocking)]


def model_tf_columns(model: dict[str, Any]) -> list[str]:
    """Columns the model adjusts for term frequency."""
    columns = {
        level["tf_adjustment_column"]
        for comparison in model.get("comparisons", [])
        for level in comparison.get("comparison_levels", [])
        if level.get("tf_adjustment_column")
    }
    return sorted(columns)


def as_mention_clusters(clusters: DataFrame) -> DataFrame:
    """Clusters as (mention_id, cluster_id string), from a clustering's (id, cluster_id)."""
    return clusters.select(F.col("id").alias("mention_id"), F.col("cluster_id").cast("string"))


def _ordered(pairs: DataFrame) -> DataFrame:
    """Each pair once, with the smaller id on the left."""
    return pairs.select(
        F.least("mention_id_l", "mention_id_r").alias("mention_id_l"),
        F.greatest("mention_id_l", "mention_id_r").alias("mention_id_r"),
        "match_probability",
        "match_weight",
    )


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

    def scalar(self, sql: str) -> Any:
        return self.spark.sql(sql).first()[0]

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
        from entity_resolution.duckdb_engine import DuckDBEngine

        chunked = config.predict_chunk_mentions is not None and mention_count > config.predict_chunk_mentions
        return DuckDBEngine(spark, work_dir, config.duckdb_memory_limit, config.duckdb_settle_memory_limit, on_disk=chunked)
    return SparkEngine(spark, work_dir)
