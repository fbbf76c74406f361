"""Silver transforms: raw strings -> typed, standardised columns in the canonical contract."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdp.config import FeedConfig
from cdp.contract import FeedContract
from entity_resolution.standardise import (
    with_standardised_mobile,
    with_standardised_name,
    with_standardised_resident_id,
    with_standardised_vin,
)
from ingestion.rules import date_formats, parse_timestamp

__all__ = ["NAME_COLUMNS", "MOBILE_COLUMNS", "with_record_id", "with_standardised_identity", "with_typed_columns"]

NAME_COLUMNS = ("customer_name", "name", "owner_name", "contact_name", "caller_name", "respondent_name")
MOBILE_COLUMNS = ("mobile", "phone_alt", "contact_mobile", "caller_mobile", "customer_mobile")
_TRUE = ("true", "1", "y", "yes", "t", "是")


def with_typed_columns(df: DataFrame, contract: FeedContract, feed: FeedConfig) -> DataFrame:
    """Replace the contract's raw string columns by typed values (null where unparseable).

    Requires the contract's columns as strings cleaned by `rules.with_clean_text`; grain unchanged.
    """
    typed = {}
    for column in contract.columns:
        value = F.col(column)
        if column in contract.timestamps:
            value = parse_timestamp(value, date_formats(feed, column))
        elif column in contract.dates:
            value = F.to_date(parse_timestamp(value, date_formats(feed, column)))
        elif column in contract.decimals:
            value = value.try_cast("decimal(14,2)")
        elif column in contract.integers:
            value = value.try_cast("double").try_cast("int")
        elif column in contract.booleans:
            value = F.when(value.isNotNull(), F.lower(value).isin(*_TRUE))
        elif column in contract.enums:
            value = F.lower(value)
        typed[column] = value
    return df.withColumns(typed)


def with_standardised_identity(df: DataFrame, contract: FeedContract) -> DataFrame:
    """Standardise the identity fields present in the feed: names (simplified + pinyin),
    mobiles (11 digits + validity), resident IDs (validity, birth date, gender), VINs, email."""
    for column in NAME_COLUMNS:
        if column in contract.columns:
            df = df.transform(with_standardised_name, column)
    for column in MOBILE_COLUMNS:
        if column in contract.columns:
            df = df.transform(with_standardised_mobile, column)
    if "id_number" in contract.columns:
        df = df.transform(with_standardised_resident_id, "id_number")
    if "vin" in contract.columns:
        df = df.transform(with_standardised_vin, "vin")
    if "email" in contract.columns:
        df = df.withColumn("email", F.lower(F.col("email")))
    return df


def with_record_id(df: DataFrame, contract: FeedContract) -> DataFrame:
    """Add `record_id`: the key itself, or a SHA-256 of a composite key (never random)."""
    if len(contract.keys) == 1:
        return df.withColumn("record_id", F.col(contract.keys[0]).cast("string"))
    parts = [F.coalesce(F.col(k).cast("string"), F.lit("")) for k in contract.keys]
    return df.withColumn("record_id", F.sha2(F.concat_ws("\u001f", *parts), 256))
