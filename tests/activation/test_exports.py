"""Exports: consent at export time, masking, the privileged path and its audit row."""

from __future__ import annotations

import csv
import datetime as dt
import random

import pytest

from activation.consent import build_channel_consent, build_customer_identifiers
from activation.exports import ExportError, ExportRequest, build_audit_row, build_export_rows, validate_privileged, write_export_file

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def population(spark):
    rng = random.Random(7)
    rows, mentions, prefs = [], [], []
    for i in range(300):
        cid, mobile = f"C{i:03d}", f"139{i:08d}"
        rows.append((cid, f"王{'小大'[i % 2]}明", mobile, f"user{i}@example.com", "GZ001", f"reason {i}"))
        mentions.append((cid, mobile, f"137{i:08d}", None))
        # Statements on either of the customer's two numbers, in random order.
        for n in range(rng.randint(0, 3)):
            number = mobile if rng.random() < 0.5 else f"137{i:08d}"
            prefs.append((number, None, rng.choice(["sms", "phone"]), rng.random() < 0.6, dt.datetime(2025, 1, 1 + n), f"{i}-{n}"))
    people = spark.createDataFrame(rows, "customer_id string, name string, mobile string, email string, dealer_code string, reason string")
    identifiers = build_customer_identifiers(spark.createDataFrame(mentions, "customer_id string, mobile string, mobile_alt string, id_number string"))
    preferences = spark.createDataFrame(prefs, "mobile string, id_number string, channel string, opt_in boolean, updated_at timestamp, record_id string")
    # Materialised once: its plan (identifier variants, windows) is costly to run again in every test.
    return people, build_channel_consent(preferences, identifiers).localCheckpoint()


def test_opted_out_customers_never_appear(population):
    people, consent = population
    for channel in ("sms", "phone"):
        out = {r["customer_id"] for r in consent.filter(f"channel = '{channel}' AND opted_out").collect()}
        assert out  # the random statements do opt some out
        for privileged in (False, True):
            exported = {r["customer_id"] for r in build_export_rows(people, consent, channel, ["customer_id", "mobile"], privileged).collect()}
            assert exported and not exported & out
            assert len(exported) == 300 - len(out)


def test_required_opt_in_keeps_only_those_who_said_yes(population):
    people, consent = population
    said_yes = {r["customer_id"] for r in consent.filter("channel = 'sms' AND opted_in AND NOT opted_out").collect()}
    exported = {r["customer_id"] for r in build_export_rows(people, consent, "sms", ["customer_id"], False, ["sms"]).collect()}
    assert exported == said_yes


def test_default_export_masks_and_keeps_only_the_fields(population):
    people, consent = population
    rows = build_export_rows(people, consent, "email", ["customer_id", "name", "mobile", "email"], False).collect()
    assert rows[0].__fields__ == ["customer_id", "name", "mobile", "email"]
    by_id = {r["customer_id"]: r for r in rows}
    sample = by_id["C012"]
    assert (sample["name"], sample["mobile"], sample["email"]) == ("王**", "139****0012", "u***@example.com")
    privileged = {r["customer_id"]: r for r in build_export_rows(people, consent, "email", ["customer_id", "mobile"], True).collect()}
    assert privileged["C012"]["mobile"] == "13900000012"


def test_unknown_field_is_refused(population):
    people, consent = population
    with pytest.raises(ExportError, match=r"fields not available for this list: \['id_number'\]"):
        build_export_rows(people, consent, "sms", ["customer_id", "id_number"], False)


def test_privilege_needs_a_listed_user_and_a_purpose():
    with pytest.raises(ExportError, match=r"user 'mallory' may not export unmasked contact details: add them to activation.exports.privileged_users"):
        validate_privileged("mallory", "recall", ["alice"])
    with pytest.raises(ExportError, match=r"a privileged export needs --purpose"):
        validate_privileged("alice", " ", ["alice"])
    validate_privileged("alice", "safety recall call-out", ["alice"])


def test_export_file_is_one_sorted_csv_and_never_overwritten(spark, population, tmp_path):
    people, consent = population
    rows = build_export_rows(people, consent, "email", ["customer_id", "reason"], False)
    target = tmp_path / "out" / "list.csv"
    n = write_export_file(spark, rows, str(target), "csv", ["customer_id"])
    with target.open(encoding="utf-8") as handle:
        written = list(csv.DictReader(handle))
    assert n == len(written) == rows.count()
    assert [r["customer_id"] for r in written] == sorted(r["customer_id"] for r in written)
    assert not list(tmp_path.glob("out/*.writing"))
    with pytest.raises(ExportError, match="exists: choose another --out"):
        write_export_file(spark, rows, str(target), "csv")


