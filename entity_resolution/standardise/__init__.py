"""Standardisers for Chinese dealer identity fields: names, mobiles, resident IDs, VINs.

Pure-Python functions work on plain strings (no JVM); `with_*` / `build_*` functions are the
Spark transforms and Column builders that the ingestion and linkage code uses.
"""

from __future__ import annotations

from entity_resolution.standardise.mobiles import build_mobile, build_mobile_valid, with_standardised_mobile
from entity_resolution.standardise.names import (
    name_pinyin,
    simplify_name,
    standardise_name,
    with_standardised_name,
)
from entity_resolution.standardise.resident_ids import with_standardised_resident_id
from entity_resolution.standardise.vins import build_vin, build_vin_valid, with_standardised_vin

__all__ = [
    "build_mobile",
    "build_mobile_valid",
    "build_vin",
    "build_vin_valid",
    "name_pinyin",
    "simplify_name",
    "standardise_name",
    "with_standardised_mobile",
    "with_standardised_name",
    "with_standardised_resident_id",
    "with_standardised_vin",
]
