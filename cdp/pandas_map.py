"""`mapInPandas`, or the same function on the driver for a small local lake.

Scoring with a scikit-learn model in `mapInPandas` needs Python workers, and a worker that
Spark forks afresh (the first of a run, or after a minute idle) imports pandas and
scikit-learn before its first row: 5 s of CPU per worker on a 2-core laptop, most of a
2,000-customer scoring step. On a small local lake the rows fit on the driver, which has the
model and those libraries loaded already.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pandas as pd
from pyspark.sql import DataFrame

__all__ = ["map_in_pandas"]

PandasMap = Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]


def map_in_pandas(df: DataFrame, function: PandasMap, schema: str, *, on_driver: bool) -> DataFrame:
    """`df.mapInPandas(function, schema)`; with `on_driver`, `function` runs on the driver
    over all of `df` as one batch (only for data known to be small: `RunContext.small_lake`)."""
    if not on_driver:
        return df.mapInPandas(function, schema)  # type: ignore[arg-type]
    spark = df.sparkSession
    empty = spark.createDataFrame([], schema)
    out = [batch for batch in function(iter([df.toPandas()])) if len(batch)]
    if not out:
        return empty
    return spark.createDataFrame(pd.concat(out, ignore_index=True)[empty.columns], empty.schema)