def test_audit_row_records_who_what_and_fields_without_values(spark):
    request = ExportRequest("audience", "maint", "3", dt.date(2026, 7, 1), "sms", ("customer_id", "mobile"), "csv", "/x.csv", "alice", True, "recall")
    row = build_audit_row(spark, request, 42, dt.datetime(2026, 7, 1, 9)).first().asDict()
    assert {k: row[k] for k in ("user", "list_kind", "list_name", "list_version", "rows", "fields", "masked", "privileged", "purpose")} == {
        "user": "alice", "list_kind": "audience", "list_name": "maint", "list_version": "3", "rows": 42,
        "fields": ["customer_id", "mobile"], "masked": False, "privileged": True, "purpose": "recall",
    }


def test_formula_cells_and_nul_bytes_never_reach_an_export(spark, population, tmp_path):
    """A value a spreadsheet would run (=, +, -, @, tab, CR first) is quoted in the file; a
    NUL byte is dropped. Masked and privileged exports alike."""
    _, consent = population
    hostile = ['=HYPERLINK("http://evil.example/city","city")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "广州\x00市", "plain"]
    people = spark.createDataFrame(
        [(f"C{i:03d}", "王小明", f"139{i:08d}", f"user{i}@example.com", city) for i, city in enumerate(hostile)],
        "customer_id string, name string, mobile string, email string, city string",
    )
    for privileged in (False, True):
        out = tmp_path / f"list-{privileged}.csv"
        export = build_export_rows(people, consent, "email", ["customer_id", "name", "city"], privileged)
        write_export_file(spark, export, str(out), "csv", ["customer_id"])
        with out.open(encoding="utf-8", newline="") as f:
            cities = {r["customer_id"]: r["city"] for r in csv.DictReader(f)}
        reachable = [f"C{i:03d}" for i in range(len(hostile)) if f"C{i:03d}" in cities]
        assert len(reachable) >= 6
        for cid in reachable:
            cell, original = cities[cid], hostile[int(cid[1:])]
            assert "\x00" not in cell and not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
            assert cell in (original.replace("\x00", ""), "'" + original)
    # The Excel export writes every text cell as text: no formula survives, whatever the value.
    from openpyxl import load_workbook

    out = tmp_path / "list.xlsx"
    write_export_file(spark, build_export_rows(people, consent, "email", ["customer_id", "city"], False), str(out), "xlsx", ["customer_id"])
    sheet = load_workbook(out).active
    cells = [c for row in sheet.iter_rows(min_row=2) for c in row]
    assert len(cells) == 2 * len(hostile)
    assert all(c.data_type == "s" for c in cells if c.value is not None)
    assert not [c.value for c in cells if isinstance(c.value, str) and c.value.startswith(("=", "+", "-", "@"))]


def test_an_erasure_names_the_exports_that_held_the_person(spark, tmp_path):
    """Files handed out before an erasure are beyond the lake's reach: the exports whose
    lists held the person are found from the audit, to be recalled."""
    from activation.erase import exports_holding
    from cdp import catalog
    from cdp.lake import Lake

    lake = Lake(str(tmp_path / "lake"))
    day = dt.date(2026, 7, 1)
    spark.createDataFrame(
        [("spring", 1, "C1"), ("spring", 2, "C2"), ("autumn", 1, "C1")], "campaign string, version int, customer_id string"
    ).write.format("delta").save(lake.path(catalog.AUDIENCES))
    spark.createDataFrame([("C1", day), ("C3", day)], "customer_id string, as_of_date date").write.format("delta").save(lake.path(catalog.WINBACK))
    exports = [
        ExportRequest("audience", "spring", "1", day, "sms", ("customer_id",), "csv", "/out/spring-1.csv", "bob"),
        ExportRequest("audience", "spring", "2", day, "sms", ("customer_id",), "csv", "/out/spring-2.csv", "bob"),
        ExportRequest("audience", "autumn", "1", day, "sms", ("customer_id",), "csv", "/out/autumn-1.csv", "bob"),
        ExportRequest("winback", "winback", "-", day, "phone", ("customer_id",), "csv", "/out/winback.csv", "carol"),
        ExportRequest("winback", "winback", "-", day - dt.timedelta(days=30), "phone", ("customer_id",), "csv", "/out/older.csv", "carol"),
    ]
    audit = None
    for i, request in enumerate(exports):
        row = build_audit_row(spark, request, 1, dt.datetime(2026, 7, 2, 9, i))
        audit = row if audit is None else audit.unionByName(row)
    audit.write.format("delta").save(lake.path(catalog.EXPORT_AUDIT))

    assert [e["destination"] for e in exports_holding(spark, lake, ["C1"])] == ["/out/spring-1.csv", "/out/autumn-1.csv", "/out/winback.csv"]
    assert [e["destination"] for e in exports_holding(spark, lake, ["C2"])] == ["/out/spring-2.csv"]
    assert exports_holding(spark, lake, ["C9"]) == [] and exports_holding(spark, lake, []) == []
