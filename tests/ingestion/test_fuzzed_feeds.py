"""Fuzzed complaint feeds in every format the platform reads: each seeded row carries one way
dealer exports go wrong, and must end where it belongs (silver, or quarantine under its rule),
with read = loaded + quarantined and nothing crashing."""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Callable

import pytest
from pyspark.sql import functions as F

from cdp import catalog
from cdp.config import CsvOptions, FeedConfig
from cdp.contract import CONTRACTS
from cdp.lake import read_table
from ingestion import ingest_feed
from tests.ingestion.conftest import feed_dir

pytestmark = [pytest.mark.spark, pytest.mark.reliability]

SEED = 1201
COLUMNS = list(CONTRACTS["complaints"].columns)
HUGE = "故障" * 60_000
SHEET_CELL_LIMIT = 32_767  # characters an Excel cell holds


def _row(i: int) -> dict[str, str]:
    return {
        "complaint_id": f"C{i:05d}", "channel": "hotline_400", "received_at": "2026-03-02 09:15:00",
        "first_response_at": "", "closed_at": "", "caller_name": "王伟", "caller_mobile": f"139{i:08d}",
        "vin": "", "dealer_code": "GZ001", "category": "service", "severity": "normal", "status": "open",
        "description": "保养后异响",
    }


# name -> (change to a clean row, where the row belongs, formats it cannot be written in)
Mutation = tuple[Callable[[dict[str, str]], None], str, set[str]]
MUTATIONS: dict[str, Mutation] = {
    "clean": (lambda r: None, "silver", set()),
    "full_width_mobile": (lambda r: r.update(caller_mobile=r["caller_mobile"].translate({c: c + 0xFEE0 for c in range(48, 58)})), "silver", set()),
    "emoji_name": (lambda r: r.update(caller_name="王伟😀"), "silver", {"gbk"}),
    "traditional_name": (lambda r: r.update(caller_name="王偉"), "silver", set()),
    "nul_in_name": (lambda r: r.update(caller_name="王\x00伟"), "silver", {"xlsx"}),
    # Control characters go before any rule reads the value: a form feed inside an allowed
    # value leaves it allowed, a value of nothing but a bell character is empty.
    "form_feed_in_category": (lambda r: r.update(category="serv\x0cice"), "silver", {"xlsx"}),
    "bell_only_status": (lambda r: r.update(status="\x07"), "required:status", {"xlsx"}),
    "huge_field": (lambda r: r.update(description=HUGE), "silver", {"xlsx"}),
    "huge_cell": (lambda r: r.update(description=HUGE[:SHEET_CELL_LIMIT]), "silver", {"csv", "gbk", "jsonl", "parquet"}),
    "newline_in_field": (lambda r: r.update(description='第一行\n第二行, "引号"'), "silver", set()),
    "formula_text": (lambda r: r.update(description='=HYPERLINK("http://evil.example","x")'), "silver", set()),
    "padded_values": (lambda r: r.update(category="  Service ", status="OPEN"), "silver", set()),
    "unknown_category": (lambda r: r.update(category="billing"), "allowed_values:category", set()),
    "impossible_date": (lambda r: r.update(received_at="2026-13-45 09:00:00"), "date_format:received_at", set()),
    "missing_status": (lambda r: r.update(status=""), "required:status", set()),
    "short_row": (lambda r: r.update(_short="1"), "malformed_row", {"jsonl", "parquet", "xlsx"}),
    # Excel stores no trailing empty cells: a short row there is a row of empty values.
    "short_sheet_row": (lambda r: r.update(_short="1"), "required:category", {"csv", "gbk", "jsonl", "parquet"}),
    "long_row": (lambda r: r.update(_long="1"), "malformed_row", {"jsonl", "parquet"}),
    "broken_json": (lambda r: r.update(_broken="1"), "malformed_row", {"csv", "gbk", "xlsx", "parquet"}),
}


def fuzzed_rows(fmt: str, count: int = 45) -> list[tuple[dict[str, str], str, str]]:
    """(row, mutation, expected place) for `count` seeded rows writable in `fmt`."""
    rng = random.Random(f"{SEED}-{fmt}")
    usable = [name for name, (_, _, skip) in MUTATIONS.items() if fmt not in skip]
    out = []
    for i in range(count):
        name = usable[i] if i < len(usable) else rng.choice(usable)  # every case at least once
        row = _row(i)
        change, expected, _ = MUTATIONS[name]
        change(row)
        out.append((row, name, expected))
    return out


def _csv_line(row: dict[str, str]) -> list[str]:
    values = [row[c] for c in COLUMNS]
    if row.get("_short"):
        values = values[:6]
    if row.get("_long"):
        values = [*values, "extra", "fields"]
    return values


