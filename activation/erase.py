"""Erasure of a person from every table of the lake.

An erasure is widened to every resolved customer holding the mobile (or the customer's whole
cluster), removes their rows from bronze, silver, quarantine and every gold table (features,
segments, audiences, win-back, reminders), clears the lake's work folders, and logs itself
with a keyed token instead of the identifier. The old file versions stay in Delta history
until VACUUM (`cdp.vacuum`) removes them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from functools import reduce

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from activation.erasure import CUSTOMER_TABLES, ERASURE_LOG_SCHEMA, SECONDARY_COLUMNS, ErasureError, ErasurePlan
from cdp import catalog, faults
from cdp.config import FEED_NAMES, AppConfig
from cdp.contract import CONTRACTS
from cdp.lake import Lake, read_table, remove_path, require_tables, table_exists
from cdp.records import merge_records
from entity_resolution.standardise.mobiles import build_mobile, standardise_mobile
from entity_resolution.standardise.resident_ids import build_id_number

__all__ = ["erase", "exports_holding", "plan_erasure", "standard_id_number"]

log = logging.getLogger(__name__)


def plan_erasure(
    spark: SparkSession, lake: Lake, *, mobile: str | None = None, id_number: str | None = None, customer_id: str | None = None
) -> ErasurePlan:
    """Gather the person's customers, mentions, records and identifiers, from one mobile, one
    resident ID (either form of an old 15-digit one) or one customer ID."""
    require_tables(spark, lake, catalog.PERSON_MENTIONS, catalog.CUSTOMER_XREF, catalog.CUSTOMERS)
    gold = {t.name: lake.path(t) for t in (catalog.PERSON_MENTIONS, catalog.CUSTOMER_XREF, catalog.CUSTOMERS)}
    mentions = read_table(spark, gold["person_mentions"]).join(
        read_table(spark, gold["customer_xref"]).select("mention_id", "customer_id", F.col("role").alias("xref_role"), "mention_role"),
        "mention_id",
    )
    profiles = read_table(spark, gold["customers"])
    number = standardise_mobile(mobile) if mobile else None
    person_id = standard_id_number(spark, id_number) if id_number else None
    if mobile:
        if number is None:
            raise ErasureError("--mobile holds no digits")
        by_mention = mentions.filter((F.col("mobile") == number) | (F.col("mobile_alt") == number)).select("customer_id")
        by_profile = profiles.filter(F.array_contains("mobiles", number)).select("customer_id")
        customer_ids = sorted({r[0] for r in by_mention.union(by_profile).distinct().collect()})
    elif id_number:
        if not person_id:
            raise ErasureError("--id-number is empty")
        by_mention = mentions.filter((F.col("id_number") == person_id) | (F.col("id_unchecked") == person_id)).select("customer_id")
        by_profile = profiles.filter(F.col("id_number") == person_id).select("customer_id")
        customer_ids = sorted({r[0] for r in by_mention.union(by_profile).distinct().collect()})
    else:
        customer_ids = [customer_id] if mentions.filter(F.col("customer_id") == customer_id).limit(1).count() else []
    theirs = mentions.filter(F.col("customer_id").isin(*customer_ids)).select(
        "mention_id", "feed", "record_id", "xref_role", "mention_role", "mobile", "mobile_alt", "id_number", "id_unchecked"
    ).collect() if customer_ids else []
    plan = ErasurePlan(customer_ids=customer_ids, mention_ids=sorted({r["mention_id"] for r in theirs}))
    for r in theirs:
        if r["xref_role"] == "primary":
            plan.owned_records.setdefault(r["feed"], []).append(r["record_id"])
        else:
            plan.secondary_records.setdefault((r["feed"], r["mention_role"]), []).append(r["record_id"])
    plan.mobiles = sorted({m for r in theirs for m in (r["mobile"], r["mobile_alt"]) if m} | ({number} if mobile and number else set()))
    plan.id_numbers = sorted({i for r in theirs for i in (r["id_number"], r["id_unchecked"]) if i} | ({person_id} if person_id else set()))
    return plan


def standard_id_number(spark: SparkSession, raw: str) -> str | None:
    """The ID as the lake stores it (upper case, no separators, 15 digits as 18)."""
    return spark.range(1).select(build_id_number(F.lit(raw)).alias("id")).first()["id"]  # type: ignore[index]


def exports_holding(spark: SparkSession, lake: Lake, customer_ids: list[str]) -> list[dict[str, object]]:
    """Audit records of exported lists that held any of `customer_ids`: files already handed
    to someone, which no erasure of the lake reaches; they are to be recalled from their
    recipients. Read before erasing (the lists lose the customers)."""
    audit_path, audiences_path = lake.path(catalog.EXPORT_AUDIT), lake.path(catalog.AUDIENCES)
    if not customer_ids or not table_exists(spark, audit_path):
        return []
    wanted = spark.createDataFrame([(c,) for c in customer_ids], "customer_id string")
    held = []
    if table_exists(spark, audiences_path):
        held.append(read_table(spark, audiences_path).join(wanted, "customer_id").select(
            F.lit("audience").alias("list_kind"), F.col("campaign").alias("list_name"), F.col("version").cast("string").alias("list_version"),
            F.lit(None).cast("date").alias("day"),
        ))
    for kind, table in (("winback", catalog.WINBACK), ("reminders", catalog.REMINDERS)):
        if table_exists(spark, lake.path(table)):
            held.append(read_table(spark, lake.path(table)).join(wanted, "customer_id").select(
                F.lit(kind).alias("list_kind"), F.lit(None).cast("string").alias("list_name"), F.lit(None).cast("string").alias("list_version"),
                F.col("as_of_date").alias("day"),
            ))
    if not held:
        return []
    lists = reduce(DataFrame.unionByName, held).distinct()
    audit = read_table(spark, audit_path)
    same_list = (audit["list_kind"] == lists["list_kind"]) & (
        ((lists["list_kind"] == "audience") & (audit["list_name"] == lists["list_name"]) & (audit["list_version"] == lists["list_version"]))
        | ((lists["list_kind"] != "audience") & (audit["as_of_date"] == lists["day"]))
    )
    rows = audit.join(lists, same_list, "left_semi").select("export_id", "exported_at", "user", "list_kind", "list_name", "destination")
    return [r.asDict() for r in rows.orderBy("exported_at", "export_id").collect()]


# Deletes go through MERGE against a table of the values: a DELETE's predicate, values
# included, is written into the Delta commit log, which VACUUM never cleans.
Test = Callable[[Column], Column]


def _equals(*columns: str) -> Test:
    def test(value: Column) -> Column:
        return reduce(lambda a, b: a | b, [F.col(f"t.{c}") == value for c in columns])

    return test


# Values a test looks for in a table: one search, or several combined into one pass.
Search = tuple[list[str], Test]


def _matches(spark: SparkSession, path: str, searches: list[Search]) -> tuple[int, DataFrame, Column] | None:
    """Rows of the table at `path` that any search finds (a test for any of its values), the
    values as a source DataFrame (`kind` numbers the search) and the condition joining the
    two; None when there is nothing to look for, no table or no row found. The DELETE or UPDATE after it
    is a MERGE on that source because Delta writes a command's condition into the commit:
    the MERGE's condition names columns (and search numbers) only, where a DELETE with the
    values as literals would put the identifiers in `_delta_log`."""
    searches = [(sorted(set(values)), test) for values, test in searches if values]
    if not searches or not table_exists(spark, path):
        return None
    rows = [(kind, value) for kind, (values, _) in enumerate(searches) for value in values]
    source = spark.createDataFrame(rows, "kind int, value string").alias("s")
    tests = [test(F.col("s.value")) for _, test in searches]
    condition = tests[0] if len(tests) == 1 else reduce(
        lambda a, b: a | b, [(F.col("s.kind") == kind) & test for kind, test in enumerate(tests)]
    )
    n = read_table(spark, path).alias("t").join(source, condition, "left_semi").count()
    return (n, source, condition) if n else None


def _remove(spark: SparkSession, path: str, searches: list[Search], counts: dict[str, int], label: str) -> None:
    """Delete every row any of `searches` finds, in one commit."""
    found = _matches(spark, path, searches)
    if found is not None:
        n, source, condition = found
        faults.before_commit(path)
        DeltaTable.forPath(spark, path).alias("t").merge(source, condition).whenMatchedDelete().execute()
        counts[label] = counts.get(label, 0) + n


def _blank(
    spark: SparkSession, path: str, values: list[str], test: Test, columns: tuple[str, ...], counts: dict[str, int], label: str
) -> None:
    found = _matches(spark, path, [(values, test)])
    if found is None:
        return
    n, source, condition = found
    types = dict(read_table(spark, path).dtypes)
    blanks = {c: F.lit(None).cast(types[c]) for c in columns if c in types}
    if blanks:
        faults.before_commit(path)
        DeltaTable.forPath(spark, path).alias("t").merge(source, condition).whenMatchedUpdate(set=blanks).execute()
        counts[label] = counts.get(label, 0) + n


def _identifier_columns(feed: str) -> tuple[list[str], list[str]]:
    """(mobile columns, ID number columns) of a feed's contract."""
    columns = CONTRACTS[feed].columns
    return [c for c in columns if "mobile" in c or "phone" in c], [c for c in columns if c == "id_number"]


