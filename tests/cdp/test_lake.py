"""Delta helpers: idempotent MERGE, refusal of duplicate source keys, no statistics on PII."""

from __future__ import annotations

import pytest
from pyspark.testing import assertDataFrameEqual

from cdp.lake import DuplicateKeyError, Lake, merge_into, read_table

pytestmark = pytest.mark.spark

SCHEMA = "record_id string, mobile string, amount int"


def test_merge_twice_equals_once_and_updates(spark, tmp_path):
    path = Lake(str(tmp_path)).silver("t")
    first = spark.createDataFrame([("a", "13800138000", 1), ("b", None, 2)], SCHEMA)
    merge_into(spark, first, path, ["record_id"], no_stats_columns=["mobile"])
    merge_into(spark, first, path, ["record_id"], no_stats_columns=["mobile"])
    assertDataFrameEqual(read_table(spark, path), first)
    merge_into(spark, spark.createDataFrame([("b", None, 3), ("c", None, 4)], SCHEMA), path, ["record_id"])
    expected = spark.createDataFrame([("a", "13800138000", 1), ("b", None, 3), ("c", None, 4)], SCHEMA)
    assertDataFrameEqual(read_table(spark, path), expected)


def test_merge_with_duplicate_source_keys_fails_and_leaves_target(spark, tmp_path):
    path = Lake(str(tmp_path)).silver("t")
    merge_into(spark, spark.createDataFrame([("a", None, 1)], SCHEMA), path, ["record_id"])
    dupes = spark.createDataFrame([("a", None, 5), ("a", None, 6)], SCHEMA)
    with pytest.raises(DuplicateKeyError, match=rf"^merge into {path}: source has 1 key\(s\) on \(record_id\) with more than one row$"):
        merge_into(spark, dupes, path, ["record_id"])
    assertDataFrameEqual(read_table(spark, path), spark.createDataFrame([("a", None, 1)], SCHEMA))


def test_pii_columns_get_no_delta_statistics(spark, tmp_path):
    path = Lake(str(tmp_path)).silver("t")
    merge_into(spark, spark.createDataFrame([("a", "13800138000", 1)], SCHEMA), path, ["record_id"], no_stats_columns=["mobile"])
    props = {r.key: r.value for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").collect()}
    assert props["delta.dataSkippingStatsColumns"] == "`record_id`,`amount`"
    log = "".join(p.read_text() for p in (tmp_path / "silver" / "t" / "_delta_log").glob("*.json"))
    assert "13800138000" not in log
