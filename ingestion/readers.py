"""Read a feed's files into one DataFrame of raw strings in the canonical column names.

Each row carries `_source_file`, `_source_row` (line number for CSV/JSONL, row index for
Parquet), `_file_hash` and `_parse_error`. Hard problems (unreadable file, a required column
missing from a file) raise FeedError before anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial, reduce
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.utils import AnalysisException

from cdp.config import FeedConfig
from cdp.contract import FeedContract
from ingestion.errors import FeedError, read_failure
from ingestion.parsing import PARSED_SCHEMA, parse_csv_batches
from ingestion.splits import file_sha256, merged_keys, parse_batches, plan_splits, read_header, record_starts, summarise_batches

__all__ = ["FeedFile", "KnownFiles", "SeenColumns", "list_feed_files", "read_feed_files"]

log = logging.getLogger(__name__)

_EXTENSIONS = {"csv": "*.csv", "jsonl": "*.jsonl", "parquet": "*.parquet", "xlsx": "*.xlsx"}


# Which of the given contract columns earlier batches of a feed carried (asked only when a
# file of the batch lacks one of them).
SeenColumns = Callable[[list[str]], set[str]]


def _none_seen(columns: list[str]) -> set[str]:
    return set()


@dataclass(frozen=True)
class FeedFile:
    path: str
    size: int
    file_hash: str
    modified_ms: int | None = None  # the file's modification time, milliseconds since 1970


# A file the register knows: (path, size in bytes, modification time in ms) -> its SHA-256.
KnownFiles = dict[tuple[str, int, int], str]


def _splits(feed: FeedConfig, size: int) -> bool:
    """Whether a file of `size` bytes of this feed is read in ranges (`ingestion.splits`)."""
    return feed.format in ("csv", "jsonl") and size > feed.split_bytes


def list_feed_files(spark: SparkSession, feed_name: str, feed: FeedConfig, folder: str, known: KnownFiles | None = None) -> list[FeedFile]:
    """The feed's files with their SHA-256 (computed where the bytes are), sorted by path.
    A file `known` holds under its path, size and modification time takes the hash recorded
    there and is not read (as rsync's quick check): a landing folder keeps every day's files,
    and hashing them all on every run would read the feed's whole history each day. A file
    written again changes its modification time, and is hashed. A file read in ranges is
    hashed in chunks by a task of its own: `binaryFile` would hold it whole, and refuses one
    over 2 GB."""
    known = known or {}
    try:
        files = (
            spark.read.format("binaryFile")
            .option("pathGlobFilter", _EXTENSIONS[feed.format])
            .option("recursiveFileLookup", "true")
            .load(folder)
        )
        # No content read.
        listing = files.select("path", "length", F.unix_millis("modificationTime").alias("modified_ms")).collect()
        hashes = {r["path"]: known[key] for r in listing if (key := (r["path"], r["length"], r["modified_ms"])) in known}
        unread = [r for r in listing if r["path"] not in hashes]
        small = [r["path"] for r in unread if r["length"] <= feed.split_bytes]
        large = [r["path"] for r in unread if r["length"] > feed.split_bytes]
        hashed = spark.read.format("binaryFile").load(small).select("path", F.sha2("content", 256).alias("file_hash")) if small else None
        hashes |= {r["path"]: r["file_hash"] for r in hashed.collect()} if hashed is not None else {}
        if large:
            # Wrapped: pyspark reads `file_sha256`'s type hints as a pandas UDF's, and warns.
            sha256 = F.udf(lambda path: file_sha256(path), "string")
            rows = spark.createDataFrame([(p,) for p in large], "path string").repartition(len(large))
            hashes |= {r["path"]: r["file_hash"] for r in rows.select("path", sha256("path").alias("file_hash")).collect()}
    except AnalysisException as exc:
        if "PATH_NOT_FOUND" in str(exc) or "Path does not exist" in str(exc):
            raise FeedError(feed_name, "missing_path", f"folder {folder} does not exist") from exc
        raise FeedError(feed_name, "unreadable_file", read_failure(exc), folder) from exc
    if len(unread) < len(listing):
        log.info("feed %s: %d of %d file(s) hashed, the others known by path, size and modification time", feed_name, len(unread), len(listing))
    return sorted((FeedFile(r["path"], r["length"], hashes[r["path"]], r["modified_ms"]) for r in listing), key=lambda f: f.path)


def _canonical(header: list[str], feed: FeedConfig) -> list[str]:
    renames = {k.strip(): v for k, v in feed.rename.items()}
    return [renames.get(h, h) for h in header]


def _validate_header(feed_name: str, contract: FeedContract, path: str, columns: list[str]) -> None:
    missing = [c for c in contract.required if c not in columns]
    if missing:
        raise FeedError(
            feed_name, "missing_column", f"required column(s) {', '.join(missing)} not in header", path
        )
    extra = sorted(set(columns) - set(contract.columns))
    if extra:
        log.warning("feed %s: file %s: ignoring column(s) not in the contract: %s", feed_name, path, extra)


def _check_drift(feed_name: str, contract: FeedContract, headers: dict[str, list[str]], seen: SeenColumns, optional: set[str]) -> None:
    """Files in path order: one lacking a contract column that an earlier file of the feed
    carried (in an earlier batch, told by `seen`, or earlier in this one) is schema drift (a
    renamed header, a changed export): a hard error naming the file and column, so no column
    is silently loaded empty. Columns listed in `optional` may come and go. Earlier batches
    are asked about only the columns some file of this one lacks: usually none."""
    lacked = sorted({c for header in headers.values() for c in contract.columns if c not in header} - optional)
    carried = seen(lacked) if lacked else set()
    for path, header in sorted(headers.items()):
        lacking = sorted(carried - set(header))
        if lacking:
            extra = sorted(set(header) - set(contract.columns))
            hint = f"; the header has {', '.join(extra)} instead (map it with `rename`)" if extra else ""
            raise FeedError(
                feed_name, "schema_drift",
                f"column(s) {', '.join(lacking)} missing from the header although earlier files of the feed had them"
                f"{hint}, or list them under `optional_columns`",
                path,
            )
        carried |= {c for c in header if c in contract.columns} - optional


def _positional_columns(
    contract: FeedContract, headers: dict[str, list[str]]
) -> dict[str, Column]:
    """Column expressions picking each canonical column out of `_values` by the file's header."""
    by_header: dict[tuple[str, ...], list[str]] = {}
    for path, header in headers.items():
        by_header.setdefault(tuple(header), []).append(path)
    exprs: dict[str, Column] = {}
    for column in contract.columns:
        expr: Column = F.lit(None).cast("string")
        for header, paths in by_header.items():
            if column in header:
                pick = F.try_element_at(F.col("_values"), F.lit(header.index(column) + 1))
                expr = F.when(F.col("_source_file").isin(*paths), pick).otherwise(expr)
        exprs[column] = expr
    return exprs


def _read_text_files(
    spark: SparkSession, feed_name: str, feed: FeedConfig, contract: FeedContract, files: list[FeedFile], seen: SeenColumns
) -> DataFrame:
    hashes = {f.path: f.file_hash for f in files}
    parse = partial(parse_csv_batches, fmt=feed.format, delimiter=feed.csv.delimiter, encoding=feed.csv.encoding)
    whole = [f.path for f in files if not _splits(feed, f.size)]
    try:
        frames = [spark.read.format("binaryFile").load(whole).select("path", "content").mapInPandas(parse, PARSED_SCHEMA)] if whole else []
        large = [f for f in files if _splits(feed, f.size)]
        if large:
            frames.append(_read_in_ranges(spark, feed, large))
        # Parsed once, eagerly: the headers are read from it, then the batch is built from it.
        parsed = reduce(DataFrame.unionByName, frames).localCheckpoint()
        header_rows = parsed.filter(F.col("_source_row") == 0).select("_source_file", "_values").collect()
    except Exception as exc:  # noqa: BLE001 - any read failure is reported against the feed
        raise FeedError(feed_name, "unreadable_file", read_failure(exc)) from exc
    headers: dict[str, list[str]] = {}
    for row in header_rows:
        header = list(row["_values"] or [])
        if not header:
            log.warning("feed %s: file %s is empty", feed_name, row["_source_file"])
            continue
        headers[row["_source_file"]] = _canonical(header, feed)
        _validate_header(feed_name, contract, row["_source_file"], headers[row["_source_file"]])
    _check_drift(feed_name, contract, headers, seen, set(feed.optional_columns))
    file_hash = F.create_map(*[x for p, h in hashes.items() for x in (F.lit(p), F.lit(h))])
    return parsed.filter(F.col("_source_row") > 0).select(
        *[e.alias(c) for c, e in _positional_columns(contract, headers).items()],
        "_source_file",
        "_source_row",
        file_hash[F.col("_source_file")].alias("_file_hash"),
        "_parse_error",
        F.when(F.col("_parse_error").isNotNull(), F.array_join(F.col("_values"), feed.csv.delimiter)).alias("_raw_record"),
    )


def _read_in_ranges(spark: SparkSession, feed: FeedConfig, files: list[FeedFile]) -> DataFrame:
    """PARSED_SCHEMA rows of large CSV or JSON Lines files, each read as byte ranges on tasks
    of their own: a first pass finds where records start and which keys JSON Lines use
    (`ingestion.splits`), the second parses them."""
    fmt, delimiter, encoding = feed.format, feed.csv.delimiter, feed.csv.encoding
    headers = {f.path: read_header(f.path, delimiter, encoding) for f in files} if fmt == "csv" else {}
    ranges = [(s.path, s.index, s.start, s.end) for f in files for s in plan_splits(f.path, f.size, feed.split_bytes)]
    frame = spark.createDataFrame(ranges, "path string, index int, start long, end long").repartition(len(ranges))
    summary_schema = "path string, index int, owned long, odd_lines array<long>, odd_next array<long>, keys array<string>"
    summarise = partial(summarise_batches, fmt=fmt, delimiter=delimiter, encoding=encoding, headers=headers)
    by_file: dict[str, list[Any]] = {}
    for row in sorted(frame.mapInPandas(summarise, summary_schema).collect(), key=lambda r: (r["path"], r["index"])):
        by_file.setdefault(row["path"], []).append(row)
    plan = []
    for path, rows in by_file.items():
        if fmt == "csv":
            starts = record_starts([r["owned"] for r in rows], [list(zip(r["odd_lines"], r["odd_next"])) for r in rows])
        else:
            headers[path] = merged_keys([list(r["keys"]) for r in rows])
            firsts = [sum(r["owned"] for r in rows[:k]) for k in range(len(rows))]
            starts = [(first, 0, r["owned"]) for first, r in zip(firsts, rows)]
        plan += [(path, r["index"], *_bounds(ranges, path, r["index"]), *bounds) for r, bounds in zip(rows, starts)]
    planned = spark.createDataFrame(plan, "path string, index int, start long, end long, first_line long, first long, stop long")
    parse = partial(parse_batches, fmt=fmt, delimiter=delimiter, encoding=encoding, headers=headers)
    return planned.repartition(len(plan)).mapInPandas(parse, PARSED_SCHEMA)


def _bounds(ranges: list[tuple[str, int, int, int]], path: str, index: int) -> tuple[int, int]:
    return next((start, end) for p, i, start, end in ranges if p == path and i == index)


def _as_text(column: str, types: dict[str, str]) -> Column:
    """A Parquet column as raw text: nested values as JSON, missing columns as null."""
    if column not in types:
        return F.lit(None).cast("string")
    if types[column].startswith(("struct", "map", "array")):
        return F.to_json(F.col(column))
    return F.col(column).cast("string")


def _read_parquet_files(
    spark: SparkSession, feed_name: str, feed: FeedConfig, contract: FeedContract, files: list[FeedFile], seen: SeenColumns
) -> DataFrame:
    opened = []
    for f in files:
        try:
            df = spark.read.parquet(f.path)
            renamed = df.withColumnsRenamed({k: v for k, v in feed.rename.items() if k in df.columns})
        except Exception as exc:  # noqa: BLE001
            raise FeedError(feed_name, "unreadable_file", read_failure(exc), f.path) from exc
        _validate_header(feed_name, contract, f.path, renamed.columns)
        opened.append((f, renamed))
    _check_drift(feed_name, contract, {f.path: renamed.columns for f, renamed in opened}, seen, set(feed.optional_columns))
    frames = []
    for f, renamed in opened:
        types = dict(renamed.dtypes)
        values = {c: _as_text(c, types) for c in contract.columns}
        # Parquet strings must be UTF-8; a writer that put GBK bytes in one makes that row
        # unreadable, not the file: the row is quarantined, its text kept with U+FFFD.
        bad = [F.when(~F.is_valid_utf8(v), F.lit(c)) for c, v in values.items() if types.get(c) in ("string", "binary")]
        encoding_error = F.when(
            F.size(F.array_compact(F.array(*bad))) > 0,
            F.concat(F.lit("invalid_encoding: bytes that are not UTF-8 in "), F.concat_ws(", ", *bad)),
        ) if bad else F.lit(None).cast("string")
        frames.append(
            renamed.select(
                *[F.make_valid_utf8(v).alias(c) for c, v in values.items()],
                F.lit(f.path).alias("_source_file"),
                (F.col("_metadata.row_index") + 1).alias("_source_row"),
                F.lit(f.file_hash).alias("_file_hash"),
                encoding_error.alias("_parse_error"),
                F.lit(None).cast("string").alias("_raw_record"),
            )
        )
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def read_feed_files(
    spark: SparkSession,
    feed_name: str,
    feed: FeedConfig,
    contract: FeedContract,
    files: list[FeedFile],
    seen: SeenColumns | None = None,
) -> DataFrame:
    """Raw string columns of the contract plus source metadata, one row per record. `seen`
    tells which of the contract columns it is given earlier files of the feed carried; a file
    lacking one (and not listed in the feed's `optional_columns`) is schema drift."""
    lookup = seen or _none_seen
    if feed.format == "parquet":
        return _read_parquet_files(spark, feed_name, feed, contract, files, lookup)
    return _read_text_files(spark, feed_name, feed, contract, files, lookup)
