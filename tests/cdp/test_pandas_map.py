"""`map_in_pandas` gives the same rows on the driver as on the executors, and really runs there."""

from __future__ import annotations

import datetime as dt
import os

import pandas as pd
import pytest
from pyspark.testing import assertDataFrameEqual

from cdp.pandas_map import map_in_pandas

_OUT = "customer_id string, as_of_date date, score double, scored_at timestamp, pid long"


def _score(batches):
    for batch in batches:
        yield pd.DataFrame({
            "pid": os.getpid(),  # columns in another order than the schema's
            "customer_id": batch["customer_id"].to_numpy(),
            "as_of_date": batch["as_of_date"].to_numpy(),
            "score": batch["value"].astype("float64") * 2,
            "scored_at": pd.Timestamp(dt.datetime(2026, 7, 1, 8, 30)),
        })


@pytest.mark.spark
def test_the_driver_path_equals_map_in_pandas_and_runs_on_the_driver(spark):
    rows = spark.createDataFrame(
        [("C1", dt.date(2026, 7, 1), 1.5), ("C2", dt.date(2026, 7, 1), None), ("客户3", dt.date(2025, 1, 31), -2.0)],
        "customer_id string, as_of_date date, value double",
    ).repartition(2)
    on_executors = map_in_pandas(rows, _score, _OUT, on_driver=False)
    on_driver = map_in_pandas(rows, _score, _OUT, on_driver=True)
    assert on_driver.schema == on_executors.schema
    assertDataFrameEqual(on_driver.drop("pid"), on_executors.drop("pid"))
    assert {r["pid"] for r in on_driver.collect()} == {os.getpid()}
    assert os.getpid() not in {r["pid"] for r in on_executors.collect()}
    assert on_driver.filter("customer_id = 'C1'").first()["scored_at"] == dt.datetime(2026, 7, 1, 8, 30)
    # No rows in: no rows out, with the schema.
    empty = map_in_pandas(rows.limit(0), _score, _OUT, on_driver=True)
    assert empty.count() == 0 and empty.schema == on_executors.schema
