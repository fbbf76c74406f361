"""Ingest one feed: new files -> bronze, silver and quarantine, gated and reconciled.

Order of work, so a failure or a kill at any point leaves nothing partial and a re-run
finishes the job:
1. list files and skip those already loaded (by content hash, from `_ops/ingest_files`);
2. read, type, standardise and apply row rules; stage the batch once (kept by Spark);
3. hard rules: bad-row share over the feed's limit, or a failed GX suite, stop here;
4. MERGE bronze (file hash, row), quarantine (file hash, row) and silver (record key), side by side;
5. record the files as loaded and the validation results (`IngestLog`, one commit per `_ops`
   table for the whole run). Steps 4-5 are idempotent, so a re-run after a crash redoes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from cdp import catalog
from cdp.config import AppConfig, FeedConfig
from cdp.contract import CONTRACTS
from cdp.delta_stats import is_personal
from cdp.lake import Lake, insert_new, local_folder, merge_into, read_table, side_by_side, table_exists
from cdp.records import merge_records
from cdp.spark import interpreted_session, local_bytes, small_lake_bytes
from expectations import validate_batch
from ingestion.errors import FeedError, read_failure
from ingestion.readers import FeedFile, KnownFiles, SeenColumns, list_feed_files, read_feed_files
from ingestion.rules import build_row_rules, with_clean_text, with_rule_results
from ingestion.silver import with_record_id, with_standardised_identity, with_typed_columns

__all__ = ["FeedReport", "IngestLog", "ingest_feed", "ingest_feeds", "largest_first"]

log = logging.getLogger(__name__)

_META = ["_source_file", "_source_row", "_file_hash", "_batch_id", "_loaded_at"]


@dataclass
class FeedReport:
    """What one ingest run did to one feed. `reconciled` means read = loaded + quarantined."""

    feed: str
    files_new: int = 0
    files_skipped: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    batch_id: str | None = None
    quarantine_by_rule: dict[str, int] = field(default_factory=dict)
    validation_success: bool | None = None

    @property
    def reconciled(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined


def _batch_id(feed: str, files: list[FeedFile]) -> str:
    digest = hashlib.sha256("\n".join([feed, *sorted(f.file_hash for f in files)]).encode()).hexdigest()
    return digest[:16]


class IngestLog:
    """The run's bookkeeping in `_ops`: which files are loaded (read once per run) and the
    validation results and loaded files to record, written in one commit per table when the
    run ends. Everything it records is also safe to redo: a run killed before `flush`
    loads the same files again, and every write of a load is idempotent."""

    def __init__(self, spark: SparkSession, lake: Lake) -> None:
        self.spark, self.lake = spark, lake
        self._loaded: dict[str, set[str]] | None = None
        self._known: dict[str, KnownFiles] = {}
        self._unidentified: dict[str, set[tuple[str, str]]] = {}
        self.validations: list[tuple] = []
        self.files: list[tuple] = []
        self.identities: list[tuple] = []

    def loaded_hashes(self, feed: str) -> set[str]:
        if self._loaded is None:
            path = self.lake.path(catalog.INGEST_FILES)
            register = read_table(self.spark, path) if table_exists(self.spark, path) else None
            # A register written before files were recorded with their size and time knows none.
            identified = register is not None and "modified_ms" in register.columns
            columns = ["feed", "path", "file_hash", *(["file_size", "modified_ms"] if identified else [])]
            rows = register.select(*columns).collect() if register is not None else []
            self._loaded, self._known, self._unidentified = {}, {}, {}
            for r in rows:
                self._loaded.setdefault(r["feed"], set()).add(r["file_hash"])
                if identified and r["modified_ms"] is not None:
                    self._known.setdefault(r["feed"], {})[(r["path"], r["file_size"], r["modified_ms"])] = r["file_hash"]
                else:
                    self._unidentified.setdefault(r["feed"], set()).add((r["path"], r["file_hash"]))
        return self._loaded.get(feed, set())

    def known_files(self, feed: str) -> KnownFiles:
        """The feed's loaded files by path, size and modification time (`list_feed_files`)."""
        self.loaded_hashes(feed)
        return self._known.get(feed, {})

    def identify(self, feed: str, files: list[FeedFile]) -> None:
        """Record the size and time of listed files the register holds without them (loaded
        by an earlier release), so that later runs know them unread."""
        self.loaded_hashes(feed)
        unidentified = self._unidentified.get(feed, set())
        self.identities += [
            (feed, f.file_hash, f.size, f.modified_ms) for f in files if (f.path, f.file_hash) in unidentified and f.modified_ms is not None
        ]

    def flush(self) -> None:
        """Write what was recorded (validation results first: a failed batch keeps its result)."""
        if self.validations:
            # Insert only: a batch re-run after a crash keeps its first record and adds no version.
            merge_records(self.spark, self.lake.path(catalog.VALIDATION_RESULTS), self.validations, _VALIDATION_SCHEMA, ["feed", "batch_id"], update=False)
            self.validations = []
        if self.files:
            merge_records(self.spark, self.lake.path(catalog.INGEST_FILES), self.files, _FILES_SCHEMA, ["feed", "file_hash"], update=False, evolve=True)
            self._loaded = None  # read again when asked
            self.files = []
        if self.identities:
            merge_records(self.spark, self.lake.path(catalog.INGEST_FILES), self.identities, _IDENTITY_SCHEMA, ["feed", "file_hash"], evolve=True, insert=False)
            self._loaded = None
            self.identities = []


