"""Why one customer's records were joined: the links and the match weight of every comparison.

Reads the pairs of one customer only; nothing collects a whole table.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from entity_resolution.engines import model_tf_columns

__all__ = ["explain_links"]

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
