"""Score customers with a segmentation model on the Spark executors (mapInPandas), or on
the driver for a small local lake.

The fitted pipeline travels to the executors inside the function's closure, so executors
need neither the MLflow store nor the driver holding any customer rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.pandas_map import map_in_pandas
from segmentation.registry import SegmentationModel

__all__ = ["SEGMENT_SCHEMA", "build_population_filter", "score_customers"]

SEGMENT_SCHEMA = (
    "customer_id string, as_of_date date, segment_id int, segment_name string, model_name string, "
    "model_version string, scored_at timestamp"
)


def build_population_filter(population: str) -> Column:
    """Who is segmented: `owners` (bought a vehicle or had one serviced) or `all`."""
    if population == "all":
        return F.lit(True)
    return (F.col("vehicles_bought") > 0) | (F.col("service_visits_total") > 0)


def score_customers(features: DataFrame, model: SegmentationModel, scored_at: dt.datetime, on_driver: bool = False) -> DataFrame:
    """Feature rows (customer_id, as_of_date and the model's features) -> `SEGMENT_SCHEMA`.
    `on_driver`: a small lake's rows are scored on the driver (`cdp.pandas_map`)."""
    pipeline, columns = model.pipeline, list(model.features)
    names = {segment_id: str(s["name"]) for segment_id, s in model.segments.items()}
    name, version = model.name, model.version

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if batch.empty:
                continue
            labels = pipeline.predict(batch[columns].astype("float64"))
            yield pd.DataFrame(
                {
                    "customer_id": batch["customer_id"].to_numpy(),
                    "as_of_date": batch["as_of_date"].to_numpy(),
                    "segment_id": labels.astype("int32"),
                    "segment_name": [names[int(label)] for label in labels],
                    "model_name": name,
                    "model_version": version,
                    "scored_at": pd.Timestamp(scored_at),
                }
            )

    selected = features.select("customer_id", "as_of_date", *[F.col(c).cast("double") for c in columns])
    return map_in_pandas(selected, score, SEGMENT_SCHEMA, on_driver=on_driver)
