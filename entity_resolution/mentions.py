"""Person mentions: one row per person named in a source record, ready for linkage.

The buyer of a sales order, the prospect of a lead, the owner and (separately) the contact
of a repair order, the customer on a warranty claim, the caller of a complaint and the
respondent of a survey. Identity columns come standardised from silver; only values that
passed their checks are kept for matching (an invalid mobile or ID is no evidence); an ID
that fails its check digit is kept aside in `id_unchecked` for the golden profile.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

__all__ = ["MENTION_COLUMNS", "MentionSource", "MENTION_SOURCES", "build_person_mentions", "with_name_parts"]


@dataclass(frozen=True)
class MentionSource:
    """Where a role's identity fields sit in a silver feed."""

    feed: str
    role: str
    name: str
    seen_at: str
    mobile: str | None = None
    mobile_alt: str | None = None
    vin: str | None = "vin"
    id_number: bool = False
    details: bool = False  # sales orders carry birth date, gender, email, address, province, city
    # A column naming another record about the same person: (column, its feed, the role there).
    refers_to: tuple[str, str, str] | None = None


MENTION_SOURCES = (
    MentionSource(
        "sales_orders", "buyer", "customer_name", "order_date", "mobile", "phone_alt", id_number=True, details=True,
        refers_to=("lead_id", "leads", "prospect"),
    ),
    MentionSource("leads", "prospect", "name", "created_at", "mobile", vin=None),
    MentionSource("service_orders", "owner", "owner_name", "opened_at"),
    MentionSource("service_orders", "contact", "contact_name", "opened_at", "contact_mobile"),
    MentionSource("warranty_claims", "customer", "customer_name", "claim_date", "customer_mobile", refers_to=("ro_id", "service_orders", "owner")),
    MentionSource("complaints", "caller", "caller_name", "received_at", "caller_mobile"),
    MentionSource("surveys", "respondent", "respondent_name", "surveyed_at", "mobile"),
)

MENTION_COLUMNS = (
    "mention_id", "feed", "record_id", "role", "dealer_code", "seen_at", "customer_type",
    "name_simplified", "name_pinyin", "name_key", "surname_pinyin", "mobile", "mobile_alt",
    "id_number", "id_unchecked", "birth_date", "gender", "email", "address", "province", "city", "vin", "refers_to",
)

# Forms of address written after a name: Mr, Ms, Miss, Mrs.
_SUFFIXES = "先生|女士|小姐|太太"
_COMPOUND_SURNAMES = "欧阳|司马|诸葛|上官|东方|皇甫|夏侯|尉迟|公孙|慕容|长孙|宇文|司徒|令狐|端木|南宫|西门|独孤"
# Only a surname and the form of address (王先生, 欧阳女士): the given name was never noted.
_SURNAME_ONLY = rf"^(.|{_COMPOUND_SURNAMES})({_SUFFIXES})$"
# A full name with the form of address after it (高秀强先生, 王伟女士): the suffix goes.
_SUFFIXED = rf"^.{{2,}}({_SUFFIXES})$"
_COMPANY = r"(公司|集团|中心|厂|店|院|局)$"


def _valid(column: str, flag: str) -> Column:
    return F.when(F.col(flag), F.col(column))


