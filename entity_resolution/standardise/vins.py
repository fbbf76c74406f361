"""Vehicle identification numbers (ISO 3779 / GB 16735): 17 characters, check digit at 9."""

from __future__ import annotations

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
    """True for 17 allowed characters (no I, O, Q) whose weighted sum mod 11 matches position 9.
    The characters are transliterated once and weighted as an array (`zip_with`)."""
    digits = F.split(F.translate(vin, _LETTERS, _VALUES), "")
    weighted = F.zip_with(digits, F.array(*[F.lit(w) for w in _WEIGHTS]), lambda digit, weight: digit.cast("int") * weight)
    total = F.aggregate(weighted, F.lit(0), lambda acc, value: acc + value)
    expected = F.substring(F.lit("0123456789X"), (total % 11).cast("int") + 1, F.lit(1))
    return F.coalesce(vin.rlike(r"^[A-HJ-NPR-Z0-9]{17}$") & (F.substring(vin, 9, 1) == expected), F.lit(False))


def with_standardised_vin(df: DataFrame, source: str = "vin") -> DataFrame:
    """Clean `source` in place and add `<source>_valid`. Grain unchanged."""
    return df.withColumn(source, build_vin(F.col(source))).withColumn(
        f"{source}_valid", build_vin_valid(F.col(source))
    )
