"""A large CSV file read as byte ranges on several tasks, record for record as a whole file.

Spark's `binaryFile` source hands a whole file to one task and refuses files over 2 GB. A
CSV file larger than `ingest.split_bytes` is read instead as ranges of that many bytes, each
on its own task. A range owns the lines that start inside it; it also reads the lines after
them up to the longest record (MAX_RECORD_LINES), so a quoted field that runs on past the
range is parsed where it starts.

Where a record starts is not a local fact: a newline inside a quoted complaint text looks
like the start of a record. It is settled in two passes:
1. each range counts its lines and, for every line with an odd number of quotes (the only
   lines that can start a record of several lines), where the next record would start
   (`csv_record`); every other line is a record of its own (or blank);
2. the driver walks those few odd lines from the top of the file (`record_starts`): which are
   record starts and which lie inside a record begun above them. So each range knows the line
   its first record starts on and its absolute line numbers, and parses exactly the records
   that start in it, with their file line numbers, as the whole-file parser would.

A JSON Lines record is one line, but its columns are the keys seen in the whole file in
first-seen order: the first pass also lists each range's keys, and the driver merges them in
range order (`merged_keys`), which is the whole file's first-seen order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ingestion.parsing import MAX_RECORD_LINES, Row, csv_header, csv_record, jsonl_record, jsonl_rows, without_cycle_collector

__all__ = [
    "LOOKAHEAD_LINES", "Split", "file_sha256", "jsonl_keys", "merged_keys", "parse_batches", "parse_jsonl_range", "parse_range", "plan_splits",
    "range_lines", "read_header", "record_starts", "summarise_batches", "summarise_range",
]

LOOKAHEAD_LINES = MAX_RECORD_LINES + 1
_CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Split:
    path: str
    index: int
    start: int  # first byte
    end: int  # one past the last byte


def plan_splits(path: str, size: int, split_bytes: int) -> list[Split]:
    """Ranges of `split_bytes` (the last one shorter) covering a file of `size` bytes."""
    count = max(1, -(-size // split_bytes))
    return [Split(path, k, k * split_bytes, min(size, (k + 1) * split_bytes)) for k in range(count)]


def _open(path: str) -> Any:
    """A seekable binary stream of `path` (a local path, `file:` URI or any URI pyarrow reads)."""
    from pyarrow import fs

    if path.startswith("file:"):
        path = "/" + path[len("file:"):].lstrip("/")
    if "://" in path:
        filesystem, inner = fs.FileSystem.from_uri(path)
        return filesystem.open_input_file(inner)
    return open(path, "rb")  # noqa: SIM115 - closed by the caller's `with`


def file_sha256(path: str) -> str:
    """SHA-256 of a file of any size, read in chunks."""
    digest = hashlib.sha256()
    with _open(path) as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_header(path: str, delimiter: str = ",", encoding: str = "utf-8") -> list[str]:
    """The column names on the file's first line ([] for an empty file)."""
    data = b""
    with _open(path) as stream:
        while b"\n" not in data and (chunk := stream.read(1 << 16)):
            data += chunk
    first = data.split(b"\n", 1)[0].removeprefix(_BOM).removesuffix(b"\r")
    return csv_header(first, delimiter, encoding) if first.strip() else []


def range_lines(path: str, start: int, end: int) -> tuple[list[bytes], int]:
    """(lines, owned): the lines whose first byte lies in [start, end), then up to
    LOOKAHEAD_LINES complete lines after them (fewer at the end of the file); `owned` counts
    the first kind. Line ends and a byte-order mark at the top of the file are removed."""
    base = max(start - 1, 0)  # a line starts in the range when the byte before it is a newline
    with _open(path) as stream:
        stream.seek(base)
        data = stream.read(end - base)
        at_end = len(data) < end - base
        while not at_end and data.count(b"\n", max(end - 1 - base, 0)) < LOOKAHEAD_LINES + 1:
            chunk = stream.read(_CHUNK)
            at_end = not chunk
            data += chunk
    if start == 0:
        first = 0
    else:
        newline = data.find(b"\n")
        if newline < 0 or base + newline + 1 >= end:
            return [], 0
        first = newline + 1
    lines = data[first:].split(b"\n")
    if at_end and lines and lines[-1] == b"":
        lines.pop()
    elif not at_end:
        lines.pop()  # cut short by the read
    owned, position = 0, base + first
    for line in lines:
        if position >= end:
            break
        owned += 1
        position += len(line) + 1
    lines = lines[: owned + LOOKAHEAD_LINES]
    if start == 0 and lines:
        lines[0] = lines[0].removeprefix(_BOM)
    return [line[:-1] if line.endswith(b"\r") else line for line in lines], owned


def summarise_range(lines: list[bytes], owned: int, header: list[str], skip: int, delimiter: str, encoding: str) -> list[tuple[int, int]]:
    """Pass 1 of one range: (line, line the next record starts on if a record starts on it),
    both counted from the range's first line, for each owned line from `skip` on with an odd
    number of quotes."""
    return [
        (i, csv_record(lines, i, header, delimiter, encoding)[0])
        for i in range(skip, owned)
        if lines[i].count(b'"') % 2 == 1
    ]


