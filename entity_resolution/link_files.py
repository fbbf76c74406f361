"""`cdp link` on files: dedupe one file, or link two, of arbitrary person records.

Writes one row per input record: source_dataset (the file's name), unique_id, cluster_id.
The mapping's roles are described in `entity_resolution/link.py`.
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp import catalog
from cdp.config import AppConfig
from cdp.errors import UsageError
from cdp.files import write_one_file
from cdp.lake import Lake
from entity_resolution.engines import choose_engine
from entity_resolution.link import LinkMapping, build_link_settings, file_labels, train_link_model, with_link_columns

__all__ = ["link_files"]


def _read(spark: SparkSession, path: str) -> DataFrame:
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        # Exports often pad fields after the delimiter ("rec_id, given_name"): names and values are trimmed.
        read = (
            spark.read.option("header", True).option("multiLine", True).option("escape", '"')
            .option("ignoreLeadingWhiteSpace", True).option("ignoreTrailingWhiteSpace", True)
        )
        frame = read.csv(path)
    elif suffix == ".parquet" or Path(path).is_dir():
        frame = spark.read.parquet(path)
    else:
        raise UsageError(f"{path}: only .csv and .parquet files can be linked")
    return frame.toDF(*[c.strip() for c in frame.columns])


def link_files(spark: SparkSession, config: AppConfig, mapping: LinkMapping, inputs: list[str], out: str) -> dict[str, int]:
    """Link the files and write the clusters to `out` (.csv or .parquet). Returns counts."""
    if not 1 <= len(inputs) <= 2:
        raise UsageError("give one file to dedupe or two to link")
    labels = file_labels(inputs)
    tables = []
    for path, label in zip(inputs, labels):
        records = with_link_columns(_read(spark, path), mapping, path)
        blank = records.filter(F.col("unique_id").isNull()).limit(1).count()
        duplicate = records.groupBy("unique_id").count().filter("count > 1").limit(1).collect()
        if blank or duplicate:
            what = "an empty" if blank else f"a repeated ({duplicate[0]['unique_id']})"
            raise UsageError(f"{path}: column {mapping.unique_id} has {what} value; unique_id must identify each row")
        tables.append(records.withColumn("source_dataset", F.lit(label)))
    work = Lake(config.resolve(config.lake.root)).path(catalog.work("link"))
    total = sum(t.count() for t in tables)
    engine = choose_engine(spark, config.resolution, total, work)
    try:
        clusters, _ = engine.link_and_cluster(
            tables,
            build_link_settings(mapping, "dedupe_only" if len(tables) == 1 else "link_only"),
            lambda linker, one_thread: train_link_model(linker, mapping, seed=config.resolution.seed, one_thread=one_thread),
            config.resolution.prediction_threshold,
            mapping.match_threshold,
        )
        result = clusters.select("source_dataset", "unique_id", F.concat(F.lit("K"), F.col("cluster_id").cast("string")).alias("cluster_id"))
        fmt = "csv" if out.lower().endswith(".csv") else "parquet"
        # One file, replaced on a re-run; rows in a stable order, so the same input gives the same bytes.
        written = write_one_file(spark, result, out, fmt, order_by=("source_dataset", "unique_id"), replace=True)
        clusters_written = result.select("cluster_id").distinct().count()
    finally:
        engine.close()
    return {"records": total, "clusters": clusters_written, "written": written}