_VALIDATION_SCHEMA = "feed string, batch_id string, success boolean, validated_at timestamp, result string"
_FILES_SCHEMA = (
    "feed string, path string, file_hash string, batch_id string, rows_read long, rows_loaded long, "
    "rows_quarantined long, loaded_at timestamp, file_size long, modified_ms long"
)
_IDENTITY_SCHEMA = "feed string, file_hash string, file_size long, modified_ms long"


def _columns_seen(spark: SparkSession, lake: Lake, feed: str) -> SeenColumns:
    """Which of the given contract columns earlier batches of the feed carried (non-empty in
    bronze), counted over those columns only, when asked: a batch whose files all carry every
    contract column asks nothing, and bronze is not read."""
    path = lake.path(catalog.bronze(feed))

    def seen(columns: list[str]) -> set[str]:
        if not columns or not table_exists(spark, path):
            return set()
        counts = read_table(spark, path).agg(*[F.count(F.col(c)).alias(c) for c in columns]).first()
        return {c for c in columns if counts[c]}

    return seen


def build_staged_batch(raw: DataFrame, feed_name: str, feed: FeedConfig) -> DataFrame:
    """Raw rows -> bronze columns + typed silver columns + rule results (`_rule` null = clean)."""
    contract = CONTRACTS[feed_name]
    raw_columns = {c: F.col(c) for c in contract.columns}
    with_raw = raw.withColumn("_raw", F.struct(*[v.alias(k) for k, v in raw_columns.items()]))
    checked = with_raw.transform(with_clean_text, list(contract.columns)).transform(with_rule_results, build_row_rules(contract, feed))
    typed = (
        checked.transform(with_typed_columns, contract, feed)
        .transform(with_standardised_identity, contract)
        .transform(with_record_id, contract)
    )
    # Two clean rows for one record in a batch: the later file/line wins, the earlier is quarantined.
    latest = Window.partitionBy("record_id").orderBy(F.col("_source_file").desc(), F.col("_source_row").desc())
    ranked = typed.withColumn(
        "_dup_rank", F.when(F.col("_rule").isNull(), F.row_number().over(latest))
    )
    duplicate = F.coalesce(F.col("_dup_rank") > 1, F.lit(False))
    return ranked.withColumns(
        {
            "_rule": F.when(duplicate, F.lit("duplicate_key")).otherwise(F.col("_rule")),
            "_rules": F.when(duplicate, F.array(F.lit("duplicate_key"))).otherwise(F.col("_rules")),
            "_reason": F.when(duplicate, F.lit(f"{'/'.join(contract.keys)}: repeated later in the batch")).otherwise(F.col("_reason")),
        }
    ).drop("_dup_rank")


def _count_rows(staged: DataFrame) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """In one pass over a staged batch: per file, its rows and bad rows (`_source_file`,
    `rows`, `bad`), and bad rows per rule (a row breaking two rules counts for each)."""
    combos = staged.groupBy("_source_file", F.col("_rule").isNotNull().alias("bad"), "_rules").count().collect()
    files: dict[str, dict[str, Any]] = {}
    by_rule: dict[str, int] = {}
    for r in combos:
        entry = files.setdefault(r["_source_file"], {"_source_file": r["_source_file"], "rows": 0, "bad": 0})
        entry["rows"] += r["count"]
        if r["bad"]:
            entry["bad"] += r["count"]
            for rule in r["_rules"] or []:
                by_rule[rule] = by_rule.get(rule, 0) + r["count"]
    return list(files.values()), by_rule


def _write_validation(ops: IngestLog, feed: str, batch_id: str, result_json: str, success: bool) -> None:
    ops.validations.append((feed, batch_id, success, dt.datetime.now(dt.UTC).replace(tzinfo=None), result_json))
    folder = local_folder(ops.lake.path(catalog.validation_folder(feed)))
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{batch_id}.json").write_text(result_json, encoding="utf-8")


