"""Masking of personal data for anything that leaves the lake: terminal views, exports.

Each builder keeps just enough to recognise a value without disclosing it:
mobile 13812348000 -> 138****8000, resident ID -> first 3 and last 4 characters,
name 王小明 -> 王**, e-mail -> first letter and domain, address -> its first 6 characters.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

__all__ = ["MASKERS", "current_user", "mask_text", "build_masked_address", "build_masked_email", "build_masked_id", "build_masked_mobile", "build_masked_name"]


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


def _keep_text(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail and tail:
        return value[:1] + "*" * (len(value) - 1)
    hidden = max(len(value) - head - tail, 0)
    return value[:head] + "*" * hidden + (value[-tail:] if tail and len(value) > head + tail else "")


def mask_text(kind: str, value: object) -> object:
    """The masking of `MASKERS[kind]` applied to one Python value (for JVM-free views)."""
    if value is None or kind not in MASKERS:
        return value
    text = str(value)
    if kind in ("mobile", "id_number"):
        return _keep_text(text, 3, 4)
    if kind == "name":
        return _keep_text(text, 1, 0)
    if kind == "email":
        if "@" in text:
            local, _, domain = text.partition("@")
            return f"{local[:1]}***@{domain.rpartition('@')[2] if '@' in domain else domain}"
        return _keep_text(text, 1, 0)
    return text[:6] + "…"


def current_user() -> str:
    """The operating-system user running this process: who the CLI acts for.

    Read from the process's user id, not from `$USER`/`$LOGNAME`, which a caller can set."""
    import os
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name
