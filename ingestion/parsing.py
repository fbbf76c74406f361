"""Record-exact parsing of CSV, JSON Lines and Excel (.xlsx) files, run on executors.

Spark's CSV reader pads short rows and drops extra tokens silently, and cannot name the
line a bad record starts on. These parsers read each file's bytes (via Spark's
`binaryFile` source, so files are read where the data lives) and emit one row per record
with its line number, the values, and a parse error when the record is malformed. The
first row of every file (`_source_row = 0`) carries the header.
"""

from __future__ import annotations

import csv
import gc
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import ParamSpec

import pandas as pd
from pyspark.sql.types import ArrayType, LongType, StringType, StructField, StructType

__all__ = [
    "MAX_RECORD_LINES", "gc_paused", "without_cycle_collector", "PARSED_SCHEMA", "JsonLine", "csv_header", "csv_record", "jsonl_record", "jsonl_rows", "parse_csv_batches",
    "parse_csv_bytes", "parse_jsonl_bytes", "parse_xlsx_bytes",
]

PARSED_SCHEMA = StructType(
    [
        StructField("_source_file", StringType()),
        StructField("_source_row", LongType()),
        StructField("_values", ArrayType(StringType())),
        StructField("_parse_error", StringType()),
    ]
)

# A quoted field may span lines (complaint texts); past this many lines an unclosed quote
# is taken to be broken quoting, and parsing resumes on the next line.
MAX_RECORD_LINES = 50

Row = tuple[int, list[str | None], str | None]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cycle collector off inside: a parse makes millions of small lists and strings,
    none of them in a cycle, and the collector, set off by every few hundred of them, took
    more than half the time of a CSV file's parse."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_P = ParamSpec("_P")


def without_cycle_collector(body: Callable[_P, Iterator[pd.DataFrame]]) -> Callable[_P, Iterator[pd.DataFrame]]:
    """A `mapInPandas` body that runs, while it is iterated, inside `gc_paused`."""

    @wraps(body)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> Iterator[pd.DataFrame]:
        with gc_paused():
            yield from body(*args, **kwargs)

    return paused


def _decode(raw: bytes, encoding: str = "utf-8") -> tuple[str, bool]:
    """The text of `raw` and whether it decoded cleanly. GBK and GB18030 split on the same
    bytes as UTF-8 here: none of their multi-byte sequences holds a newline, quote or comma."""
    try:
        return raw.decode(encoding), True
    except UnicodeDecodeError:
        return raw.decode(encoding, errors="replace"), False


def _lines(content: bytes) -> list[bytes]:
    if content.startswith(b"\xef\xbb\xbf"):
        content = content[3:]
    lines = content.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def csv_header(first_line: bytes, delimiter: str = ",", encoding: str = "utf-8") -> list[str]:
    """The column names on a CSV file's first line (byte-order mark and line end removed)."""
    text, _ = _decode(first_line, encoding)
    return [h.strip() for h in next(csv.reader([text], delimiter=delimiter))]


def csv_record(
    lines: list[bytes], i: int, header: list[str], delimiter: str = ",", encoding: str = "utf-8", first_line_no: int = 1
) -> tuple[int, Row | None]:
    """The record that starts on `lines[i]`: (index of the line the next record starts on, the
    record or None for a blank line). Line numbers count from `first_line_no` at `lines[0]`.

    The next record starts on the line after this one's last: a quoted field may run over
    up to MAX_RECORD_LINES lines; past that, or when the lines it swallowed do not make a
    record of the header's width, the quote is broken and the next record starts on the very
    next line. Where the next record starts depends only on the lines from `i` on."""
    if not lines[i].strip():
        return i + 1, None
    start, chunk = i, lines[i]
    while chunk.count(b'"') % 2 == 1 and i + 1 < len(lines) and i - start < MAX_RECORD_LINES:
        i += 1
        chunk += b"\n" + lines[i]
    line_no = first_line_no + start
    if chunk.count(b'"') % 2 == 1:
        return start + 1, (line_no, [_decode(lines[start], encoding)[0]], "broken_quoting: unclosed quote")
    text, clean = _decode(chunk, encoding)
    try:
        values: list[str | None] = list(next(csv.reader([text], delimiter=delimiter, strict=True)))
    except csv.Error as exc:
        reason = "unclosed quote" if i > start else str(exc)
        return start + 1, (line_no, [_decode(lines[start], encoding)[0]], f"broken_quoting: {reason}")
    if i > start and len(values) != len(header):
        # A quote opened on line `start` swallowed the following lines: the quote is broken.
        return start + 1, (line_no, [_decode(lines[start], encoding)[0]], "broken_quoting: unclosed quote")
    error = None
    if not clean:
        error = f"invalid_encoding: bytes that are not {encoding.upper()}"
    elif len(values) != len(header):
        error = f"column_count: expected {len(header)} fields, found {len(values)}"
    return i + 1, (line_no, values, error)


