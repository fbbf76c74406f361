"""The unified view of one customer (profile, vehicles, timeline) and why its records were joined.

These read the gold tables for one customer only; nothing collects a whole table.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdp import catalog
from cdp.lake import Lake, read_table
from cdp.privacy import MASKERS
from entity_resolution.engines import model_tf_columns

__all__ = ["TIMELINE_COLUMNS", "build_timeline", "explain_links", "find_customers", "masked_profile"]

TIMELINE_COLUMNS = ("at", "feed", "record_id", "role", "dealer_code", "summary")


def _text(*parts: Column | str) -> Column:
    return F.concat_ws(" ", *[F.lit(p) if isinstance(p, str) else p.cast("string") for p in parts])


def _summaries() -> dict[str, tuple[str, Column]]:
    """Per feed: its event time column and a one-line summary (built when a session exists)."""
    return {
        "sales_orders": ("order_date", _text("bought", F.col("brand"), F.col("model"), F.col("model_year"), "·", F.col("vin"), "· ¥", F.col("price"))),
        "leads": ("created_at", _text("lead via", F.col("channel"), "for", F.col("intended_model"), "·", F.col("status"), F.col("purchase_horizon"))),
        "service_orders": ("opened_at", _text(F.col("service_type"), "·", F.col("vin"), "·", F.col("mileage_km"), "km · ¥", F.col("total_amount"), "paid by", F.col("paid_by"))),
        "warranty_claims": ("claim_date", _text("warranty claim", F.col("failure_code"), "·", F.col("vin"), "· ¥", F.col("claim_amount"), "·", F.col("status"))),
        "complaints": ("received_at", _text(F.col("category"), "complaint,", F.col("severity"), "· via", F.col("channel"), "·", F.col("status"))),
        "surveys": ("surveyed_at", _text(F.col("survey_type"), "survey · score", F.col("overall_score"))),
    }


def find_customers(customers: DataFrame, *, customer_id: str | None = None, mobile: str | None = None) -> DataFrame:
    """Customers by ID, or every customer who has used a mobile (digits only, +86 dropped)."""
    if customer_id:
        return customers.filter(F.col("customer_id") == customer_id)
    if not mobile:
        raise ValueError("give a customer ID or a mobile")
    digits = "".join(ch for ch in mobile if ch.isdigit())
    digits = digits[2:] if len(digits) == 13 and digits.startswith("86") else digits
    return customers.filter(F.array_contains("mobiles", digits))


def masked_profile(customers: DataFrame) -> DataFrame:
    """Golden rows with names, mobiles, IDs, e-mails and addresses masked."""
    masked = customers
    for column, mask in MASKERS.items():
        masked = masked.withColumn(column, mask(F.col(column)))
    return (
        masked.withColumn("mobiles", F.transform("mobiles", MASKERS["mobile"]))
        .withColumn("name_pinyin", MASKERS["name"](F.col("name_pinyin")))
        .withColumn("birth_date", F.date_format("birth_date", "yyyy-**-**"))
    )


def build_timeline(spark: SparkSession, lake: Lake, xref: DataFrame) -> DataFrame:
    """The customer's records (`xref` rows of one customer) as events in time order."""
    events = []
    for feed, (at, summary) in _summaries().items():
        records = xref.filter(F.col("feed") == feed).select("record_id", "mention_role")
        silver = read_table(spark, lake.path(catalog.silver(feed)))
        events.append(
            silver.join(records, "record_id").select(
                F.col(at).cast("timestamp").alias("at"),
                F.lit(feed).alias("feed"),
                "record_id",
                F.col("mention_role").alias("role"),
                "dealer_code",
                summary.alias("summary"),
            )
        )
    timeline = events[0]
    for part in events[1:]:
        timeline = timeline.unionByName(part)
    return timeline.orderBy("at", "feed", "record_id", "role").select(*TIMELINE_COLUMNS)


