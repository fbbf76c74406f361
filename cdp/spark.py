"""The one place a SparkSession is built: Delta enabled, Splink's similarity JAR registered."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pyspark import SparkConf, SparkContext
from pyspark.sql import SparkSession

from cdp.config import AppConfig
from cdp.delta_stats import NO_STATS_BY_DEFAULT
from cdp.errors import ConfigurationError

__all__ = ["build_spark_session", "delta_jars", "give_back_heap", "interpreted_session", "local_bytes", "small_lake_bytes", "splink_similarity_jar"]

log = logging.getLogger(__name__)

_DELTA_SETTINGS = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # A table created outside `cdp.lake` keeps no statistics, so none of personal data.
    **NO_STATS_BY_DEFAULT,
}


def splink_similarity_jar() -> str:
    """Path of the Scala similarity UDF JAR that Splink ships for Spark 4."""
    from splink.backends.spark import similarity_jar_location

    return str(similarity_jar_location())


def delta_jars(config: AppConfig) -> list[str]:
    """Delta Lake JARs fetched by `scripts/setup.sh` into the configured folder."""
    if not config.spark.jars_dir:
        return []
    folder = Path(config.resolve(config.spark.jars_dir))
    jars = sorted(str(p) for p in folder.glob("delta-*.jar"))
    if not jars:
        raise ConfigurationError(
            f"spark.jars_dir: no Delta Lake JARs in {folder}; run scripts/setup.sh (it fetches them with mvn)"
        )
    return jars


# Below this much committed heap there is little to give back, and collecting costs time: the
# 2,000-customer demo pipeline took 151-167 s collecting after each step against 140-155 s not.
GIVE_BACK_ABOVE_BYTES = 1 << 30


def give_back_heap(spark: SparkSession, above: int = GIVE_BACK_ABOVE_BYTES) -> None:
    """A full collection in the driver's JVM when its heap holds more than `above` bytes,
    after which the collector returns to the system what it holds beyond
    `-XX:MaxHeapFreeRatio`. For the moment before DuckDB, in the same process tree, takes
    gigabytes while Spark waits, or a step starts with the heap the last one grew: the two
    would otherwise peak together."""
    jvm = spark.sparkContext._jvm
    if jvm is not None and jvm.java.lang.Runtime.getRuntime().totalMemory() > above:
        jvm.java.lang.System.gc()


def local_bytes(folder: str, above: int | None = None) -> int | None:
    """The size of the files under `folder` when it is on the local disk, counted until it
    passes `above` (then None); None for a remote or missing folder."""
    if "://" in folder or not Path(folder).is_dir():
        return None
    size = 0
    for root, _, files in os.walk(folder):
        size += sum((Path(root) / name).stat().st_size for name in files)
        if above is not None and size > above:
            return None
    return size


def small_lake_bytes(config: AppConfig) -> int | None:
    """The size of the feed files under `lake.raw_root` when they are on the local disk and add
    up to `spark.small_data_max_bytes` or less; None for a larger or remote lake."""
    return local_bytes(config.resolve(config.lake.raw_root), config.spark.small_data_max_bytes)


def _small_data_settings(config: AppConfig) -> dict[str, str]:
    """The profile's small-data settings for a small lake (`small_lake_bytes`), else none."""
    settings = config.spark.small_data_settings
    size = small_lake_bytes(config) if settings else None
    if size is None:
        return {}
    log.info("small data (%.1f MB of feed files): %s", size / 2**20, ", ".join(f"{k}={v}" for k, v in settings.items()))
    return dict(settings)


# Queries of a few megabytes cost their planning and compiling more than their evaluation: the
# staging plan of a feed's batch holds hundreds of expressions, whose generated code takes
# seconds to compile. On the 10,000-customer bench's incremental ingest (1,217 rows in six
# feeds), each feed in such a session, with its suite on the driver: 47 s -> 33 s after the
# session started (the whole application without generated code: 37 s, but the later steps,
# which read whole tables, were slower).
_INTERPRETED = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"}


def interpreted_session(spark: SparkSession) -> SparkSession:
    """A session of `spark`'s application (its executors, cached data and tables) whose
    queries are evaluated without generated code, for small inputs; `spark` is left as it is."""
    session = spark.newSession()
    for key, value in _INTERPRETED.items():
        session.conf.set(key, value)
    return session


def _submitted_conf() -> SparkConf:
    """spark-submit's settings when this driver was launched by it, else an empty conf.

    A driver started by spark-submit already has a JVM (PYSPARK_GATEWAY_PORT is set), so its
    command-line master, memory and JARs are readable and must not be overridden.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return SparkConf(loadDefaults=False)
    SparkContext._ensure_initialized()  # type: ignore[attr-defined]
    return SparkConf()


def build_spark_session(
    config: AppConfig, *, master: str | None = None, overrides: dict[str, str] | None = None
) -> SparkSession:
    """Build (or join) the SparkSession described by the profile.

    Under spark-submit the master and driver memory already set on the command line win;
    `master` and `overrides` (e.g. from the CLI) win over the profile.
    """
    submitted = _submitted_conf()
    builder = SparkSession.builder.appName(config.spark.app_name)
    chosen_master = master or (None if submitted.contains("spark.master") else config.spark.master)
    if submitted.contains("spark.master") and not master:
        log.info("master set by spark-submit: %s", submitted.get("spark.master"))
    if chosen_master:
        builder = builder.master(chosen_master)
    if (chosen_master or "").startswith("local"):
        # Python workers must use this interpreter (the project's virtualenv), not `python3`.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if config.spark.driver_memory and not submitted.contains("spark.driver.memory"):
        builder = builder.config("spark.driver.memory", config.spark.driver_memory)
    jars = [*delta_jars(config), splink_similarity_jar()]
    existing = submitted.get("spark.jars", "")
    builder = builder.config("spark.jars", ",".join(j for j in [existing, *jars] if j))
    small = _small_data_settings(config)
    for key, value in {**_DELTA_SETTINGS, **config.spark.settings, **small, **(overrides or {})}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    log.info("spark session ready: master=%s", spark.sparkContext.master)
    return spark
