"""Why one customer's records were joined: the links and the match weight of every comparison.

Reads one customer's records and pairs through the JVM-free read layer (delta-rs and
DuckDB); term frequencies are counted in DuckDB over the mentions table, so nothing
collects a whole table and no SparkSession starts.
"""

from __future__ import annotations

from typing import Any

from cdp import catalog
from cdp.errors import NotFoundError
from cdp.reader import LakeReader
from entity_resolution.engines import model_tf_columns
from entity_resolution.overrides import greedy_components

__all__ = ["explain_customer", "explain_links", "term_frequencies"]

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


def explain_customer(reader: LakeReader, customer_id: str, model: dict[str, Any], match_threshold: float) -> tuple[int, list[dict[str, Any]]]:
    """(how many records the customer has, why they were joined) read from the gold tables."""
    reader.require(catalog.CUSTOMER_XREF, catalog.PERSON_MENTIONS, catalog.MATCH_PAIRS)
    tables = {"x": catalog.CUSTOMER_XREF, "m": catalog.PERSON_MENTIONS}
    with reader.connect(tables, from_files=True) as con:
        # The customer's mentions as a constant list: DuckDB pushes such filters into the scans.
        ids = [r[0] for r in con.execute("SELECT mention_id FROM x WHERE customer_id = ? ORDER BY mention_id", [customer_id]).fetchall()]
        count = len(ids)
        if not count:
            raise NotFoundError(f"no customer {customer_id}")
        links = _links_among(reader, ids, match_threshold) if count > 1 else []
        records = reader.rows_with(catalog.PERSON_MENTIONS, "mention_id", ids).to_pandas().sort_values("mention_id", ignore_index=True)
        frequencies = term_frequencies(con, records, model_tf_columns(model)) if links else {}
        chosen = _spanning_links([(a, b, float(p)) for a, b, p in links])
        attached = _vehicle_links(records, chosen)
        if not chosen:
            return count, attached
    return count, explain_links(records, frequencies, chosen, model) + attached


def term_frequencies(con: Any, records: Any, columns: list[str]) -> dict[str, Any]:
    """Relative frequency over all mentions (table `m`) of the customer's own values in each
    term-frequency column, as in the run that made the links: one scan for every count."""
    import pandas as pd

    values = {c: sorted({v for v in records[c] if v is not None and v == v}) for c in columns}
    counts = [f'count("{c}")' for c in columns] + [f'count(*) FILTER (WHERE "{c}" = ?)' for c in columns for _ in values[c]]
    row = con.execute("SELECT " + ", ".join(counts) + " FROM m", [v for c in columns for v in values[c]]).fetchone() if columns else ()
    found = iter(row[len(columns):])
    return {
        c: pd.DataFrame({c: pd.Series(values[c], dtype=object), f"tf_{c}": [next(found) / max(total, 1) for _ in values[c]]})
        for c, total in zip(columns, row)
    }


def _links_among(reader: LakeReader, ids: list[str], threshold: float) -> list[tuple[str, str, float]]:
    """Scored pairs between `ids` at or above `threshold`. The pairs are written sorted by
    mention: only the few row groups of millions of pairs that hold these mentions are read."""
    others = ", ".join("?" for _ in ids)
    table = reader.rows_with(catalog.MATCH_PAIRS, "mention_id_l", ids, ["mention_id_l", "mention_id_r", "match_probability"],
                             f"mention_id_r IN ({others}) AND match_probability >= ?", (*ids, threshold))
    return [(r["mention_id_l"], r["mention_id_r"], float(r["match_probability"])) for r in table.to_pylist()]


def _vehicle_links(records: Any, chosen: list[tuple[str, str, float]]) -> list[dict[str, Any]]:
    """One entry per group of records that no scored link reaches from the customer's main
    group: records that name nobody, joined as the owner of their vehicle
    (`entity_resolution.attach`), each shown beside a main-group record of the same VIN."""
    groups = greedy_components(list(records["mention_id"]), chosen, set())
    members: dict[str, list[str]] = {}
    for mention in records["mention_id"]:
        members.setdefault(groups[mention], []).append(mention)
    if len(members) < 2:
        return []
    main = max(members.values(), key=lambda ms: (len(ms), ms[0]))
    vin_of = dict(zip(records["mention_id"], records["vin"]))
    entries = []
    for group in sorted(ms for ms in members.values() if ms is not main):
        vins = {vin_of[m] for m in group if vin_of[m]}
        beside = next((m for m in main if vin_of[m] in vins), main[0])
        entries.append({
            "mention_id_l": beside, "mention_id_r": group[0], "match_probability": None, "match_weight": None,
            "joined_by": "vehicle_owner", "comparisons": [],
        })
    return entries


def explain_links(records: Any, frequencies: dict[str, Any], chosen: list[tuple[str, str, float]], model: dict[str, Any]) -> list[dict[str, Any]]:
    """Why the `chosen` links were made: for each, the match weight of every comparison with
    the level it reached ("same pinyin", "one's other phone", ...). Values are not shown.

    `records` are the customer's person mentions (pandas), `frequencies` the term-frequency
    lookup per adjusted column (pandas: value, tf_value).
    """
    import duckdb
    import pandas as pd
    from splink import DuckDBAPI, Linker

    records = records.copy()
    records["seen_at"] = records["seen_at"].astype(str)
    records["birth_date"] = records["birth_date"].astype(str).where(records["birth_date"].notna(), None)
    settings = {**model, "retain_intermediate_calculation_columns": True, "retain_matching_columns": False}
    api = DuckDBAPI(duckdb.connect())
    linker = Linker(api.register(records), settings)
    for column, tf in frequencies.items():
        linker.table_management.register_term_frequency_lookup(api.register(tf), column)
    table = api.register(records)
    scored = linker.inference.score_pairs(table, table).as_pandas_dataframe()
    labels = _level_labels(model)
    wanted = {(a, b) for a, b, _ in chosen}
    # Every ordered pair of the customer's records is scored; only the chosen links are read.
    left, right = scored["mention_id_l"], scored["mention_id_r"]
    keys = pd.Series(list(zip(left.where(left < right, right), right.where(left < right, left))), index=scored.index)
    explained = []
    for row in scored[keys.isin(wanted)].to_dict("records"):
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
                "joined_by": "score",
                "comparisons": comparisons,
            }
        )
    return sorted(explained, key=lambda e: (-e["match_probability"], e["mention_id_l"], e["mention_id_r"]))
