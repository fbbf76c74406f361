"""`cdp privacy`: erase a person from every table, vacuum Delta history, read the audit trails.

    cdp privacy erase --mobile 13800138000 | --customer CU... [--dry-run] [--vacuum] [--force]
    cdp privacy vacuum [--retention-hours H]
    cdp privacy audit [--erasures]

An erasure is widened to every resolved customer holding the mobile (or the customer's whole
cluster), removes their rows from bronze, silver, quarantine and every gold table (features,
segments, audiences, win-back, reminders), clears the lake's work folders, and logs itself
with a keyed token instead of the identifier (`activation.privacy.token_key_env`). The old
file versions stay in Delta history until VACUUM (`--vacuum`, or `cdp privacy vacuum`)
removes them after `activation.privacy.vacuum_retention_hours`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import hashlib
import logging
import os
import sys
from collections.abc import Callable
from functools import reduce

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from activation.erasure import CUSTOMER_TABLES, ERASURE_LOG_SCHEMA, SECONDARY_COLUMNS, ErasureError, ErasurePlan, subject_token
from cdp.config import FEED_NAMES, AppConfig
from cdp.contract import CONTRACTS
from cdp.lake import Lake, merge_into, read_table, remove_path, table_exists
from entity_resolution.standardise.mobiles import build_mobile
from jobs.activation_common import lake_of

__all__ = ["erase", "main", "plan_erasure", "vacuum_lake"]

log = logging.getLogger(__name__)

_LAYERS = ("bronze", "silver", "quarantine", "gold", "_ops")


def _digits(mobile: str) -> str:
    digits = "".join(ch for ch in mobile if ch.isdigit())
    if len(digits) == 13 and digits.startswith("86"):
        return digits[2:]
    if len(digits) == 15 and digits.startswith("0086"):
        return digits[4:]
    return digits


def plan_erasure(spark: SparkSession, lake: Lake, *, mobile: str | None = None, customer_id: str | None = None) -> ErasurePlan:
    """Gather the person's customers, mentions, records and identifiers."""
    gold = {n: lake.table("gold", n) for n in ("person_mentions", "customer_xref", "customers")}
    if not all(table_exists(spark, p) for p in gold.values()):
        raise ErasureError("no resolved customers in the lake: run `cdp run resolve` first")
    mentions = read_table(spark, gold["person_mentions"]).join(
        read_table(spark, gold["customer_xref"]).select("mention_id", "customer_id", F.col("role").alias("xref_role"), "mention_role"),
        "mention_id",
    )
    if mobile:
        number = _digits(mobile)
        by_mention = mentions.filter((F.col("mobile") == number) | (F.col("mobile_alt") == number)).select("customer_id")
        by_profile = read_table(spark, gold["customers"]).filter(F.array_contains("mobiles", number)).select("customer_id")
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
    plan.mobiles = sorted({m for r in theirs for m in (r["mobile"], r["mobile_alt"]) if m} | ({_digits(mobile)} if mobile else set()))
    plan.id_numbers = sorted({i for r in theirs for i in (r["id_number"], r["id_unchecked"]) if i})
    return plan


# Deletes go through MERGE against a table of the values: a DELETE's predicate, values
# included, is written into the Delta commit log, which VACUUM never cleans.
Test = Callable[[Column], Column]


def _equals(*columns: str) -> Test:
    def test(value: Column) -> Column:
        return reduce(lambda a, b: a | b, [F.col(f"t.{c}") == value for c in columns])

    return test


def _contains(column: str) -> Test:
    return lambda value: F.instr(F.col(f"t.{column}"), value) > 0


def _matches(spark: SparkSession, path: str, values: list[str], test: Test) -> tuple[int, DataFrame | None]:
    if not values or not table_exists(spark, path):
        return 0, None
    source = spark.createDataFrame([(v,) for v in sorted(set(values))], "value string").alias("s")
    n = read_table(spark, path).alias("t").join(source, test(F.col("s.value")), "left_semi").count()
    return n, source


def _remove(spark: SparkSession, path: str, values: list[str], test: Test, counts: dict[str, int], label: str) -> None:
    n, source = _matches(spark, path, values, test)
    if n and source is not None:
        DeltaTable.forPath(spark, path).alias("t").merge(source, test(F.col("s.value"))).whenMatchedDelete().execute()
        counts[label] = counts.get(label, 0) + n


