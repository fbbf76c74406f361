"""Erasure of a person (right to deletion): what to remove where, and the token that logs it.

A request names a mobile or a customer ID and is widened to every resolved customer that
holds it, so no record of the person survives under another ID. Records the person owns
(the buyer of an order, the caller of a complaint) are deleted; where the person is only a
secondary party (the contact on someone else's repair order), their fields are blanked and
the record stays for its owner.

The log keeps a keyed HMAC of the identifier, never the identifier: with the key held
outside the lake, a token cannot be reversed by enumerating mobile numbers.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from cdp import catalog
from cdp.errors import UsageError

__all__ = [
    "CUSTOMER_TABLES",
    "ERASURE_LOG_SCHEMA",
    "ErasureError",
    "ErasurePlan",
    "SECONDARY_COLUMNS",
    "subject_token",
]

# Gold tables keyed by customer: every row of an erased customer goes.
CUSTOMER_TABLES = (
    catalog.CUSTOMERS, catalog.CUSTOMER_XREF, catalog.CUSTOMER_VEHICLES, catalog.CUSTOMER_CONSENT, catalog.CUSTOMER_FEATURES,
    catalog.CUSTOMER_SEGMENTS, catalog.AUDIENCES, catalog.WINBACK, catalog.REMINDERS, catalog.VEHICLE_OWNERS, catalog.HOME_DEALERS,
    catalog.COMPLAINT_CASES, catalog.SATISFACTION_CALLBACKS,
)
# Fields of a secondary party, per feed and mention role: silver (raw and standardised) and bronze.
SECONDARY_COLUMNS = {
    ("service_orders", "contact"): (
        "contact_name", "contact_mobile", "contact_name_simplified", "contact_name_pinyin", "contact_mobile_valid",
    ),
}
ERASURE_LOG_SCHEMA = (
    "erasure_id string, requested_at timestamp, requested_by string, subject_kind string, subject_token string, "
    "customers int, rows_removed map<string,bigint>, vacuum_retention_hours int"
)


class ErasureError(UsageError):
    """The request cannot be served: nobody found, or no token key."""


@dataclass
class ErasurePlan:
    """Everything of one person, gathered before anything is removed."""

    customer_ids: list[str]
    mention_ids: list[str]
    owned_records: dict[str, list[str]] = field(default_factory=dict)  # feed -> record_ids the person owns
    secondary_records: dict[tuple[str, str], list[str]] = field(default_factory=dict)  # (feed, role) -> record_ids
    mobiles: list[str] = field(default_factory=list)
    id_numbers: list[str] = field(default_factory=list)

    @property
    def identifiers(self) -> list[str]:
        return sorted({*self.mobiles, *self.id_numbers})


def subject_token(key: str, kind: str, value: str) -> str:
    """HMAC-SHA256 of `kind:value` under `key`."""
    return hmac.new(key.encode("utf-8"), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