def parse_csv_bytes(content: bytes, delimiter: str = ",", encoding: str = "utf-8") -> tuple[list[str], list[Row]]:
    """Header and records (line number, values, error) of one CSV file in `encoding`
    (a UTF-8 byte-order mark is dropped)."""
    lines = _lines(content)
    if not lines:
        return [], []
    header = csv_header(lines[0], delimiter, encoding)
    rows: list[Row] = []
    i = 1
    while i < len(lines):
        # A run of lines each closing its quotes: every line is a record of its own.
        end = i
        while end < len(lines) and lines[end].count(b'"') % 2 == 0:
            end += 1
        if end > i:
            rows += _line_records(lines, i, end, header, delimiter, encoding)
            i = end
            continue
        i, row = csv_record(lines, i, header, delimiter, encoding)
        if row is not None:
            rows.append(row)
    return header, rows


def _line_records(lines: list[bytes], start: int, end: int, header: list[str], delimiter: str, encoding: str) -> list[Row]:
    """The records of `lines[start:end]`, lines that each close their quotes, as `csv_record`
    reads them one by one, decoded and split in one pass: the common case, many times
    faster. A run that does not decode cleanly, or holds a line the CSV reader refuses, is
    read line by line, so each such line gets its own error."""
    try:
        texts = b"\n".join(lines[start:end]).decode(encoding).split("\n")
        parsed = list(csv.reader(texts, delimiter=delimiter, strict=True))
    except (UnicodeDecodeError, csv.Error):
        parsed = []
    # Fewer records than lines: a quote inside a field (`a"b`) is text, so a line can close as
    # many quotes as it opens and still end inside a quoted field, which ran on to the next.
    if len(parsed) != end - start:
        return [row for k in range(start, end) if (row := csv_record(lines, k, header, delimiter, encoding)[1]) is not None]
    width = len(header)
    return [
        (k + 1, values, None if len(values) == width else f"column_count: expected {width} fields, found {len(values)}")
        for k, values in zip(range(start, end), parsed)
        if lines[k].strip()
    ]


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


JsonLine = tuple[int, dict[str, object] | None, str | None, str]


def jsonl_record(line: bytes, line_no: int) -> JsonLine | None:
    """One JSON Lines line: (line number, the object or None, error, text); None when blank."""
    if not line.strip():
        return None
    text, clean = _decode(line)
    if not clean:
        return line_no, None, "invalid_encoding: bytes that are not UTF-8", text
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return line_no, None, f"invalid_json: {exc.msg} at column {exc.colno}", text
    if not isinstance(obj, dict):
        return line_no, None, "invalid_json: a line must hold one JSON object", text
    return line_no, obj, None, text


def jsonl_rows(parsed: list[JsonLine], keys: list[str]) -> list[Row]:
    """Records of parsed lines with their values in the order of `keys`."""
    return [(n, [_json_text(obj.get(k)) for k in keys] if obj is not None else [text], error) for n, obj, error, text in parsed]


def parse_jsonl_bytes(content: bytes) -> tuple[list[str], list[Row]]:
    """Keys seen (in first-seen order) and records of one JSON Lines file."""
    parsed = [p for n, line in enumerate(_lines(content), start=1) if (p := jsonl_record(line, n)) is not None]
    keys: dict[str, None] = {}
    for _, obj, _, _ in parsed:
        keys.update(dict.fromkeys(obj or ()))
    return list(keys), jsonl_rows(parsed, list(keys))


def _cell_text(value: object) -> str | None:
    """An Excel cell as the text a CSV export would hold: dates ISO, whole numbers without
    `.0`, booleans lower case, empty cells null."""
    import datetime as dt

    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S") if (value.hour, value.minute, value.second) != (0, 0, 0) else value.strftime("%Y-%m-%d")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_xlsx_bytes(content: bytes) -> tuple[list[str], list[Row]]:
    """Header (first row) and records (Excel row number, values, error) of the first sheet
    of an .xlsx workbook; cached values of formula cells, never the formulas."""
    import io
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        return [], [(1, [], f"unreadable_workbook: {type(exc).__name__}: {str(exc)[:200]}")]
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        first = next(rows, None)
        if first is None:
            return [], []
        header = [str(h).strip() if h is not None else "" for h in first]
        while header and not header[-1]:
            header.pop()
        records: list[Row] = []
        for number, cells in enumerate(rows, start=2):
            values = [_cell_text(v) for v in cells]
            if not any(v is not None for v in values):
                continue
            trailing = values[len(header):]
            values = values[: len(header)] + [None] * (len(header) - len(values))
            error = f"column_count: expected {len(header)} fields, found more" if any(v is not None for v in trailing) else None
            records.append((number, values, error))
        return header, records
    finally:
        book.close()


@without_cycle_collector
def parse_csv_batches(
    batches: Iterator[pd.DataFrame], fmt: str, delimiter: str = ",", encoding: str = "utf-8"
) -> Iterator[pd.DataFrame]:
    """`mapInPandas` body: binaryFile rows (path, content) -> PARSED_SCHEMA rows."""
    for batch in batches:
        for path, content in zip(batch["path"], batch["content"]):
            if fmt == "csv":
                header, rows = parse_csv_bytes(bytes(content), delimiter, encoding)
            elif fmt == "xlsx":
                header, rows = parse_xlsx_bytes(bytes(content))
            else:
                header, rows = parse_jsonl_bytes(bytes(content))
            out = [(path, 0, header, None)] + [(path, n, values, err) for n, values, err in rows]
            for start in range(0, len(out), 50_000):
                chunk = out[start : start + 50_000]
                yield pd.DataFrame(chunk, columns=["_source_file", "_source_row", "_values", "_parse_error"])
