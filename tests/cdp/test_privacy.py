"""Masking of personal data for terminal views and exports."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from cdp.privacy import MASKERS

pytestmark = pytest.mark.spark


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("mobile", "13812348000", "138****8000"),
        ("id_number", "11010519491231002X", "110***********002X"),
        ("name", "王小明", "王**"),
        ("name", "WANG WEI", "W*******"),
        ("email", "wang.wei@example.com", "w***@example.com"),
        ("address", "北京市朝阳区建国路1号", "北京市朝阳区…"),
        # Too short to hide a middle: only the first character stays.
        ("mobile", "1380", "1***"),
        ("mobile", None, None),
    ],
)
def test_masking(spark, kind, value, masked):
    df = spark.createDataFrame([(value,)], "v string")
    assert df.select(MASKERS[kind](F.col("v")).alias("m")).first().m == masked
