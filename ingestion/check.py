"""`cdp feeds check`: each landing file's header mapped onto its feed's contract before
anything loads, without Spark.

For every file: its columns after the feed's `rename`, the contract columns it carries,
required columns it lacks (the load would stop), columns earlier files of the feed carried
that it lacks (schema drift: the load would stop), extra columns (ignored, with the closest
contract column suggested), and whether its text decodes in the configured encoding (with
the encoding that would, when another does).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cdp import catalog
from cdp.config import CSV_ENCODINGS, AppConfig, FeedConfig
from cdp.contract import CONTRACTS, FeedContract
from cdp.reader import LakeReader
from ingestion.errors import read_failure
from ingestion.parsing import parse_csv_bytes, parse_jsonl_bytes, parse_xlsx_bytes

__all__ = ["FileCheck", "check_feeds"]

# Enough of a text file to read its header and judge its encoding.
_SAMPLE_BYTES = 1 << 20
_SUFFIXES = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet", "xlsx": ".xlsx"}


@dataclass
class FileCheck:
    feed: str
    path: str
    columns: list[str] = field(default_factory=list)
    carried: list[str] = field(default_factory=list)
    missing_required: list[str] = field(default_factory=list)
    missing_seen: list[str] = field(default_factory=list)
    missing_other: list[str] = field(default_factory=list)
    extra: dict[str, str | None] = field(default_factory=dict)  # column -> closest contract column
    encoding: str | None = None
    encoding_problem: str | None = None
    unreadable: str | None = None

    @property
    def loads(self) -> bool:
        """Whether ingest would accept the file's shape (rows may still be quarantined)."""
        return not (self.unreadable or self.missing_required or self.missing_seen)

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "loads": self.loads}


def _header(feed: FeedConfig, path: Path) -> tuple[list[str], str | None]:
    """(raw header, encoding problem) of one file."""
    if feed.format == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names), None
    if feed.format == "xlsx":
        header, rows = parse_xlsx_bytes(path.read_bytes())
        problems = [e for _, _, e in rows if e and e.startswith("unreadable_workbook")]
        if problems:
            raise ValueError(problems[0])
        return header, None
    with path.open("rb") as f:
        sample = f.read(_SAMPLE_BYTES)
    if len(sample) == _SAMPLE_BYTES:
        sample = sample[: sample.rfind(b"\n") + 1] or sample
    if feed.format == "jsonl":
        header, rows = parse_jsonl_bytes(sample)
        bad = [n for n, _, e in rows if e and e.startswith("invalid_encoding")]
        return header, f"line {bad[0]}: bytes that are not UTF-8" if bad else None
    header, rows = parse_csv_bytes(sample, feed.csv.delimiter, feed.csv.encoding)
    bad = [n for n, _, e in rows if e and e.startswith("invalid_encoding")]
    header_clean = _decodes(sample.split(b"\n", 1)[0], feed.csv.encoding)
    if not bad and header_clean:
        return header, None
    where = f"line {bad[0]}" if bad else "the header"
    fits = [e for e in CSV_ENCODINGS if e != feed.csv.encoding and _decodes(sample, e)]
    hint = f"; it reads as {fits[0]} (set csv.encoding: {fits[0]})" if fits else ""
    if fits and not header_clean:
        header, _ = parse_csv_bytes(sample, feed.csv.delimiter, fits[0])  # names a reader can recognise
    return header, f"{where}: bytes that are not {feed.csv.encoding.upper()}{hint}"


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _check_file(name: str, feed: FeedConfig, contract: FeedContract, path: Path, seen: set[str]) -> FileCheck:
    check = FileCheck(name, str(path), encoding=feed.csv.encoding if feed.format == "csv" else None)
    try:
        raw, check.encoding_problem = _header(feed, path)
    except Exception as exc:  # noqa: BLE001 - any reason a file cannot be opened is reported for it
        check.unreadable = read_failure(exc)
        return check
    renames = {k.strip(): v for k, v in feed.rename.items()}
    check.columns = [renames.get(h, h) for h in raw]
    present = set(check.columns)
    check.carried = [c for c in contract.columns if c in present]
    optional = set(feed.optional_columns)
    check.missing_required = [c for c in contract.required if c not in present]
    check.missing_seen = [c for c in contract.columns if c in seen and c not in present and c not in optional and c not in contract.required]
    check.missing_other = [c for c in contract.columns if c not in present and c not in check.missing_required and c not in check.missing_seen]
    for column in check.columns:
        if column not in contract.columns:
            close = difflib.get_close_matches(column, contract.columns, n=1, cutoff=0.6)
            check.extra[column] = close[0] if close else None
    return check


def _seen_columns(reader: LakeReader, feed: str) -> set[str]:
    """Contract columns non-empty in the feed's bronze table (what earlier files carried)."""
    table = catalog.bronze(feed)
    if not reader.exists(table):
        return set()
    columns = CONTRACTS[feed].columns
    counts = reader.query("SELECT " + ", ".join(f'count("{c}") AS "{c}"' for c in columns) + " FROM b", {"b": table})[0]
    return {c for c in columns if counts[c]}


def check_feeds(config: AppConfig, feeds: list[str] | None = None) -> list[FileCheck]:
    """A check per landing file of the chosen feeds (all configured ones by default), in
    the order ingest would read them. A feed whose folder is missing gets one unreadable row."""
    raw_root = Path(config.resolve(config.lake.raw_root))
    reader = LakeReader(config.resolve(config.lake.root))
    checks = []
    for name, feed in config.ingest.feeds.items():
        if feeds and name not in feeds:
            continue
        folder = Path(feed.path) if feed.path.startswith("/") else raw_root / feed.path
        if not folder.is_dir():
            checks.append(FileCheck(name, str(folder), unreadable="folder does not exist"))
            continue
        seen = _seen_columns(reader, name)
        files = sorted(p for p in folder.rglob(f"*{_SUFFIXES[feed.format]}") if p.is_file())
        checks += [_check_file(name, feed, CONTRACTS[name], path, seen) for path in files]
    return checks


def report_lines(checks: list[FileCheck]) -> list[str]:
    """The check as text: one block per file."""
    lines = []
    for c in checks:
        lines.append(f"{c.feed}: {c.path}  {'ok' if c.loads else 'WOULD NOT LOAD'}")
        if c.unreadable:
            lines.append(f"  unreadable: {c.unreadable}")
            continue
        lines.append(f"  contract columns: {len(c.carried)} of {len(CONTRACTS[c.feed].columns)}")
        for label, values in (("missing required", c.missing_required), ("missing, earlier files had them (schema drift)", c.missing_seen),
                              ("missing (loaded empty)", c.missing_other)):
            if values:
                lines.append(f"  {label}: {', '.join(values)}")
        for column, close in c.extra.items():
            lines.append(f"  extra column {column}: ignored" + (f" (rename to {close}?)" if close else ""))
        if c.encoding_problem:
            lines.append(f"  encoding: {c.encoding_problem}")
    return lines


def to_json(checks: list[FileCheck]) -> str:
    return json.dumps([c.to_json() for c in checks], ensure_ascii=False, indent=2)

