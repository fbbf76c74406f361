"""The plain Splink baseline's input: raw values, with blanks as missing."""

from __future__ import annotations

import pytest

from bench.plain_splink import _digits, _raw

pytestmark = pytest.mark.spark


def test_blank_raw_fields_are_missing_and_nothing_else_is_cleaned(spark):
    df = spark.createDataFrame(
        [("", "  ", "138-0013-8000"), ("a@b.cn ", "王偉", ""), (None, None, None)], "email string, name string, mobile string"
    )
    rows = [tuple(r) for r in df.select(_raw("email"), _raw("name"), _digits("mobile")).collect()]
    # A blank is no value (blocking on "" would pair every blank with every other); the rest stays raw.
    assert rows == [(None, None, "13800138000"), ("a@b.cn ", "王偉", None), (None, None, None)]