def _spanning_links(links: list[tuple[str, str, float]]) -> list[tuple[str, str, float]]:
    """The strongest links that connect the records (a maximum spanning forest)."""
    parent: dict[str, str] = {}

    def find(n: str) -> str:
        parent.setdefault(n, n)
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    kept = []
    for left, right, p in sorted(links, key=lambda e: (-e[2], e[0], e[1])):
        a, b = find(left), find(right)
        if a != b:
            parent[b] = a
            kept.append((left, right, p))
    return kept


def _level_labels(model: dict[str, Any]) -> dict[str, dict[int, str]]:
    labels: dict[str, dict[int, str]] = {}
    for comparison in model["comparisons"]:
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        per_value = {len(levels) - 1 - i: lv.get("label_for_charts") or lv["sql_condition"] for i, lv in enumerate(levels)}
        per_value[-1] = "missing"
        labels[comparison["output_column_name"]] = per_value
    return labels


def explain_links(
    mentions: DataFrame, all_mentions: DataFrame, pairs: DataFrame, model: dict[str, Any], match_threshold: float
) -> list[dict[str, Any]]:
    """Why one customer's mentions were joined: for each link of the strongest spanning set
    (pairs at or above the threshold), the match weight of every comparison with the level
    it reached ("same pinyin", "one's other phone", ...). Values themselves are not shown.

    `mentions` are the customer's person mentions, `all_mentions` everyone's (for term
    frequencies, as in the run that made the links), `pairs` the scored pairs among them.
    """
    import duckdb
    import pandas as pd
    from splink import DuckDBAPI, Linker

    links = [
        (r.mention_id_l, r.mention_id_r, r.match_probability)
        for r in pairs.filter(F.col("match_probability") >= match_threshold).collect()
    ]
    chosen = _spanning_links(links)
    if not chosen:
        return []
    records = pd.DataFrame([r.asDict() for r in mentions.collect()])
    for column in ("seen_at",):
        records[column] = records[column].astype(str)
    for column in ("birth_date",):
        records[column] = records[column].astype(str).where(records[column].notna(), None)
    settings = {**model, "retain_intermediate_calculation_columns": True, "retain_matching_columns": False}
    api = DuckDBAPI(duckdb.connect())
    linker = Linker(api.register(records), settings)
    for column in model_tf_columns(model):
        tf = _tf_lookup(mentions, all_mentions, column)
        linker.table_management.register_term_frequency_lookup(api.register(tf), column)
    table = api.register(records)
    scored = linker.inference.score_pairs(table, table).as_pandas_dataframe()
    labels = _level_labels(model)
    wanted = {(a, b) for a, b, _ in chosen}
    explained = []
    for row in scored.to_dict("records"):
        key = (min(row["mention_id_l"], row["mention_id_r"]), max(row["mention_id_l"], row["mention_id_r"]))
        if key not in wanted:
            continue
        wanted.discard(key)
        comparisons = []
        for name, per_value in labels.items():
            gamma = int(row[f"gamma_{name}"])
            # Splink gives each comparison's match weight (log2 Bayes factor) and its
            # term-frequency adjustment separately; a reader wants their sum.
            weight = float(row.get(f"mw_{name}") or 0.0) + float(row.get(f"mw_tf_adj_{name}") or 0.0)
            comparisons.append({"comparison": name, "level": per_value.get(gamma, str(gamma)), "match_weight": round(weight, 2)})
        explained.append(
            {
                "mention_id_l": key[0],
                "mention_id_r": key[1],
                "match_probability": float(row["match_probability"]),
                "match_weight": float(row["match_weight"]),
                "comparisons": comparisons,
            }
        )
    return sorted(explained, key=lambda e: (-e["match_probability"], e["mention_id_l"], e["mention_id_r"]))


def _tf_lookup(mentions: DataFrame, all_mentions: DataFrame, column: str) -> Any:
    """Term frequencies of `column` over all mentions, for the values these mentions hold."""
    import pandas as pd

    present = all_mentions.filter(F.col(column).isNotNull())
    total = present.count()
    counts = present.groupBy(column).count().join(mentions.select(column).distinct(), column)
    rows = [(r[column], r["count"] / total) for r in counts.collect()]
    return pd.DataFrame(rows, columns=[column, f"tf_{column}"])