def _blank(
    spark: SparkSession, path: str, values: list[str], test: Test, columns: tuple[str, ...], counts: dict[str, int], label: str
) -> None:
    n, source = _matches(spark, path, values, test)
    if not n or source is None:
        return
    types = dict(read_table(spark, path).dtypes)
    blanks = {c: F.lit(None).cast(types[c]) for c in columns if c in types}
    if blanks:
        DeltaTable.forPath(spark, path).alias("t").merge(source, test(F.col("s.value"))).whenMatchedUpdate(set=blanks).execute()
        counts[label] = counts.get(label, 0) + n


def _erase_feed(spark: SparkSession, lake: Lake, feed: str, plan: ErasurePlan, counts: dict[str, int]) -> None:
    contract = CONTRACTS[feed]
    owned = plan.owned_records.get(feed, [])
    if feed == "contact_preferences":
        _remove(spark, lake.silver(feed), plan.identifiers, _equals("mobile", "id_number"), counts, f"silver.{feed}")

        def raw(value: Column) -> Column:
            return (build_mobile(F.col("t.mobile")) == value) | (F.upper(F.trim(F.col("t.id_number"))) == value)

        _remove(spark, lake.bronze(feed), plan.identifiers, raw, counts, f"bronze.{feed}")
    else:
        key = contract.keys[0]

        def raw_key(value: Column) -> Column:
            return F.trim(F.col(f"t.{key}")) == value

        _remove(spark, lake.silver(feed), owned, _equals("record_id"), counts, f"silver.{feed}")
        _remove(spark, lake.bronze(feed), owned, raw_key, counts, f"bronze.{feed}")
        for (secondary_feed, role), records in plan.secondary_records.items():
            if secondary_feed != feed:
                continue
            columns = SECONDARY_COLUMNS.get((secondary_feed, role), ())
            _blank(spark, lake.silver(feed), records, _equals("record_id"), columns, counts, f"silver.{feed}")
            _blank(spark, lake.bronze(feed), records, raw_key, (*columns, "_raw_record"), counts, f"bronze.{feed}")
    _remove(spark, lake.quarantine(feed), plan.identifiers + owned, _contains("_raw_record"), counts, f"quarantine.{feed}")


def erase(spark: SparkSession, config: AppConfig, plan: ErasurePlan, subject_kind: str, token: str, requested_by: str) -> dict[str, int]:
    """Remove the planned person from every table and log the erasure. Returns rows removed
    (or blanked) per table. Safe to run again: a second run finds nothing left."""
    lake = lake_of(config)
    counts: dict[str, int] = {}
    for feed in FEED_NAMES:
        _erase_feed(spark, lake, feed, plan, counts)
    ids, mentions = plan.customer_ids, plan.mention_ids
    gold = lake.table
    _remove(spark, gold("gold", "person_mentions"), mentions, _equals("mention_id"), counts, "gold.person_mentions")
    _remove(spark, gold("gold", "match_pairs"), mentions, _equals("mention_id_l", "mention_id_r"), counts, "gold.match_pairs")
    review = "gold.resolution_review"
    _remove(spark, gold("gold", "resolution_review"), mentions, _equals("mention_id_l", "mention_id_r"), counts, review)
    _remove(spark, gold("gold", "resolution_review"), ids, _equals("customer_id_l", "customer_id_r"), counts, review)
    history = _equals("customer_id", "related_customer_id")
    _remove(spark, gold("gold", "customer_id_history"), ids, history, counts, "gold.customer_id_history")
    for name in CUSTOMER_TABLES:
        _remove(spark, gold("gold", name), ids, _equals("customer_id"), counts, f"gold.{name}")
    # Scratch folders may hold copies of mentions and features: a re-run rebuilds them.
    for scratch in ("_work", "_staging"):
        remove_path(spark, lake.layer(scratch))
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    record = (
        hashlib.sha256(f"{token}|{now.isoformat()}".encode()).hexdigest()[:32], now, requested_by, subject_kind, token, len(ids), counts,
        config.activation.privacy.vacuum_retention_hours,
    )
    merge_into(spark, spark.createDataFrame([record], ERASURE_LOG_SCHEMA), lake.ops("erasure_log"), ["erasure_id"])
    log.info("erased %d customer(s): %d rows across %d tables", len(ids), sum(counts.values()), len(counts))
    return counts


def _delta_tables(spark: SparkSession, lake: Lake) -> list[str]:
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    conf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    found = []
    for layer in _LAYERS:
        folder = jvm.org.apache.hadoop.fs.Path(lake.layer(layer))
        fs = folder.getFileSystem(conf)
        if not fs.exists(folder):
            continue
        for status in fs.listStatus(folder):
            path = status.getPath().toString()
            if status.isDirectory() and table_exists(spark, path):
                found.append(path)
    return sorted(found)