def ingest_feed(
    spark: SparkSession, lake: Lake, feed_name: str, feed: FeedConfig, folder: str, ops: IngestLog | None = None, small: bool = False,
    small_batch_bytes: int = 0,
) -> FeedReport:
    """Load the feed's new files under `folder`. Raises FeedError (writing nothing of the feed
    but its validation result) when a hard rule breaks. With `log`, the `_ops` records wait
    for the caller's `log.flush()`; without, they are written before returning. `small`: the
    files are a small local lake's, so the batch's expectation suite runs on the driver. New
    files of `small_batch_bytes` or less in all (a day's few rows on a large lake) are loaded
    as a small lake's are, in a session without generated code (`cdp.spark.interpreted_session`)."""
    if ops is None:
        own = IngestLog(spark, lake)
        try:
            report = ingest_feed(spark, lake, feed_name, feed, folder, own, small, small_batch_bytes)
        except FeedError:
            own.flush()
            raise
        own.flush()
        return report
    contract = CONTRACTS[feed_name]
    report = FeedReport(feed_name)
    done = ops.loaded_hashes(feed_name)
    files = list_feed_files(spark, feed_name, feed, folder, ops.known_files(feed_name))
    ops.identify(feed_name, files)
    new_files = [f for f in files if f.file_hash not in done]
    seen: set[str] = set()
    unique_new = []
    for f in new_files:  # the same bytes under two names load once
        if f.file_hash not in seen:
            seen.add(f.file_hash)
            unique_new.append(f)
    report.files_skipped = len(files) - len(unique_new)
    report.files_new = len(unique_new)
    if not unique_new:
        log.info("feed %s: no new files (%d already loaded)", feed_name, report.files_skipped)
        return report

    started = time.perf_counter()
    batch_bytes = sum(f.size for f in unique_new)
    if not small and batch_bytes <= small_batch_bytes:
        log.info("feed %s: a small batch (%.1f MB): no generated code, its suite run on the driver", feed_name, batch_bytes / 2**20)
        spark, small = interpreted_session(spark), True
    batch_id = _batch_id(feed_name, unique_new)
    report.batch_id = batch_id
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    raw = read_feed_files(spark, feed_name, feed, contract, unique_new, _columns_seen(spark, lake, feed_name))
    try:
        # Computed once, eagerly, and kept by the executors (spilling to their disks): every
        # later pass (counts, the gate, bronze, quarantine, silver) reads it, none parses again.
        staged = (
            build_staged_batch(raw, feed_name, feed)
            .withColumn("_batch_id", F.lit(batch_id))
            .withColumn("_loaded_at", F.lit(loaded_at))
            .localCheckpoint()
        )
    except Exception as exc:  # noqa: BLE001 - reading the files happens here, lazily: any failure is the feed's
        raise FeedError(feed_name, "unreadable_file", read_failure(exc), ", ".join(f.path for f in unique_new)) from exc
    log.info("feed %s: staged batch %s in %.1fs", feed_name, batch_id, time.perf_counter() - started)

    per_file, report.quarantine_by_rule = _count_rows(staged)
    report.rows_read = sum(r["rows"] for r in per_file)
    report.rows_quarantined = sum(r["bad"] for r in per_file)
    report.rows_loaded = report.rows_read - report.rows_quarantined
    if report.rows_read and report.rows_quarantined > feed.max_bad_row_fraction * report.rows_read:
        worst = max(per_file, key=lambda r: r["bad"] / max(r["rows"], 1))
        top_rule = max(report.quarantine_by_rule.items(), key=lambda kv: kv[1])[0]
        raise FeedError(
            feed_name,
            "max_bad_row_fraction",
            f"{report.rows_quarantined} of {report.rows_read} rows broke row rules "
            f"(limit {feed.max_bad_row_fraction:.1%}); most common rule {top_rule}",
            worst["_source_file"],
        )

    log.info("feed %s: counted rows in %.1fs", feed_name, time.perf_counter() - started)
    silver_columns = [*contract.columns, *[c for c in staged.columns if c not in contract.columns and not c.startswith("_")], *_META]
    clean = staged.filter(F.col("_rule").isNull()).select(*silver_columns)
    gate = validate_batch(clean, feed_name, on_driver=small)
    report.validation_success = gate.success
    _write_validation(ops, feed_name, batch_id, gate.to_json(), gate.success)
    if not gate.success:
        raise FeedError(feed_name, "expectation_suite", f"batch {batch_id} failed {', '.join(gate.failed)}")

    pii = [c for c in staged.columns if is_personal(c)]
    # Keys unique by construction: a file's line numbers, and one clean row per record (the
    # staged batch quarantined the repeats). The batch's files are new to the file register,
    # so bronze and the quarantine hold none of their lines unless a run that loaded them
    # stopped before the register was written: appended then, merged only after such a stop.
    lines = ["_file_hash", "_source_row"]
    of_batch = F.col("_file_hash").isin(*sorted({f.file_hash for f in unique_new}))
    bronze = staged.select(*[F.col(f"_raw.{c}").alias(c) for c in contract.columns], "_raw_record", *_META)
    quarantine = staged.filter(F.col("_rule").isNotNull()).select(
        F.lit(feed_name).alias("feed"), "_rule", "_rules", "_reason", "_raw", "_raw_record", *_META
    )
    quarantine_path = lake.path(catalog.quarantine(feed_name))
    writes = [
        lambda: insert_new(spark, bronze, lake.path(catalog.bronze(feed_name)), lines, probe=of_batch, writer_id=f"ingest-{batch_id}", no_stats_columns=pii),
        lambda: merge_into(spark, clean, lake.path(catalog.silver(feed_name)), ["record_id"], no_stats_columns=pii, unchanged_ignoring=("_loaded_at",), unique_by_construction=True),
    ]
    if report.rows_quarantined or not table_exists(spark, quarantine_path):  # an empty append would still commit
        writes.append(lambda: insert_new(spark, quarantine, quarantine_path, lines, probe=of_batch, writer_id=f"ingest-{batch_id}", no_stats_columns=pii))
    # Three tables, each write idempotent: written at once, in any order.
    side_by_side(*writes)

    counts = {r["_source_file"]: (r["rows"], r["rows"] - r["bad"], r["bad"]) for r in per_file}
    ops.files += [
        (feed_name, f.path, f.file_hash, batch_id, *counts.get(f.path, (0, 0, 0)), loaded_at, f.size, f.modified_ms) for f in unique_new
    ]
    if not report.reconciled:  # pragma: no cover - guarded by construction, checked anyway
        raise FeedError(feed_name, "reconciliation", f"read {report.rows_read} != loaded {report.rows_loaded} + quarantined {report.rows_quarantined}")
    log.info(
        "feed %s: batch %s read %d, loaded %d, quarantined %d",
        feed_name, batch_id, report.rows_read, report.rows_loaded, report.rows_quarantined,
    )
    return report


