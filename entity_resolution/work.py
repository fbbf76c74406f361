"""The tables and scratch folders one resolution run works with, and the helpers its full
and incremental paths share."""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from cdp import catalog
from cdp.config import ResolutionConfig
from cdp.lake import Lake
from entity_resolution.crosswalk import label_pairs
from entity_resolution.overrides import Overrides

__all__ = ["ResolutionTables", "checkpoint", "decided_pairs", "labelled_pairs", "review_range"]


class ResolutionTables:
    """Locations of every table a resolution run reads or writes."""

    def __init__(self, lake: Lake) -> None:
        self.mentions = lake.path(catalog.PERSON_MENTIONS)
        self.pairs = lake.path(catalog.MATCH_PAIRS)
        self.xref = lake.path(catalog.CUSTOMER_XREF)
        self.unidentified = lake.path(catalog.UNIDENTIFIED_RECORDS)
        self.customers = lake.path(catalog.CUSTOMERS)
        self.vehicles = lake.path(catalog.CUSTOMER_VEHICLES)
        self.history = lake.path(catalog.CUSTOMER_ID_HISTORY)
        self.review = lake.path(catalog.RESOLUTION_REVIEW)
        self.model = lake.path(catalog.RESOLUTION_MODEL)
        self.work = lake.path(catalog.work("resolution"))


def checkpoint(spark: SparkSession, df: DataFrame, path: str) -> DataFrame:
    """Materialise `df` (so later writes cannot change what it reads) and read it back."""
    df.write.mode("overwrite").parquet(path)
    return spark.read.parquet(path)


def review_range(resolution: ResolutionConfig) -> tuple[float, float]:
    """The scores of the pairs the review queue reads: from the lower of the review band's low
    end and the match threshold, up to (not including) the band's top."""
    return min(resolution.review_band[0], resolution.match_threshold), resolution.review_band[1]


def labelled_pairs(spark: SparkSession, tables: ResolutionTables, pairs: DataFrame, assigned: DataFrame, resolution: ResolutionConfig) -> DataFrame:
    """Pairs down to the review band with each side's customer, materialised once: an
    incremental run's review queue and crosswalk both read them."""
    floor, _ = review_range(resolution)
    return checkpoint(spark, label_pairs(pairs, assigned, floor), f"{tables.work}/labelled_pairs")


def decided_pairs(spark: SparkSession, overrides: Overrides) -> DataFrame | None:
    pairs = [d.pair for d in (*overrides.must_link, *overrides.cannot_link)]
    return spark.createDataFrame(pairs, "mention_id_l string, mention_id_r string") if pairs else None
