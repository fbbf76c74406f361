"""Mainland resident ID numbers (居民身份证, GB 11643) and company USCCs.

Checked with Spark functions: 17 digits weighted mod 11 give the check character; a valid
ID also yields the birth date (digits 7-14) and gender (17th digit: odd male, even female).
Old 15-digit IDs (issued until 2004) are converted to 18 characters.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

__all__ = ["build_id_number", "build_resident_id_valid", "build_uscc_valid", "with_standardised_resident_id"]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
# Registration authority (1-9, A, N, Y), entity type (1, 2, 3, 9), region, organisation code, check.
_USCC = r"^[1-9ANY][1239][0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def build_id_number(raw: Column) -> Column:
    """Upper-case ID with spaces and dashes removed; null when empty. A first-generation
    15-digit resident ID (born 19YY, no check character) whose birth date is a real date is
    converted to its 18-character form, so both forms of one person's ID are one value."""
    cleaned = F.upper(F.regexp_replace(F.trim(raw), r"[\s\-]", ""))
    body = F.concat(F.substring(cleaned, 1, 6), F.lit("19"), F.substring(cleaned, 7, 9))
    old = cleaned.rlike(r"^[0-9]{15}$") & _birth_date(F.concat(body, F.lit("0"))).isNotNull()
    upgraded = F.when(old, F.concat(body, _check_char(body))).otherwise(cleaned)
    return F.when(F.length(cleaned) > 0, upgraded)


def _check_char(id_number: Column) -> Column:
    total = reduce(
        lambda acc, item: acc + F.substring(id_number, item[0] + 1, 1).cast("int") * item[1],
        enumerate(_WEIGHTS),
        F.lit(0),
    )
    return F.substring(F.lit(_CHECK_CHARS), (total % 11).cast("int") + 1, 1)


def _birth_date(id_number: Column) -> Column:
    return F.try_to_date(F.substring(id_number, 7, 8), "yyyyMMdd")


def build_uscc_valid(id_number: Column) -> Column:
    """True for a company Unified Social Credit Code (GB 32100) with the right check character."""
    total = reduce(
        lambda acc, item: acc
        + (F.instr(F.lit(_USCC_ALPHABET), F.substring(id_number, item[0] + 1, 1)) - 1) * item[1],
        enumerate(_USCC_WEIGHTS),
        F.lit(0),
    )
    expected = F.substring(F.lit(_USCC_ALPHABET), ((F.lit(31) - total % 31) % 31).cast("int") + 1, 1)
    return F.coalesce(id_number.rlike(_USCC) & (F.substring(id_number, 18, 1) == expected), F.lit(False))


def build_resident_id_valid(id_number: Column) -> Column:
    """True for an 18-character resident ID whose check character and birth date are right."""
    shaped = id_number.rlike(r"^[0-9]{17}[0-9X]$")
    return F.coalesce(
        shaped & (F.substring(id_number, 18, 1) == _check_char(id_number)) & _birth_date(id_number).isNotNull(),
        F.lit(False),
    )


def with_standardised_resident_id(df: DataFrame, source: str = "id_number") -> DataFrame:
    """Clean `source` in place; add `id_type` (resident_id/uscc/unknown), `id_valid` (check
    character right), and from
    a valid resident ID `id_birth_date` and `id_gender` (M/F). Grain unchanged."""
    cleaned = df.withColumn(source, build_id_number(F.col(source)))
    id_col = F.col(source)
    valid_resident = build_resident_id_valid(id_col)
    valid_uscc = build_uscc_valid(id_col)
    return (
        cleaned.withColumn(
            "id_type",
            F.when(id_col.isNull(), F.lit(None))
            .when(valid_resident, "resident_id")
            .when(valid_uscc, "uscc")
            .when(id_col.rlike(r"^[0-9]{17}[0-9X]$"), "resident_id")
            .otherwise("unknown"),
        )
        .withColumn("id_valid", F.when(id_col.isNotNull(), valid_resident | valid_uscc))
        .withColumn("id_birth_date", F.when(valid_resident, _birth_date(id_col)))
        .withColumn(
            "id_gender",
            F.when(valid_resident, F.when(F.substring(id_col, 17, 1).cast("int") % 2 == 1, "M").otherwise("F")),
        )
    )
