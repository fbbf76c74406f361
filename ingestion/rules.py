"""Row rules: each rule once, as a Spark boolean column that is true when a row breaks it.

Rows that break any rule go to quarantine with every broken rule and a readable reason.
Reasons name the column and the problem; they show the offending value only for columns
that hold no personal data.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdp.config import FeedConfig
from cdp.contract import PII_COLUMNS, FeedContract

__all__ = ["RowRule", "build_row_rules", "parse_timestamp", "with_clean_text", "with_rule_results"]

_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"
_INTEGER = r"^-?[0-9]+(\.0+)?$"
_BOOLEANS = ("true", "false", "1", "0", "y", "n", "yes", "no", "t", "f", "是", "否")


@dataclass(frozen=True)
class RowRule:
    name: str
    broken: Column
    reason: Column


# C0 control characters other than tab and line breaks, and DEL: NUL bytes from a careless
# export, or a form feed pasted from a PDF, never reach silver (bronze keeps the raw value).
_CONTROL = "[\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x7F]"


def with_clean_text(df: DataFrame, columns: list[str]) -> DataFrame:
    """Each of `columns` trimmed, without control characters, null when empty: the values the
    row rules and the typed silver columns read. The pattern is searched once per row, over
    all the columns together, and replaced only in the rare rows that hold a control
    character, not in every value of every row."""
    flag = "__has_control"
    present = [F.col(c) for c in columns]
    flagged = df.withColumn(flag, F.concat_ws("", *present).rlike(_CONTROL) if present else F.lit(False))
    cleaned = {}
    for column in columns:
        value = F.trim(F.when(F.col(flag), F.regexp_replace(F.col(column), _CONTROL, "")).otherwise(F.col(column)))
        cleaned[column] = F.when(F.length(value) > 0, value)
    return flagged.withColumns(cleaned).drop(flag)


def parse_timestamp(value: Column, formats: list[str]) -> Column:
    return F.coalesce(*[F.try_to_timestamp(value, F.lit(fmt)) for fmt in formats])


def _shown(column: str, message: str) -> Column:
    if column in PII_COLUMNS:
        return F.lit(f"{column}: {message}")
    return F.concat(F.lit(f"{column}: {message} (got '"), F.substring(F.col(column), 1, 40), F.lit("')"))


def date_formats(feed: FeedConfig, column: str) -> list[str]:
    return feed.date_formats.get(column, feed.default_date_formats)


def build_row_rules(contract: FeedContract, feed: FeedConfig) -> list[RowRule]:
    """The rules a row of this feed must pass, in reporting order, on the values of
    `with_clean_text`."""
    rules = [RowRule("malformed_row", F.col("_parse_error").isNotNull(), F.col("_parse_error"))]
    for column in contract.required:
        rules.append(RowRule(f"required:{column}", F.col(column).isNull(), F.lit(f"{column}: required value is empty")))
    for column in (*contract.timestamps, *contract.dates):
        formats = date_formats(feed, column)
        broken = F.col(column).isNotNull() & parse_timestamp(F.col(column), formats).isNull()
        rules.append(RowRule(f"date_format:{column}", broken, _shown(column, f"not a date in format {' or '.join(formats)}")))
    for column in contract.decimals:
        broken = F.col(column).isNotNull() & ~F.col(column).rlike(_DECIMAL)
        rules.append(RowRule(f"number_format:{column}", broken, _shown(column, "not a number")))
    for column in contract.integers:
        broken = F.col(column).isNotNull() & ~F.col(column).rlike(_INTEGER)
        rules.append(RowRule(f"number_format:{column}", broken, _shown(column, "not a whole number")))
    for column in contract.non_negative:
        broken = F.coalesce(F.col(column).try_cast("double") < 0, F.lit(False))
        rules.append(RowRule(f"non_negative:{column}", broken, _shown(column, "must not be negative")))
    for column, (low, high) in contract.ranges.items():
        number = F.col(column).try_cast("double")
        broken = F.coalesce((number < low) | (number > high), F.lit(False))
        rules.append(RowRule(f"range:{column}", broken, _shown(column, f"outside {low:g}-{high:g}")))
    for column in contract.booleans:
        broken = F.col(column).isNotNull() & ~F.lower(F.col(column)).isin(*_BOOLEANS)
        rules.append(RowRule(f"boolean:{column}", broken, _shown(column, "not true/false")))
    for column, allowed in contract.enums.items():
        broken = F.col(column).isNotNull() & ~F.lower(F.col(column)).isin(*[a.lower() for a in allowed])
        rules.append(RowRule(f"allowed_values:{column}", broken, _shown(column, f"not one of {', '.join(allowed)}")))
    for column in contract.json_objects:
        parsed = F.from_json(F.col(column), "map<string,string>")
        broken = F.col(column).isNotNull() & parsed.isNull()
        rules.append(RowRule(f"json_object:{column}", broken, _shown(column, "not a JSON object")))
    if contract.name == "contact_preferences":
        broken = F.col("mobile").isNull() & F.col("id_number").isNull()
        rules.append(RowRule("contact_key", broken, F.lit("mobile or id_number is required")))
    return rules


def with_rule_results(df: DataFrame, rules: list[RowRule]) -> DataFrame:
    """Add `_rules` (array of broken rule names, empty when clean), `_rule` (first broken rule,
    null when clean) and `_reason`. A malformed row is reported only as malformed. Each rule is
    tested once per row, into a column of its own that the names and the reasons both read."""
    malformed = F.col("_parse_error").isNotNull()
    flags = [f"__broken_{i}" for i in range(len(rules))]
    flagged = df.withColumns({flag: F.coalesce(r.broken, F.lit(False)) for flag, r in zip(flags, rules)})
    names = F.array(*[F.when(F.col(flag), F.lit(r.name)) for flag, r in zip(flags, rules)])
    reasons = F.array(*[F.when(F.col(flag), r.reason) for flag, r in zip(flags, rules)])
    return (
        flagged.withColumn("_rules", F.when(malformed, F.array(F.lit("malformed_row"))).otherwise(F.filter(names, lambda x: x.isNotNull())))
        .withColumn(
            "_reason",
            F.when(malformed, F.concat(F.lit("line "), F.col("_source_row").cast("string"), F.lit(": "), F.col("_parse_error")))
            .otherwise(F.concat_ws("; ", F.filter(reasons, lambda x: x.isNotNull()))),
        )
        .withColumn("_rule", F.try_element_at(F.col("_rules"), F.lit(1)))
        .withColumn("_reason", F.when(F.col("_rule").isNotNull(), F.col("_reason")))
        .drop(*flags)
    )
