"""Splink's views of real pairs and clusters, for the model owner, with masked values.

A run's tracked artifacts show what the model does on the lake it built, not only its
parameters: a waterfall of the match weights of sample pairs (from the strongest link to the
weakest that still counts) and Splink's cluster studio for a sample of customers, each
customer's records as the nodes and their scored pairs as the edges. The customers are
chosen by a hash of their ID (the same lake gives the same sample). Every personal value is
masked before Splink sees the frames it draws (王伟 -> 王*, 13812348000 -> 138****8000, a
birth date to its year), and both pages carry their scripts inline, so they open offline.

Read through the JVM-free read layer: the gold tables must be written when this runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cdp import catalog
from cdp.privacy import mask_text
from cdp.reader import LakeReader

__all__ = ["MASKED_COLUMNS", "masked", "save_sample_charts"]

SAMPLE_CUSTOMERS = 8
WATERFALL_PAIRS = 10
# Person-mention columns with personal values, and how each is masked (`cdp.privacy`).
MASKED_COLUMNS = {
    "name_simplified": "name", "name_pinyin": "name", "name_key": "name", "surname_pinyin": "name",
    "mobile": "mobile", "mobile_alt": "mobile", "id_number": "id_number", "id_unchecked": "id_number",
    "email": "email", "address": "address", "vin": "id_number", "plate_no": "id_number", "birth_date": "date",
}


def _mask_value(kind: str, value: Any) -> Any:
    if value is None or value != value:  # None or NaN
        return None
    if kind == "date":
        return f"{str(value)[:4]}-**-**"
    return mask_text(kind, value)


def masked(frame: Any) -> Any:
    """A copy of a pandas frame of mentions or of scored pairs (columns `x`, `x_l`, `x_r`) with
    every personal value masked."""
    frame = frame.copy()
    for column in frame.columns:
        kind = MASKED_COLUMNS.get(re.sub(r"_[lr]$", "", column))
        if kind:
            frame[column] = [_mask_value(kind, v) for v in frame[column]]
    return frame


def _sample(reader: LakeReader, size: int) -> tuple[Any, list[str]]:
    """The person mentions (pandas, with `cluster_id` = customer) of `size` customers of 3 to 40
    records, and their IDs."""
    tables = {"x": catalog.CUSTOMER_XREF, "m": catalog.PERSON_MENTIONS}
    with reader.connect(tables) as con:
        customers = [r[0] for r in con.execute(
            "SELECT customer_id FROM x GROUP BY customer_id HAVING count(*) BETWEEN 3 AND 40 ORDER BY md5(customer_id) LIMIT ?", [size]
        ).fetchall()]
        records = con.execute(
            "SELECT m.*, x.customer_id AS cluster_id FROM m JOIN x USING (mention_id) WHERE list_contains(?, x.customer_id) ORDER BY mention_id",
            [customers],
        ).df()
    return records, customers


def save_sample_charts(reader: LakeReader, model: dict[str, Any], threshold: float, folder: str | Path) -> list[Path]:
    """`waterfall.html` and `cluster_studio.html` in `folder` (see the module docstring)."""
    import duckdb
    from splink import DuckDBAPI, Linker

    from entity_resolution.customer_view import term_frequencies
    from entity_resolution.engines import model_tf_columns
    from entity_resolution.model import in_dialect

    model = in_dialect(model, "duckdb")
    records, customers = _sample(reader, SAMPLE_CUSTOMERS)
    if not customers:
        return []
    with reader.connect({"m": catalog.PERSON_MENTIONS}) as con:
        frequencies = term_frequencies(con, records, model_tf_columns(model))
    for column in ("seen_at", "birth_date"):
        records[column] = records[column].astype(str).where(records[column].notna(), None)
    settings = {**model, "retain_intermediate_calculation_columns": True, "retain_matching_columns": True}
    api = DuckDBAPI(duckdb.connect())
    linker = Linker(api.register(records.drop(columns="cluster_id")), settings)
    for column, tf in frequencies.items():
        linker.table_management.register_term_frequency_lookup(api.register(tf), column)
    # Pairs within each sampled customer only: the edges the customer was built from.
    predicted = linker.inference.predict().as_pandas_dataframe()
    cluster_of = dict(zip(records["mention_id"], records["cluster_id"]))
    predicted = predicted[[cluster_of[a] == cluster_of[b] for a, b in zip(predicted["mention_id_l"], predicted["mention_id_r"])]]
    edges = masked(predicted.sort_values(["match_probability", "mention_id_l", "mention_id_r"], ascending=[False, True, True]))
    nodes = masked(records)
    folder = Path(folder)
    written = []
    strong = edges[edges["match_probability"] >= threshold]
    if len(strong):
        # From the strongest link to the weakest that still joins records: evenly spaced.
        step = max(1, len(strong) // WATERFALL_PAIRS)
        pairs = strong.iloc[::step].head(WATERFALL_PAIRS).to_dict("records")
        target = folder / "waterfall.html"
        target.write_text(linker.visualisations.waterfall_chart(pairs, filter_nulls=True).to_html(inline=True), encoding="utf-8")
        written.append(target)
    target = folder / "cluster_studio.html"
    linker.visualisations.cluster_studio_dashboard(
        linker.table_management.register_table(edges, "__cdp_sample_edges", overwrite=True),
        linker.table_management.register_table(nodes, "__cdp_sample_nodes", overwrite=True),
        str(target),
        cluster_ids=customers,
        overwrite=True,
    )
    written.append(target)
    return written
