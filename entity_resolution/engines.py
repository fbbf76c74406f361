"""Linkage engines: the same Splink settings on DuckDB (one machine) or Spark (a cluster).

Both take person mentions as a Spark DataFrame and give back Spark DataFrames of scored
pairs and clusters; DuckDB exchanges data with Spark through Parquet files in a work folder,
so nothing passes through the driver's memory.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from cdp.config import ResolutionConfig
from entity_resolution.model import LinkageParams, build_settings, train_linker

__all__ = ["DuckDBEngine", "LinkageEngine", "LinkageResult", "SparkEngine", "choose_engine"]

log = logging.getLogger(__name__)


@dataclass
class LinkageResult:
    """Scored pairs (mention_id_l, mention_id_r, match_probability, match_weight), clusters
    (mention_id, cluster_id), the trained model as a dict, and timings in seconds."""

    pairs: DataFrame
    clusters: DataFrame
    model: dict[str, Any]
    timings: dict[str, float]


class LinkageEngine(ABC):
    name: str

    def __init__(self, spark: SparkSession, work_dir: str) -> None:
        self.spark = spark
        self.work_dir = work_dir.rstrip("/")

    @abstractmethod
    def _db_api(self, mentions: DataFrame) -> tuple[Any, Any]:
        """(Splink database API, registered mentions table)."""

    @abstractmethod
    def _to_spark(self, splink_df: Any, name: str, columns: list[str]) -> DataFrame:
        """A Splink result table as a Spark DataFrame with the given columns."""

    def run(self, mentions: DataFrame, params: LinkageParams, config: ResolutionConfig, model: dict[str, Any] | None = None) -> LinkageResult:
        """Train (unless a model is given), predict and cluster."""
        from splink import Linker

        timings: dict[str, float] = {}
        started = time.perf_counter()
        _, table = self._db_api(mentions)
        linker = Linker(table, model or build_settings(params), log_level=logging.WARNING)
        timings["load"] = time.perf_counter() - started
        if model is None:
            started = time.perf_counter()
            train_linker(linker, params, seed=config.seed)
            timings["train"] = time.perf_counter() - started
        started = time.perf_counter()
        predictions = linker.inference.predict(threshold_match_probability=config.prediction_threshold)
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, config.match_threshold)
        pairs = self._to_spark(predictions, "pairs", ["mention_id_l", "mention_id_r", "match_probability", "match_weight"])
        clustered = self._to_spark(clusters, "clusters", ["mention_id", "cluster_id"])
        timings["predict_cluster"] = time.perf_counter() - started
        return LinkageResult(pairs, clustered, linker.misc.save_model_to_json(), timings)


class DuckDBEngine(LinkageEngine):
    name = "duckdb"

    def __init__(self, spark: SparkSession, work_dir: str, memory_limit: str = "6GB") -> None:
        super().__init__(spark, work_dir)
        self.memory_limit = memory_limit

    def _db_api(self, mentions: DataFrame) -> tuple[Any, Any]:
        import duckdb
        from splink import DuckDBAPI

        path = f"{self.work_dir}/mentions"
        mentions.write.mode("overwrite").parquet(path)
        con = duckdb.connect()
        # Unbounded, DuckDB takes up to 80% of RAM (20 GB measured at a million records).
        con.execute(f"SET memory_limit = '{self.memory_limit}'")
        con.execute(f"SET temp_directory = '{_local(self.work_dir)}/duckdb_tmp'")
        con.execute(f"CREATE TABLE mentions AS SELECT * FROM read_parquet('{_local(path)}/*.parquet')")
        self._con = con
        api = DuckDBAPI(con)
        return api, api.register("mentions")

    def _to_spark(self, splink_df: Any, name: str, columns: list[str]) -> DataFrame:
        path = f"{self.work_dir}/{name}"
        relation = splink_df.as_duckdbpyrelation().select(", ".join(columns))
        relation.write_parquet(f"{_local(path)}.parquet", overwrite=True)
        return self.spark.read.parquet(f"{path}.parquet")


def _local(path: str) -> str:
    return path.removeprefix("file:")


class SparkEngine(LinkageEngine):
    name = "spark"

    def _db_api(self, mentions: DataFrame) -> tuple[Any, Any]:
        from splink import SparkAPI

        if self.spark.sparkContext.getCheckpointDir() is None:
            # Splink's Spark backend breaks long lineages with checkpoints.
            self.spark.sparkContext.setCheckpointDir(f"{self.work_dir}/checkpoints")
        api = SparkAPI(spark_session=self.spark)
        return api, api.register(mentions)

    def _to_spark(self, splink_df: Any, name: str, columns: list[str]) -> DataFrame:
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
        return DuckDBEngine(spark, work_dir, config.duckdb_memory_limit)
    return SparkEngine(spark, work_dir)
