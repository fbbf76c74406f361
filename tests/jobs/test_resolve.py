"""Resolution end to end on generated data, with each linkage engine."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from cdp.lake import Lake, read_table
from entity_resolution.evaluation import pairwise_scores, truth_mentions
from jobs.resolve import run

pytestmark = pytest.mark.spark


def _resolve(spark, ingested, engine):
    config, root, *_ = ingested
    config = config.model_copy(update={"resolution": config.resolution.model_copy(update={"engine": engine})})
    result, _ = run(spark, config)
    lake = Lake(config.lake.root)
    xref = read_table(spark, lake.table("gold", "customer_xref"))
    truth = truth_mentions(spark.read.option("header", True).csv(str(root / "raw" / "truth" / "mentions.csv")))
    return result, xref, truth, lake


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_each_engine_resolves_generated_customers(spark, ingested, engine):
    result, xref, truth, lake = _resolve(spark, ingested, engine)
    mentions = read_table(spark, lake.table("gold", "person_mentions"))
    # Every mention, hence every person in every source record, has exactly one customer.
    assert xref.count() == mentions.count() == xref.select("mention_id").distinct().count()
    assert xref.filter(F.col("customer_id").isNull()).count() == 0
    scores = pairwise_scores(xref.select("mention_id", F.col("customer_id").alias("cluster_id")), truth)
    assert scores["pairwise_f1"] > 0.9, scores
    assert result.model["link_type"] == "dedupe_only"


def test_same_data_gives_same_customer_ids(spark, ingested):
    _, first, _, _ = _resolve(spark, ingested, "duckdb")
    first = {r.mention_id: r.customer_id for r in first.collect()}
    _, again, _, _ = _resolve(spark, ingested, "duckdb")
    assert {r.mention_id: r.customer_id for r in again.collect()} == first
