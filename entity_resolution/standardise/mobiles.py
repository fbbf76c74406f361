"""Chinese mobile numbers: `+86 138-0013-8000`, `8613800138000`, `138 0013 8000` -> 13800138000.

Built from Spark functions (no Python UDF): strip everything but digits, drop a 86/0086
country prefix, and call it valid when 11 digits remain starting 13-19.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

__all__ = ["build_mobile", "build_mobile_valid", "standardise_mobile", "with_standardised_mobile"]

_VALID_MOBILE = r"^1[3-9][0-9]{9}$"


def build_mobile(raw: Column) -> Column:
    """Digits of the number with any +86 / 0086 / 86 prefix removed; null when no digits."""
    digits = F.regexp_replace(F.translate(raw, "０１２３４５６７８９", "0123456789"), r"[^0-9]", "")
    without_prefix = (
        F.when(F.length(digits) == 15, F.regexp_replace(digits, r"^0086", ""))
        .when(F.length(digits) == 13, F.regexp_replace(digits, r"^86", ""))
        .otherwise(digits)
    )
    return F.when(F.length(digits) > 0, without_prefix)


def standardise_mobile(raw: str) -> str | None:
    """`build_mobile` for one typed value (a lookup or an erasure request), without Spark."""
    digits = "".join(ch for ch in raw.translate(_FULL_WIDTH) if ch.isascii() and ch.isdigit())
    if len(digits) == 15 and digits.startswith("0086"):
        return digits[4:]
    if len(digits) == 13 and digits.startswith("86"):
        return digits[2:]
    return digits or None


_FULL_WIDTH = str.maketrans("０１２３４５６７８９", "0123456789")


def build_mobile_valid(mobile: Column) -> Column:
    """True when a standardised mobile is a plausible mainland mobile number."""
    return F.coalesce(mobile.rlike(_VALID_MOBILE), F.lit(False))


def with_standardised_mobile(df: DataFrame, source: str, target: str | None = None) -> DataFrame:
    """Replace nothing; add `<target>` (normalised digits) and `<target>_valid` for `source`."""
    target = target or source
    return df.withColumn(target, build_mobile(F.col(source))).withColumn(
        f"{target}_valid", build_mobile_valid(F.col(target))
    )
