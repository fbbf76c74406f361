"""A Delta version's files and rows from its log, on this machine's disk and by Spark."""

from __future__ import annotations

import pytest

from cdp import table_log
from cdp.lake import merge_into, overwrite_table, read_table
from cdp.table_log import table_files, table_rows

pytestmark = pytest.mark.spark

SCHEMA = "record_id string, mobile string, amount int"


def test_files_and_rows_of_each_version_agree_with_spark(spark, tmp_path, monkeypatch):
    path = str(tmp_path / "t")
    overwrite_table(spark, spark.createDataFrame([("a", "13800138000", 1), ("b", None, 2)], SCHEMA), path)
    merge_into(spark, spark.createDataFrame([("b", None, 3), ("c", None, 4)], SCHEMA), path, ["record_id"])
    merge_into(spark, spark.createDataFrame([("d", None, 5)], SCHEMA), path, ["record_id"])

    on_disk = [(table_files(spark, path, v), table_rows(spark, path, v)) for v in range(3)]
    monkeypatch.setattr(table_log, "local_folder", lambda p: None)  # as on cluster storage: by Spark
    by_spark = [(table_files(spark, path, v), table_rows(spark, path, v)) for v in range(3)]
    assert on_disk == by_spark
    assert [rows for _, rows in on_disk] == [2, 3, 4]
    # Each merge added files; the latest version's are those Spark scans.
    assert on_disk[0][0] and on_disk[1][0] - on_disk[0][0] and on_disk[2][0] - on_disk[1][0]
    assert on_disk[2][0] == {f.removeprefix("file:") for f in read_table(spark, path).inputFiles()}