def largest_first(chosen: list[tuple[str, FeedConfig]], folders: dict[str, str]) -> list[tuple[str, FeedConfig]]:
    """The feeds with the most bytes on the local disk first, the others after them in the
    given order. Loaded side by side, a feed that takes most of the run (repair orders, seven
    times the rows of sales orders) starts at once and the small ones fill the other slots: in
    the given order it started once two others had finished, and the step waited on it alone."""
    sizes = {name: local_bytes(folders[name]) for name, _ in chosen}
    return sorted(chosen, key=lambda item: -(sizes[item[0]] or 0))


def ingest_feeds(
    spark: SparkSession, config: AppConfig, lake: Lake, feeds: list[str] | None = None
) -> tuple[list[FeedReport], list[FeedError]]:
    """Ingest the chosen feeds (all configured ones by default), `ingest.parallel_feeds` at a
    time, the largest first (`largest_first`). A feed that breaks a hard rule is reported in
    the errors and left untouched; the others still load. Reports come in the configured
    order of the feeds."""
    raw_root = config.resolve(config.lake.raw_root)
    ops = IngestLog(spark, lake)
    chosen = [(name, feed) for name, feed in config.ingest.feeds.items() if not feeds or name in feeds]
    ops.loaded_hashes("")  # read once, before the feeds start side by side
    small = small_lake_bytes(config) is not None
    folders = {name: feed.path if ("://" in feed.path or feed.path.startswith("/")) else f"{raw_root.rstrip('/')}/{feed.path}" for name, feed in chosen}

    def load(name: str, feed: FeedConfig) -> FeedReport | FeedError:
        folder = folders[name]
        try:
            return ingest_feed(spark, lake, name, feed, folder, ops, small, config.spark.small_batch_max_bytes)
        except FeedError as exc:
            log.error("%s", exc)
            return exc

    workers = min(config.ingest.parallel_feeds, len(chosen)) or 1
    if workers == 1:
        outcomes = [load(name, feed) for name, feed in chosen]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest") as pool:
            futures = {name: pool.submit(load, name, feed) for name, feed in largest_first(chosen, folders)}
            outcomes = [futures[name].result() for name, _ in chosen]
    ops.flush()
    return [o for o in outcomes if isinstance(o, FeedReport)], [o for o in outcomes if isinstance(o, FeedError)]
