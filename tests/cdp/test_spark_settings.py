"""Which Spark settings a run gets from its profile: the small-data ones only for small lakes;
Java options reach the JVM the session starts."""

from __future__ import annotations

import pytest

from cdp.config import LakeConfig, SparkConfig
from cdp.spark import _small_data_settings


def test_small_data_settings_apply_to_small_local_feeds_only(app_config, tmp_path):
    raw = tmp_path / "raw"
    (raw / "leads").mkdir(parents=True)
    (raw / "leads" / "leads_part0001.csv").write_bytes(b"x" * 1000)
    spark = SparkConfig(small_data_settings={"spark.sql.shuffle.partitions": "2"}, small_data_max_bytes=1500)

    def chosen(**changes):
        config = app_config.model_copy(update={"spark": spark.model_copy(update=changes), "lake": LakeConfig(root=str(tmp_path / "lake"), raw_root=str(raw))})
        return _small_data_settings(config)

    assert chosen() == {"spark.sql.shuffle.partitions": "2"}
    (raw / "leads" / "leads_part0002.csv").write_bytes(b"x" * 1000)  # 2,000 bytes: past the limit
    assert chosen() == {}
    assert chosen(small_data_max_bytes=2000) == {"spark.sql.shuffle.partitions": "2"}
    assert chosen(small_data_settings={}) == {}
    cluster = app_config.model_copy(update={"spark": spark, "lake": LakeConfig(root="hdfs:///cdp/lake", raw_root="hdfs:///cdp/raw")})
    assert _small_data_settings(cluster) == {}
    # Booleans and numbers in the profile become Spark's strings.
    assert SparkConfig(small_data_settings={"spark.sql.adaptive.enabled": False}).small_data_settings == {"spark.sql.adaptive.enabled": "false"}


@pytest.mark.spark
def test_java_options_set_before_the_session_reach_the_jvm_it_starts(spark):
    """`spark.driver.extraJavaOptions` in a profile (or a test's overrides) takes effect only
    if it is given before the JVM starts: the session's JVM runs the collector it names."""
    management = spark.sparkContext._jvm.java.lang.management.ManagementFactory  # type: ignore[attr-defined]
    collectors = {bean.getName() for bean in management.getGarbageCollectorMXBeans()}
    # The JVM's own arguments, not the session's conf: a later builder (a step's run context
    # with the profile's settings) rewrites the conf value of a session that is already running.
    assert "-XX:+UseParallelGC" in list(management.getRuntimeMXBean().getInputArguments())
    assert collectors == {"PS Scavenge", "PS MarkSweep"}, collectors


@pytest.mark.spark
def test_the_heap_is_given_back_by_a_full_collection(spark):
    """`give_back_heap` runs a full collection in the driver's JVM (after which the collector
    sizes the heap down to the profile's `MaxHeapFreeRatio`) when the heap is larger than
    asked: the old generation's collector counts one more."""
    from cdp.spark import give_back_heap

    management = spark.sparkContext._jvm.java.lang.management.ManagementFactory  # type: ignore[attr-defined]

    def full_collections() -> int:
        return sum(b.getCollectionCount() for b in management.getGarbageCollectorMXBeans() if b.getName() == "PS MarkSweep")

    before = full_collections()
    give_back_heap(spark, above=0)
    assert full_collections() == before + 1
    give_back_heap(spark, above=1 << 40)  # a heap this small is left as it is
    assert full_collections() == before + 1