def with_name_parts(df: DataFrame) -> DataFrame:
    """From `name_simplified` / `name_pinyin`: add `surname_pinyin` (first syllable) and
    `name_key` (pinyin without spaces). A name that is only a surname and a form of address
    (王先生, 欧阳女士) keeps its surname but no full name; a full name followed by one
    (高秀强先生) loses the suffix (its two characters and two syllables)."""
    simplified = F.col("name_simplified")
    surname_only = F.coalesce(simplified.rlike(_SURNAME_ONLY), F.lit(False))
    suffixed = F.coalesce(simplified.rlike(_SUFFIXED), F.lit(False)) & ~surname_only
    syllables = F.split(F.col("name_pinyin"), " ")
    pinyin = F.when(suffixed, F.array_join(F.slice(syllables, 1, F.size(syllables) - 2), " ")).otherwise(F.col("name_pinyin"))
    return (
        df.withColumn("surname_pinyin", syllables.getItem(0))
        .withColumn("name_pinyin", F.when(~surname_only, pinyin))
        .withColumn("name_simplified", F.when(surname_only, None).when(suffixed, F.expr("substring(name_simplified, 1, length(name_simplified) - 2)"))
                    .otherwise(simplified))
        .withColumn("name_key", F.regexp_replace(F.col("name_pinyin"), " ", ""))
    )


def _reference(column: str, feed: str, role: str) -> Column:
    """The mention id of the record `column` names (a claim's repair order, an order's lead)."""
    value = F.trim(F.col(column))
    return F.when(value != "", F.concat(F.lit(f"{feed}:"), value, F.lit(f":{role}")))


def _mentions_of(silver: DataFrame, source: MentionSource) -> DataFrame:
    name = source.name
    columns: dict[str, Column] = {
        "feed": F.lit(source.feed),
        "record_id": F.col("record_id"),
        "role": F.lit(source.role),
        "dealer_code": F.col("dealer_code"),
        "seen_at": F.col(source.seen_at).cast("timestamp"),
        "customer_type": F.col("customer_type") if source.details else F.when(
            F.col(f"{name}_simplified").rlike(_COMPANY), F.lit("company")
        ),
        "name_simplified": F.col(f"{name}_simplified"),
        "name_pinyin": F.col(f"{name}_pinyin"),
        "mobile": _valid(source.mobile, f"{source.mobile}_valid") if source.mobile else F.lit(None).cast("string"),
        "mobile_alt": _valid(source.mobile_alt, f"{source.mobile_alt}_valid") if source.mobile_alt else F.lit(None).cast("string"),
        "id_number": _valid("id_number", "id_valid") if source.id_number else F.lit(None).cast("string"),
        # Kept apart: no evidence for matching, but the golden profile may still show it.
        "id_unchecked": F.when(~F.col("id_valid"), F.col("id_number")) if source.id_number else F.lit(None).cast("string"),
        "birth_date": F.coalesce(F.col("id_birth_date"), F.col("birth_date")) if source.details else F.lit(None).cast("date"),
        "gender": F.coalesce(F.col("id_gender"), F.col("gender")) if source.details else F.lit(None).cast("string"),
        "email": F.col("email") if source.details else F.lit(None).cast("string"),
        "address": F.col("address") if source.details else F.lit(None).cast("string"),
        "province": F.col("province") if source.details else F.lit(None).cast("string"),
        "city": F.col("city") if source.details else F.lit(None).cast("string"),
        "vin": _valid("vin", "vin_valid") if source.vin else F.lit(None).cast("string"),
        "refers_to": _reference(*source.refers_to) if source.refers_to else F.lit(None).cast("string"),
    }
    return silver.select(*[c.alias(k) for k, c in columns.items()])


def build_person_mentions(silver: dict[str, DataFrame]) -> DataFrame:
    """One row per person mention across the silver feeds given (missing feeds are skipped).

    Grain: (feed, record_id, role); `mention_id` is `feed:record_id:role`. Every mention is
    kept, even one with no usable identity field: it then becomes a customer of its own.
    """
    parts = [_mentions_of(silver[s.feed], s) for s in MENTION_SOURCES if s.feed in silver]
    if not parts:
        raise ValueError("no silver feeds to build person mentions from")
    mentions = parts[0]
    for part in parts[1:]:
        mentions = mentions.unionByName(part)
    return (
        mentions.transform(with_name_parts)
        .withColumn("mention_id", F.concat_ws(":", "feed", "record_id", "role"))
        .select(*MENTION_COLUMNS)
    )