def write_feed(fmt: str, rows: list[dict[str, str]]) -> tuple[bytes, FeedConfig, str]:
    """The rows as one file in `fmt`, its feed config and file name."""
    import csv

    if fmt in ("csv", "gbk"):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")  # CRLF, as Excel writes it
        writer.writerow(COLUMNS)
        writer.writerows(_csv_line(r) for r in rows)
        if fmt == "gbk":
            return buffer.getvalue().encode("gbk"), FeedConfig(path="p", format="csv", csv=CsvOptions(encoding="gbk"), max_bad_row_fraction=1.0), "c.csv"
        return "\ufeff".encode() + buffer.getvalue().encode(), FeedConfig(path="p", format="csv", max_bad_row_fraction=1.0), "c.csv"
    if fmt == "jsonl":
        lines = [
            '{"complaint_id": "' + r["complaint_id"] + '", "channel": "web", "received_at": "2026-03-02'
            if r.get("_broken") else json.dumps({c: r[c] for c in COLUMNS}, ensure_ascii=False)
            for r in rows
        ]
        return ("\n".join(lines) + "\n").encode(), FeedConfig(path="p", format="jsonl", max_bad_row_fraction=1.0), "c.jsonl"
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({c: [r[c] for r in rows] for c in COLUMNS})
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue(), FeedConfig(path="p", format="parquet", max_bad_row_fraction=1.0), "c.parquet"
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(COLUMNS)
    for r in rows:
        sheet.append(_csv_line(r))
    sink = io.BytesIO()
    book.save(sink)
    return sink.getvalue(), FeedConfig(path="p", format="xlsx", max_bad_row_fraction=1.0), "c.xlsx"


@pytest.mark.parametrize("fmt", ["csv", "gbk", "jsonl", "parquet", "xlsx"])
def test_each_fuzzed_row_lands_where_it_belongs(spark, lake, tmp_path, fmt):
    cases = fuzzed_rows(fmt)
    content, feed, name = write_feed(fmt, [row for row, _, _ in cases])
    folder = feed_dir(tmp_path, f"fuzz_{fmt}", {name: content})
    report = ingest_feed(spark, lake, "complaints", feed, folder)

    assert report.reconciled and report.rows_read == len(cases)
    silver = {r["complaint_id"]: r for r in read_table(spark, lake.path(catalog.silver("complaints"))).filter(
        F.col("_source_file").endswith(f"fuzz_{fmt}/{name}")).collect()}
    quarantined = {
        r["complaint_id"]: r["_rule"]
        for r in read_table(spark, lake.path(catalog.quarantine("complaints"))).filter(F.col("_source_file").endswith(f"fuzz_{fmt}/{name}"))
        # A line that does not parse has no columns: its id is found in the raw line.
        .select(F.regexp_extract(F.coalesce("_raw_record", "_raw.complaint_id"), r"C\d{5}", 0).alias("complaint_id"), "_rule").collect()
    }
    placed = {row["complaint_id"]: ("silver" if row["complaint_id"] in silver else quarantined.get(row["complaint_id"], "lost"))
              for row, _, _ in cases}
    wrong = [(m, placed[row["complaint_id"]], want) for row, m, want in cases if placed[row["complaint_id"]] != want]
    assert len(quarantined) == report.rows_quarantined
    assert wrong == [], wrong

    for row, mutation, _ in cases:
        loaded = silver.get(row["complaint_id"])
        if loaded is None:
            continue
        assert not any(re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", v) for v in loaded.asDict().values() if isinstance(v, str)), mutation
        if mutation == "full_width_mobile":
            assert loaded["caller_mobile"] == f"139{int(row['complaint_id'][1:]):08d}"
        if mutation in ("huge_field", "huge_cell"):
            assert loaded["description"] == row["description"]
        if mutation == "newline_in_field":
            assert loaded["description"] == row["description"]
        if mutation == "padded_values":
            assert (loaded["category"], loaded["status"]) == ("service", "open")
        if mutation == "form_feed_in_category":
            assert loaded["category"] == "service"
        if mutation == "nul_in_name":
            assert loaded["caller_name"] == "王伟"


def test_a_small_batch_lands_the_same_without_generated_code(spark, tmp_path, monkeypatch):
    """The fuzzed CSV rows loaded into two lakes: as a batch over the small-batch size, and as
    one under it (a session of its own without generated code, the suite run on the driver).
    The same rows land in silver and in the quarantine, with the same rules."""
    from cdp.lake import Lake
    from ingestion import ingest

    sessions = []

    def interpreted(session):
        sessions.append(ingest_interpreted(session))
        return sessions[-1]

    ingest_interpreted = ingest.interpreted_session
    monkeypatch.setattr(ingest, "interpreted_session", interpreted)
    content, feed, name = write_feed("csv", [row for row, _, _ in fuzzed_rows("csv")])
    landed = {}
    for label, limit in (("large", len(content) - 1), ("small", len(content))):
        lake = Lake(str(tmp_path / f"lake_{label}"))
        report = ingest_feed(spark, lake, "complaints", feed, feed_dir(tmp_path, label, {name: content}), small_batch_bytes=limit)
        tables = [read_table(spark, lake.path(t)).drop("_source_file", "_loaded_at") for t in (catalog.silver("complaints"), catalog.quarantine("complaints"))]
        landed[label] = (report.rows_read, report.rows_quarantined, report.quarantine_by_rule, *[sorted(map(str, t.collect())) for t in tables])
        assert len(sessions) == (label == "small")
    assert sessions[0] is not spark and sessions[0].conf.get("spark.sql.codegen.factoryMode") == "NO_CODEGEN"
    assert landed["small"] == landed["large"] and landed["small"][1] > 0 and len(landed["small"][3]) > 0
