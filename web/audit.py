"""A reveal of a customer's full details, recorded in gold/export_audit without Spark: the
same columns as an export's audit row, with `list_kind = 'reveal'`, the customer ID as the
list's name, the signed-in user and the stated purpose. Never a personal value."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import pyarrow as pa

from cdp import catalog
from cdp.reader import LakeReader

__all__ = ["AUDIT_SCHEMA", "record_reveal"]

AUDIT_SCHEMA = pa.schema([
    ("export_id", pa.string()), ("exported_at", pa.timestamp("us", tz="UTC")), ("user", pa.string()), ("list_kind", pa.string()),
    ("list_name", pa.string()), ("list_version", pa.string()), ("as_of_date", pa.date32()), ("channel", pa.string()),
    ("format", pa.string()), ("destination", pa.string()), ("rows", pa.int64()), ("fields", pa.list_(pa.string())),
    ("masked", pa.bool_()), ("privileged", pa.bool_()), ("purpose", pa.string()),
])
REVEALED_FIELDS = ("name", "mobile", "mobiles", "id_number", "birth_date", "email", "address", "vin")


def record_reveal(reader: LakeReader, user: str, customer_id: str, purpose: str, now: dt.datetime | None = None) -> str:
    """Append the audit row of one reveal; returns its export_id."""
    from deltalake import write_deltalake

    at = now or dt.datetime.now(dt.UTC)
    export_id = hashlib.sha256(f"{user}|{at.isoformat()}|reveal|{customer_id}|{secrets.token_hex(8)}".encode()).hexdigest()[:32]
    row = {
        "export_id": [export_id], "exported_at": [at], "user": [user], "list_kind": ["reveal"], "list_name": [customer_id],
        "list_version": ["-"], "as_of_date": [at.date()], "channel": [""], "format": ["screen"], "destination": ["web"],
        "rows": [1], "fields": [list(REVEALED_FIELDS)], "masked": [False], "privileged": [True], "purpose": [purpose],
    }
    path = reader.path(catalog.EXPORT_AUDIT)
    table = pa.table(row, schema=AUDIT_SCHEMA)
    if reader.exists(catalog.EXPORT_AUDIT):
        write_deltalake(path, table, mode="append")
    else:
        # A new table keeps no statistics, like every table the platform creates without a list.
        write_deltalake(path, table, mode="append", configuration={"delta.dataSkippingNumIndexedCols": "0"})
    return export_id