def vacuum_lake(spark: SparkSession, lake: Lake, retention_hours: int, tables: list[str] | None = None) -> list[str]:
    """Remove files that Delta commits dropped more than `retention_hours` ago from `tables`
    (default: every Delta table of the lake). LITE mode reads the removals from the Delta
    log instead of listing storage; a table whose log cannot tell falls back to a full VACUUM."""
    check = "spark.databricks.delta.retentionDurationCheck.enabled"
    previous = spark.conf.get(check, "true")
    # Below Delta's 7-day safety default only on purpose: the configured retention says so.
    spark.conf.set(check, "false" if retention_hours < 168 else previous)
    try:
        tables = _delta_tables(spark, lake) if tables is None else [t for t in tables if table_exists(spark, t)]
        for path in tables:
            try:
                spark.sql(f"VACUUM delta.`{path}` LITE RETAIN {int(retention_hours)} HOURS")
            except Exception as exc:  # noqa: BLE001 - Delta raises a generic error when LITE cannot run
                log.warning("VACUUM LITE not possible on %s (%s); running a full VACUUM", path, type(exc).__name__)
                DeltaTable.forPath(spark, path).vacuum(float(retention_hours))
    finally:
        spark.conf.set(check, previous)
    return tables


def _token_key(config: AppConfig) -> str:
    name = config.activation.privacy.token_key_env
    key = os.environ.get(name)
    if not key:
        raise ErasureError(f"set {name}: the key for erasure tokens, kept outside the lake")
    return key


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from jobs.common import add_common_options, config_from_args, spark_overrides

    parser = argparse.ArgumentParser(prog="cdp privacy", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    erase_cmd = commands.add_parser("erase", help="remove a person from every table")
    who = erase_cmd.add_mutually_exclusive_group(required=True)
    who.add_argument("--mobile")
    who.add_argument("--customer")
    erase_cmd.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    erase_cmd.add_argument("--vacuum", action="store_true", help="vacuum the lake afterwards (after the retention period)")
    erase_cmd.add_argument("--force", action="store_true", help="allow a mobile that more than 3 customers share")
    erase_cmd.add_argument("--user", default=os.environ.get("CDP_USER") or getpass.getuser())
    vacuum_cmd = commands.add_parser("vacuum", help="remove old file versions from every table")
    vacuum_cmd.add_argument("--retention-hours", type=int, help="default activation.privacy.vacuum_retention_hours")
    audit = commands.add_parser("audit", help="exports (default) or erasures")
    audit.add_argument("--erasures", action="store_true")
    for sub in (erase_cmd, vacuum_cmd, audit):
        add_common_options(sub)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    lake = lake_of(config)
    try:
        if args.command == "erase":
            key = _token_key(config)
            plan = plan_erasure(spark, lake, mobile=args.mobile, customer_id=args.customer)
            if not plan.customer_ids and not plan.mobiles:
                raise ErasureError("no customer holds that identifier")
            print(f"{len(plan.customer_ids)} customer(s), {len(plan.mention_ids)} mention(s), "
                  f"{sum(map(len, plan.owned_records.values()))} owned record(s)")
            if len(plan.customer_ids) > 3 and not args.force:
                raise ErasureError(f"{len(plan.customer_ids)} customers share that mobile (a dealer's number?): check, then --force")
            if args.dry_run:
                return 0
            kind, value = ("mobile", _digits(args.mobile)) if args.mobile else ("customer", args.customer)
            counts = erase(spark, config, plan, kind, subject_token(key, kind, value), args.user)
            for table, n in sorted(counts.items()):
                print(f"  {table:<34} {n:>6}")
            if args.vacuum:
                hours = config.activation.privacy.vacuum_retention_hours
                touched = [lake.table(*label.split(".", 1)) for label in counts]
                print(f"vacuumed {len(vacuum_lake(spark, lake, hours, touched))} tables (retention {hours} h)")
        elif args.command == "vacuum":
            hours = config.activation.privacy.vacuum_retention_hours if args.retention_hours is None else args.retention_hours
            print(f"vacuumed {len(vacuum_lake(spark, lake, hours))} tables (retention {hours} h)")
        else:
            name = "erasure_log" if args.erasures else "export_audit"
            path = lake.ops(name) if args.erasures else lake.table("gold", name)
            if not table_exists(spark, path):
                print(f"no {name.replace('_', ' ')} yet")
                return 0
            order = "requested_at" if args.erasures else "exported_at"
            for row in read_table(spark, path).orderBy(F.desc(order)).limit(50).collect():
                print(row.asDict())
    except ErasureError as exc:
        print(f"cdp privacy: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