def _raw_holds(columns: tuple[list[str], list[str]], prefix: str = "t.") -> Test:
    """A raw row (bronze columns, or quarantine's `_raw` struct) holding the identifier in
    one of `columns`, compared after the same cleaning silver applies (`+86 138-0013-8000`
    is 13800138000, a 15-digit ID its 18-character form)."""
    mobiles, ids = columns

    def test(value: Column) -> Column:
        tests = [build_mobile(F.col(f"{prefix}{c}")) == value for c in mobiles]
        tests += [build_id_number(F.col(f"{prefix}{c}")) == value for c in ids]
        return reduce(lambda x, y: x | y, tests) if tests else F.lit(False)

    return test


def _line_holds(value: Column) -> Column:
    """The raw source line holds the identifier, whatever separators were typed inside it."""
    line = F.regexp_replace(F.translate(F.col("t._raw_record"), "０１２３４５６７８９", "0123456789"), r"[\s\-().+]", "")
    return F.coalesce(F.instr(line, value) > 0, F.lit(False))


def _any(*tests: Test) -> Test:
    return lambda value: reduce(lambda x, y: x | y, [test(value) for test in tests])


def _erase_feed(spark: SparkSession, lake: Lake, feed: str, plan: ErasurePlan, needles: list[str], counts: dict[str, int]) -> None:
    """Remove the person's records from the feed's silver, bronze and quarantine tables.

    Every layer is also searched by the identifiers themselves, not only by the records the
    crosswalk gives: a row quarantined for any rule, or loaded after the last resolution,
    still holds the person."""
    contract = CONTRACTS[feed]
    owned = plan.owned_records.get(feed, [])
    mobiles, ids = _identifier_columns(feed)
    secondary = {c for (f, _), cs in SECONDARY_COLUMNS.items() if f == feed for c in cs}
    primary = ([c for c in mobiles if c not in secondary], [c for c in ids if c not in secondary])
    key = contract.keys[0]

    def raw_key(value: Column) -> Column:
        return F.trim(F.col(f"t.{key}")) == value

    silver, bronze = lake.path(catalog.silver(feed)), lake.path(catalog.bronze(feed))
    in_line = _any(_raw_holds(primary), _line_holds)
    # The person's own rows go first, each table in one commit; then what they left in
    # other people's records is blanked.
    if feed == "contact_preferences":
        _remove(spark, silver, [(plan.identifiers, _equals("mobile", "id_number")), (needles, _raw_holds(primary))], counts, f"silver.{feed}")
        _remove(spark, bronze, [(needles, in_line)], counts, f"bronze.{feed}")
    else:
        _remove(spark, silver, [(owned, _equals("record_id")), (needles, _raw_holds(primary))], counts, f"silver.{feed}")
        _remove(spark, bronze, [(owned, raw_key), (needles, in_line)], counts, f"bronze.{feed}")
        for (secondary_feed, role), records in plan.secondary_records.items():
            if secondary_feed != feed:
                continue
            columns = SECONDARY_COLUMNS.get((secondary_feed, role), ())
            _blank(spark, silver, records, _equals("record_id"), columns, counts, f"silver.{feed}")
            _blank(spark, bronze, records, raw_key, (*columns, "_raw_record"), counts, f"bronze.{feed}")
    if secondary:
        columns = tuple(sorted(secondary & set(contract.columns)))
        theirs = ([c for c in mobiles if c in secondary], [c for c in ids if c in secondary])
        derived = tuple(c for cs in SECONDARY_COLUMNS.values() for c in cs if c not in columns)
        _blank(spark, silver, needles, _raw_holds(theirs), (*columns, *derived), counts, f"silver.{feed}")
        _blank(spark, bronze, needles, _raw_holds(theirs), (*columns, "_raw_record"), counts, f"bronze.{feed}")
    quarantined = _any(_raw_holds((mobiles, ids), "t._raw."), _line_holds, lambda v: F.trim(F.col(f"t._raw.{key}")) == v)
    _remove(spark, lake.path(catalog.quarantine(feed)), [(needles + owned, quarantined)], counts, f"quarantine.{feed}")


