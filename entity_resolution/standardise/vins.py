"""Vehicle identification numbers (ISO 3779 / GB 16735): 17 characters, check digit at 9."""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

__all__ = ["build_vin", "build_vin_valid", "with_standardised_vin"]

_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
_VALUES = "12345678123457923456789"
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)


def build_vin(raw: Column) -> Column:
    """Upper-case VIN without spaces or dashes; null when empty."""
    cleaned = F.upper(F.regexp_replace(raw, r"[\s\-]", ""))
    return F.when(F.length(cleaned) > 0, cleaned)


def build_vin_valid(vin: Column) -> Column:
    """True for 17 allowed characters (no I, O, Q) whose weighted sum mod 11 matches position 9."""
    digits = F.translate(vin, _LETTERS, _VALUES)
    total = reduce(
        lambda acc, item: acc + F.substring(digits, item[0] + 1, 1).cast("int") * item[1],
        enumerate(_WEIGHTS),
        F.lit(0),
    )
    remainder = (total % 11).cast("int")
    expected = F.when(remainder == 10, "X").otherwise(remainder.cast("string"))
    return F.coalesce(vin.rlike(r"^[A-HJ-NPR-Z0-9]{17}$") & (F.substring(vin, 9, 1) == expected), F.lit(False))


def with_standardised_vin(df: DataFrame, source: str = "vin") -> DataFrame:
    """Clean `source` in place and add `<source>_valid`. Grain unchanged."""
    return df.withColumn(source, build_vin(F.col(source))).withColumn(
        f"{source}_valid", build_vin_valid(F.col(source))
    )
