"""Streams generated records to feed files (CSV, JSON Lines, Parquet) and the truth file."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cdp.contract import CONTRACTS

__all__ = ["FEED_LAYOUT", "FeedWriter", "TruthWriter"]

# How the demo dealer group exports each feed; `conf/feeds.yaml` declares the same.
FEED_LAYOUT: dict[str, tuple[str, str, str]] = {
    # feed: (format, timestamp format, date format)
    "sales_orders": ("csv", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"),
    "leads": ("jsonl", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"),
    "service_orders": ("csv", "%Y/%m/%d %H:%M", "%Y/%m/%d"),
    "warranty_claims": ("parquet", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"),
    "complaints": ("jsonl", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"),
    "surveys": ("csv", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"),
    "contact_preferences": ("csv", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d"),
}


class FeedWriter:
    """Writes one feed's rows into numbered part files of at most `rows_per_file` rows."""

    def __init__(self, out: Path, feed: str, rows_per_file: int, stem: str | None = None) -> None:
        self.feed = feed
        self.stem = stem or f"{feed}_part"
        self.paths: list[Path] = []
        self.columns = CONTRACTS[feed].columns
        self.format, self.ts_format, self.date_format = FEED_LAYOUT[feed]
        self._dir = out / feed
        self._dir.mkdir(parents=True, exist_ok=True)
        self._rows_per_file = rows_per_file
        self._part = 0
        self._in_part = 0
        self._handle: Any = None
        self._csv: Any = None
        self._buffer: list[dict[str, Any]] = []
        self.rows = 0

    def _render(self, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.strftime(self.ts_format)
        if isinstance(value, dt.date):
            return value.strftime(self.date_format)
        if isinstance(value, bool):
            return "true" if value else "false"
        return value

    def _open_part(self) -> None:
        self._close_part()
        self._part += 1
        self._in_part = 0
        path = self._dir / f"{self.stem}{self._part:04d}.{self.format}"
        self.paths.append(path)
        if self.format == "csv":
            self._handle = path.open("w", encoding="utf-8", newline="")
            self._csv = csv.writer(self._handle, lineterminator="\n")
            self._csv.writerow(self.columns)
        elif self.format == "jsonl":
            self._handle = path.open("w", encoding="utf-8")
        else:
            self._handle = path

    def _close_part(self) -> None:
        if self._handle is None:
            return
        if self.format == "parquet":
            table = pa.table(
                {c: pa.array([row.get(c) for row in self._buffer], type=pa.string()) for c in self.columns}
            )
            pq.write_table(table, self._handle, compression="snappy")
            self._buffer = []
        else:
            self._handle.close()
        self._handle = None

    def write(self, record: dict[str, Any]) -> None:
        if self._handle is None or self._in_part >= self._rows_per_file:
            self._open_part()
        values = {c: self._render(record.get(c)) for c in self.columns}
        if self.format == "csv":
            self._csv.writerow(["" if values[c] is None else values[c] for c in self.columns])
        elif self.format == "jsonl":
            self._handle.write(json.dumps(values, ensure_ascii=False) + "\n")
        else:
            self._buffer.append({c: None if v is None else str(v) for c, v in values.items()})
        self._in_part += 1
        self.rows += 1

    def close(self) -> None:
        self._close_part()


class TruthWriter:
    """`truth/mentions.csv`: feed, record_id, role, person_id, entity_type for every person
    mention; `truth/contact_preferences.csv`: person_id, mobile, id_number, channel, opt_in,
    updated_at for every preference row (the row as written, and whose it is)."""

    def __init__(self, out: Path) -> None:
        (out / "truth").mkdir(parents=True, exist_ok=True)
        self._handle = (out / "truth" / "mentions.csv").open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._handle, lineterminator="\n")
        self._csv.writerow(["feed", "record_id", "role", "person_id", "entity_type"])
        self._preferences_handle = (out / "truth" / "contact_preferences.csv").open("w", encoding="utf-8", newline="")
        self._preferences = csv.writer(self._preferences_handle, lineterminator="\n")
        self._preferences.writerow(["person_id", "mobile", "id_number", "channel", "opt_in", "updated_at"])
        self.rows = 0

    def write(self, feed: str, record_id: str, role: str, person_id: str) -> None:
        entity_type = "company" if person_id.startswith("C") else "individual"
        self._csv.writerow([feed, record_id, role, person_id, entity_type])
        self.rows += 1

    def preference(self, person_id: str, record: dict[str, object]) -> None:
        self._preferences.writerow([person_id, record["mobile"] or "", record["id_number"] or "", record["channel"],
                                    "true" if record["opt_in"] else "false", record["updated_at"]])

    def close(self) -> None:
        self._handle.close()
        self._preferences_handle.close()
