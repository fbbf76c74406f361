"""Baseline: plain Splink (DuckDB) on the same person mentions, without this project's
standardisation: raw names, digits-only mobiles, raw IDs and VINs, Splink's standard
comparisons. Blocking follows the platform's plan on the raw columns (mobile, ID, VIN, name
within a dealer, email), so the two differ in standardisation and model, not in which pairs
they look at. Prints time and pairwise scores against the generator's truth.

    python -m bench.plain_splink --conf conf/local.yaml --truth data/raw/truth/mentions.csv
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp import catalog
from cdp.lake import Lake, read_table
from entity_resolution.evaluation import pairwise_scores, truth_mentions
from entity_resolution.mentions import MENTION_SOURCES

__all__ = ["build_raw_mentions", "main"]


def _raw(column: str) -> F.Column:
    """The raw value, with an empty field read as missing (a CSV's blank cell is "", and
    blocking on "" would compare every record with a blank to every other)."""
    return F.when(F.trim(F.col(column)) != "", F.col(column))


def _digits(column: str | None) -> F.Column:
    if column is None:
        return F.lit(None).cast("string")
    digits = F.regexp_replace(F.col(column), r"[^0-9]", "")
    return F.when(F.length(digits) > 0, digits)


def build_raw_mentions(spark, lake: Lake) -> DataFrame:
    """Mentions from bronze raw values of the records that reached silver; blanks are nulls,
    nothing else is cleaned."""
    parts = []
    for s in MENTION_SOURCES:
        silver = read_table(spark, lake.path(catalog.silver(s.feed))).select("record_id", "_file_hash", "_source_row")
        bronze = read_table(spark, lake.path(catalog.bronze(s.feed))).join(silver, ["_file_hash", "_source_row"])
        parts.append(
            bronze.select(
                F.concat_ws(":", F.lit(s.feed), F.col("record_id"), F.lit(s.role)).alias("mention_id"),
                F.trim(_raw(s.name)).alias("full_name"),
                _raw("dealer_code").alias("dealer_code"),
                _digits(s.mobile).alias("mobile"),
                (_raw("id_number") if s.id_number else F.lit(None).cast("string")).alias("id_number"),
                (_raw("birth_date") if s.details else F.lit(None).cast("string")).alias("birth_date"),
                (_raw("email") if s.details else F.lit(None).cast("string")).alias("email"),
                (_raw("vin") if s.vin else F.lit(None).cast("string")).alias("vin"),
            )
        )
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


def _birth_date_comparison():
    """Exact match on birth date, with the disagreement level's m fixed at 1%. Only sales
    orders carry a birth date, so among pairs that share a mobile hardly any disagree (1 of
    4,365 at 100k customers): EM drives that level's m to exactly 0.0, which Splink rejects
    ("m_probability value 0.0 is below the minimum allowed value")."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    return cl.CustomComparison(
        [
            cll.NullLevel("birth_date"),
            cll.ExactMatchLevel("birth_date"),
            cll.ElseLevel().configure(m_probability=0.01, fix_m_probability=True),
        ],
        output_column_name="birth_date",
    )


def run_plain_splink(
    spark, mentions: DataFrame, work: str, threshold: float, memory_limit: str
) -> tuple[DataFrame, float]:
    """Plain Splink on `mentions` with DuckDB given the same memory budget (and spill folder)
    as the platform's DuckDB engine; returns (mention_id, cluster_id) and linkage seconds."""
    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    mentions.write.mode("overwrite").parquet(f"{work}/raw_mentions")
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{work}/duckdb_tmp'")
    con.execute(f"CREATE TABLE m AS SELECT * FROM read_parquet('{work}/raw_mentions/*.parquet')")
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="mention_id",
        comparisons=[
            cl.NameComparison("full_name"),
            cl.ExactMatch("mobile").configure(term_frequency_adjustments=True),
            cl.LevenshteinAtThresholds("id_number", [1]),
            _birth_date_comparison(),
            cl.EmailComparison("email"),
            cl.ExactMatch("vin"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("mobile"), block_on("id_number"), block_on("vin"), block_on("full_name", "dealer_code"), block_on("email"),
        ],
    )
    linker = Linker(DuckDBAPI(con).register("m"), settings, log_level=logging.WARNING)
    linker.training.estimate_probability_two_random_records_match([block_on("mobile", "full_name"), block_on("id_number")], recall=0.6)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=42)
    for rule in (block_on("mobile"), block_on("vin")):  # the platform's training sessions
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(predictions, threshold)
    clusters.as_duckdbpyrelation().select("mention_id, cluster_id").write_parquet(f"{work}/raw_clusters.parquet", overwrite=True)
    seconds = time.perf_counter() - started
    return spark.read.parquet(f"{work}/raw_clusters.parquet"), seconds


def main(argv: list[str] | None = None) -> int:
    from app.context import RunContext
    from cdp.logs import configure_logging

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conf", help="profile YAML (default $CDP_CONF or conf/local.yaml)")
    parser.add_argument("--master", help="Spark master, overriding the profile")
    parser.add_argument("--truth", required=True)
    parser.add_argument("--json", help="also write the time and scores to this JSON file")
    args = parser.parse_args(argv)
    configure_logging("INFO")
    context = RunContext.from_profile(args.conf, master=args.master)
    config, spark, lake = context.config, context.spark, context.lake
    work = lake.path(catalog.work("plain_splink")).removeprefix("file:")
    clusters, seconds = run_plain_splink(
        spark, build_raw_mentions(spark, lake), work, config.resolution.match_threshold, config.resolution.duckdb_memory_limit
    )
    truth = truth_mentions(spark.read.option("header", True).csv(args.truth))
    scores = pairwise_scores(clusters, truth)
    print(f"plain splink (duckdb): {seconds:.1f}s linkage")
    for key in ("pairwise_precision", "pairwise_recall", "pairwise_f1", "exact_cluster_share"):
        print(f"{key:<22} {scores[key]:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"linkage_seconds": seconds, **scores}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