def _needles(plan: ErasurePlan) -> list[str]:
    """The person's identifiers as silver holds them, plus the old 15-digit form of each
    18-character ID of someone born in the 1900s (a raw line may still carry it)."""
    old = [i[:6] + i[8:17] for i in plan.id_numbers if len(i) == 18 and i[6:8] == "19"]
    return sorted({*plan.identifiers, *old})


def erase(spark: SparkSession, config: AppConfig, plan: ErasurePlan, subject_kind: str, token: str, requested_by: str) -> dict[str, int]:
    """Remove the planned person from every table and log the erasure. Returns rows removed
    (or blanked) per table. Safe to run again: a second run finds nothing left."""
    lake = Lake(config.resolve(config.lake.root))
    counts: dict[str, int] = {}
    needles = _needles(plan)
    for feed in FEED_NAMES:
        _erase_feed(spark, lake, feed, plan, needles, counts)
    ids, mentions = plan.customer_ids, plan.mention_ids
    def gold(table: catalog.TableRef) -> str:
        return lake.path(table)

    _remove(spark, gold(catalog.PERSON_MENTIONS), [(mentions, _equals("mention_id"))], counts, "gold.person_mentions")
    _remove(spark, gold(catalog.MATCH_PAIRS), [(mentions, _equals("mention_id_l", "mention_id_r"))], counts, "gold.match_pairs")
    review = [(mentions, _equals("mention_id_l", "mention_id_r")), (ids, _equals("customer_id_l", "customer_id_r"))]
    _remove(spark, gold(catalog.RESOLUTION_REVIEW), review, counts, "gold.resolution_review")
    history = _equals("customer_id", "related_customer_id")
    _remove(spark, gold(catalog.CUSTOMER_ID_HISTORY), [(ids, history)], counts, "gold.customer_id_history")
    for table in CUSTOMER_TABLES:
        _remove(spark, gold(table), [(ids, _equals("customer_id"))], counts, f"gold.{table.name}")
    # Scratch folders may hold copies of mentions and features: a re-run rebuilds them.
    for scratch in ("_work", "_staging"):
        remove_path(spark, lake.layer(scratch))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    record = (
        hashlib.sha256(f"{token}|{now.isoformat()}".encode()).hexdigest()[:32], now, requested_by, subject_kind, token, len(ids), counts,
        config.activation.privacy.vacuum_retention_hours,
    )
    merge_records(spark, lake.path(catalog.ERASURE_LOG), [record], ERASURE_LOG_SCHEMA, ["erasure_id"])
    log.info("erased %d customer(s): %d rows across %d tables", len(ids), sum(counts.values()), len(counts))
    return counts
