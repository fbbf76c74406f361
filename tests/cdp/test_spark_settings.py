"""Which Spark settings a run gets from its profile: the small-data ones only for small lakes. No JVM."""

from __future__ import annotations

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