def record_starts(owned: list[int], odd: list[list[tuple[int, int]]]) -> list[tuple[int, int, int]]:
    """Pass 2, on the driver: for each range in file order, (absolute line number of its first
    line, index of the line its first record starts on, index its records stop before), the
    indexes counted from the range's first line; from each range's `owned` line count and its
    odd lines (`summarise_range`). The file's line 0 is the header."""
    firsts = [sum(owned[:k]) for k in range(len(owned))]
    total = sum(owned)
    inside: list[tuple[int, int]] = []  # (first, next) of each record of several lines
    position = 1
    for first, lines in zip(firsts, odd):
        for line, following in lines:
            at = first + line
            if at < position:
                continue  # inside a record begun above
            position = first + following
            if following > line + 1:
                inside.append((at, position))
    starts = []
    for first in firsts:
        start = max(first, 1)
        for begun, ends in inside:
            if begun < start < ends:
                start = ends
        starts.append(start)
    stops = [*starts[1:], total]
    return [(first, start - first, max(stop, start) - first) for first, start, stop in zip(firsts, starts, stops)]


def jsonl_keys(lines: list[bytes], owned: int) -> list[str]:
    """Pass 1 of a JSON Lines range: the keys of its owned lines' objects, first-seen order."""
    keys: dict[str, None] = {}
    for line in lines[:owned]:
        parsed = jsonl_record(line, 0)
        if parsed is not None and parsed[1] is not None:
            keys.update(dict.fromkeys(parsed[1]))
    return list(keys)


def merged_keys(per_range: list[list[str]]) -> list[str]:
    """The keys of ranges in file order, in first-seen order over the file."""
    return list(dict.fromkeys(key for keys in per_range for key in keys))


def parse_jsonl_range(lines: list[bytes], owned: int, first_line: int, keys: list[str]) -> list[Row]:
    """The records on a JSON Lines range's owned lines, with 1-based file line numbers."""
    parsed = [p for i, line in enumerate(lines[:owned]) if (p := jsonl_record(line, first_line + i + 1)) is not None]
    return jsonl_rows(parsed, keys)


def parse_range(lines: list[bytes], start: int, stop: int, first_line: int, header: list[str], delimiter: str, encoding: str) -> list[Row]:
    """The records that start on lines [start, stop) of a range whose first line is the file's
    line `first_line` (0-based), with 1-based file line numbers."""
    rows: list[Row] = []
    i = start
    while i < stop and i < len(lines):
        i, row = csv_record(lines, i, header, delimiter, encoding, first_line_no=first_line + 1)
        if row is not None:
            rows.append(row)
    return rows


@without_cycle_collector
def summarise_batches(
    batches: Iterator[pd.DataFrame], fmt: str, delimiter: str, encoding: str, headers: dict[str, list[str]]
) -> Iterator[pd.DataFrame]:
    """`mapInPandas` body of pass 1: ranges (path, index, start, end) -> (path, index, owned,
    odd_lines, odd_next, keys)."""
    for batch in batches:
        out = []
        for path, index, start, end in zip(batch["path"], batch["index"], batch["start"], batch["end"]):
            lines, owned = range_lines(path, int(start), int(end))
            if fmt == "csv":
                odd = summarise_range(lines, owned, headers[path], 1 if index == 0 else 0, delimiter, encoding)
                out.append((path, int(index), owned, [a for a, _ in odd], [b for _, b in odd], []))
            else:
                out.append((path, int(index), owned, [], [], jsonl_keys(lines, owned)))
        yield pd.DataFrame(out, columns=["path", "index", "owned", "odd_lines", "odd_next", "keys"])


@without_cycle_collector
def parse_batches(
    batches: Iterator[pd.DataFrame], fmt: str, delimiter: str, encoding: str, headers: dict[str, list[str]]
) -> Iterator[pd.DataFrame]:
    """`mapInPandas` body of the parse: planned ranges -> PARSED_SCHEMA rows (the first range
    of a file also yields its header, or JSON Lines keys, as row 0)."""
    for batch in batches:
        for path, index, start, end, first_line, first, stop in zip(
            batch["path"], batch["index"], batch["start"], batch["end"], batch["first_line"], batch["first"], batch["stop"]
        ):
            lines, owned = range_lines(path, int(start), int(end))
            if fmt == "csv":
                rows = parse_range(lines, int(first), int(stop), int(first_line), headers[path], delimiter, encoding)
            else:
                rows = parse_jsonl_range(lines, owned, int(first_line), headers[path])
            out = ([(path, 0, headers[path], None)] if index == 0 else []) + [(path, n, values, err) for n, values, err in rows]
            for at in range(0, len(out), 50_000):
                yield pd.DataFrame(out[at : at + 50_000], columns=["_source_file", "_source_row", "_values", "_parse_error"])
