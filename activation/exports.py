"""Exports of lists for marketers and dialers: consent checked again, personal fields masked
unless the export is privileged, and every export recorded in the audit table.

The audit row says who exported what, when, how many rows and which fields, never a value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType

from activation.consent import build_reachable, with_contactable
from cdp.errors import UsageError
from cdp.files import OutputError, write_one_file
from cdp.privacy import MASKERS

__all__ = [
    "AUDIT_COLUMNS",
    "EXPORT_FORMATS",
    "REMINDER_FIELDS",
    "WINBACK_FIELDS",
    "ExportError",
    "ExportRequest",
    "build_audit_row",
    "build_export_rows",
    "neutralise_cell",
    "validate_privileged",
    "write_export_file",
]

# Export field -> masker of `cdp.privacy`.
PERSONAL_FIELDS = {"name": "name", "mobile": "mobile", "email": "email", "id_number": "id_number", "address": "address"}
AUDIT_COLUMNS = (
    "export_id", "exported_at", "user", "list_kind", "list_name", "list_version", "as_of_date", "channel", "format",
    "destination", "rows", "fields", "masked", "privileged", "purpose",
)


EXPORT_FORMATS = ("csv", "parquet", "xlsx")
# The fields of a win-back and a reminders export unless the caller names others.
WINBACK_FIELDS = ("rank", "dealer_rank", "customer_id", "name", "mobile", "dealer_code", "lifecycle_stage", "reason_codes", "p_return", "expected_value")
REMINDER_FIELDS = ("customer_id", "name", "mobile", "kind", "due_date", "dealer_code", "model", "basis")


class ExportError(UsageError):
    """An export was refused or its destination cannot be written."""


@dataclass(frozen=True)
class ExportRequest:
    """One export: which list, for which channel, with which fields, by whom and why."""

    list_kind: str  # audience | winback | reminders
    list_name: str
    list_version: str
    as_of: dt.date
    channel: str
    fields: tuple[str, ...]
    format: str
    destination: str
    user: str
    privileged: bool = False
    purpose: str | None = None
    order_by: tuple[str, ...] = ()


def validate_privileged(user: str, purpose: str | None, privileged_users: Sequence[str]) -> None:
    """Raise ExportError unless `user` may export unmasked details and says why."""
    if user not in privileged_users:
        raise ExportError(
            f"user {user!r} may not export unmasked contact details: add them to activation.exports.privileged_users"
        )
    if not purpose or not purpose.strip():
        raise ExportError("a privileged export needs --purpose (recorded in the audit table)")


def build_export_rows(
    rows: DataFrame,
    consent: DataFrame,
    channel: str,
    fields: Sequence[str],
    privileged: bool,
    require_opt_in: Sequence[str] = (),
) -> DataFrame:
    """List rows (with customer_id, mobile, email and every requested field) -> the export:
    only customers contactable and reachable on `channel`, only `fields`, personal fields
    masked unless `privileged`."""
    missing = [f for f in fields if f not in rows.columns]
    if missing:
        raise ExportError(f"fields not available for this list: {missing}")
    allowed = with_contactable(rows, consent, channel, require_opt_in).filter(F.col("contactable") & build_reachable(channel))
    columns = []
    for name in fields:
        column = F.col(name)
        if name in PERSONAL_FIELDS and not privileged:
            column = MASKERS[PERSONAL_FIELDS[name]](column.cast("string"))
        elif isinstance(rows.schema[name].dataType, ArrayType):
            column = F.concat_ws("; ", column)
        if name in PERSONAL_FIELDS or isinstance(rows.schema[name].dataType, (ArrayType, StringType)):
            column = neutralise_cell(column)
        columns.append(column.alias(name))
    return allowed.select(*columns)


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA_START = "^[=+\\-@\t\r]"


def neutralise_cell(column: Column) -> Column:
    """A text cell safe for a spreadsheet: NUL bytes removed, and a leading `=`, `+`, `-`,
    `@`, tab or carriage return quoted with an apostrophe so it is shown, never run."""
    text = F.regexp_replace(column.cast("string"), "\\x00", "")
    return F.when(text.rlike(_FORMULA_START), F.concat(F.lit("'"), text)).otherwise(text)


def write_export_file(spark: SparkSession, df: DataFrame, destination: str, fmt: str, order_by: Sequence[str] = ()) -> int:
    """Write `df` as one CSV (UTF-8, header), Parquet or Excel (.xlsx) file at `destination`,
    sorted by `order_by`, on any Hadoop file system. Refuses to replace an existing file.
    Returns the rows written."""
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r}: one of {', '.join(EXPORT_FORMATS)}")
    try:
        return write_one_file(spark, df, destination, fmt, order_by=order_by, writer=_write_xlsx if fmt == "xlsx" else None)
    except OutputError as exc:
        raise ExportError(str(exc)) from exc


def _write_xlsx(df: DataFrame, fs: Any, jvm: Any, staging: Any) -> tuple[int, Any]:
    """Stream the rows (one partition at a time, never the whole list at once) into an
    Excel workbook; every text cell is written as text, never as a formula."""
    import tempfile

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("list")
    sheet.append(df.columns)
    rows = 0
    for record in df.toLocalIterator():
        cells = []
        for value in record:
            cell = WriteOnlyCell(sheet, value=value)
            if isinstance(value, str):
                cell.data_type = "s"
            cells.append(cell)
        sheet.append(cells)
        rows += 1
    with tempfile.TemporaryDirectory() as folder:
        local = f"{folder}/list.xlsx"
        book.save(local)
        fs.mkdirs(staging)
        written = jvm.org.apache.hadoop.fs.Path(staging, "list.xlsx")
        fs.copyFromLocalFile(False, True, jvm.org.apache.hadoop.fs.Path(f"file://{local}"), written)
    return rows, written


def build_audit_row(spark: SparkSession, request: ExportRequest, rows: int, exported_at: dt.datetime) -> DataFrame:
    """The audit record of one export (no personal values). Grain: export_id."""
    key = "|".join([request.user, exported_at.isoformat(), request.list_kind, request.list_name, request.list_version, request.destination])
    record = {
        "export_id": hashlib.sha256(key.encode("utf-8")).hexdigest()[:32],
        "exported_at": exported_at,
        "user": request.user,
        "list_kind": request.list_kind,
        "list_name": request.list_name,
        "list_version": request.list_version,
        "as_of_date": request.as_of,
        "channel": request.channel,
        "format": request.format,
        "destination": request.destination,
        "rows": rows,
        "fields": list(request.fields),
        "masked": not request.privileged,
        "privileged": request.privileged,
        "purpose": request.purpose,
    }
    schema = (
        "export_id string, exported_at timestamp, user string, list_kind string, list_name string, list_version string, "
        "as_of_date date, channel string, format string, destination string, rows bigint, fields array<string>, "
        "masked boolean, privileged boolean, purpose string"
    )
    return spark.createDataFrame([tuple(record[c] for c in AUDIT_COLUMNS)], schema)
