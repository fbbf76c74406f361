"""Masking of personal data for anything that leaves the lake: terminal views, exports.

Each builder keeps just enough to recognise a value without disclosing it:
mobile 13812348000 -> 138****8000, resident ID -> first 3 and last 4 characters,
name 王小明 -> 王**, e-mail -> first letter and domain, address -> its first 6 characters.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

__all__ = ["MASKERS", "build_masked_address", "build_masked_email", "build_masked_id", "build_masked_mobile", "build_masked_name"]


def _keep(value: Column, head: int, tail: int) -> Column:
    length = F.length(value)
    hidden = F.greatest(length - F.lit(head + tail), F.lit(0))
    masked = F.concat(F.substring(value, 1, head), F.repeat(F.lit("*"), hidden))
    if tail:
        masked = F.concat(masked, F.when(length > head + tail, F.substring(value, -tail, tail)).otherwise(F.lit("")))
    # Too short to keep head and tail hidden apart: show only the first character.
    short = F.concat(F.substring(value, 1, 1), F.repeat(F.lit("*"), F.greatest(length - 1, F.lit(0))))
    return F.when(value.isNotNull(), F.when(length > head + tail, masked).otherwise(short) if tail else masked)


def build_masked_mobile(value: Column) -> Column:
    """138****8000."""
    return _keep(value, 3, 4)


def build_masked_id(value: Column) -> Column:
    """110***********1234 (resident ID) or the same pattern for any ID."""
    return _keep(value, 3, 4)


def build_masked_name(value: Column) -> Column:
    """First character, then one * per remaining character: 王** / W*******."""
    return _keep(value, 1, 0)


def build_masked_email(value: Column) -> Column:
    """w***@example.com."""
    local, domain = F.substring_index(value, "@", 1), F.substring_index(value, "@", -1)
    return F.when(value.contains("@"), F.concat(F.substring(local, 1, 1), F.lit("***@"), domain)).otherwise(_keep(value, 1, 0))


def build_masked_address(value: Column) -> Column:
    """The first 6 characters (province, city) and no more."""
    return F.when(value.isNotNull(), F.concat(F.substring(value, 1, 6), F.lit("…")))


MASKERS = {
    "name": build_masked_name,
    "mobile": build_masked_mobile,
    "id_number": build_masked_id,
    "email": build_masked_email,
    "address": build_masked_address,
}
