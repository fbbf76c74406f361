"""Consent scored against truth: leaks found and told apart, without a JVM."""

from __future__ import annotations

import csv

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from activation.consent_truth import opt_out_leaks
from cdp import catalog
from cdp.errors import UsageError
from cdp.reader import LakeReader


def _csv(path, header, rows):
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def lake(tmp_path):
    reader = LakeReader(str(tmp_path / "lake"))
    # P1 was split into C1 and C2; P2 is C3; P3 is C4 (no mobile); P4 is C5, held back on email
    # though nobody in it opted out of e-mail; P6 is C6 and opted out by an ID none of its
    # records carries.
    write_deltalake(reader.path(catalog.CUSTOMERS), pa.table({
        "customer_id": ["C1", "C2", "C3", "C4", "C5", "C6"],
        "mobile": ["13800000001", "13800000002", "13800000003", None, "13800000005", "13800000006"],
        "email": [None, None, None, None, "p4@example.com", None],
    }))
    write_deltalake(reader.path(catalog.CUSTOMER_XREF), pa.table({
        "customer_id": ["C1", "C2", "C3", "C4", "C5", "C6"],
        "mention_id": ["sales_orders:S1:buyer", "complaints:K1:caller", "sales_orders:S3:buyer", "leads:L4:prospect", "leads:L5:prospect",
                       "leads:L6:prospect"],
    }))
    write_deltalake(reader.path(catalog.PERSON_MENTIONS), pa.table({
        "mention_id": ["sales_orders:S1:buyer", "complaints:K1:caller", "sales_orders:S3:buyer", "leads:L4:prospect", "leads:L5:prospect",
                       "leads:L6:prospect"],
        "mobile": ["13800000001", None, "13800000003", None, "13800000005", "13800000006"],
        "mobile_alt": [None, None, None, None, None, None],
        "id_number": [None, None, "11010519491231002X", None, None, None],
        "id_unchecked": [None, None, None, None, None, None],
    }))
    write_deltalake(reader.path(catalog.CUSTOMER_CONSENT), pa.table({
        "customer_id": ["C1", "C5"], "channel": ["sms", "email"], "opted_out": [True, True], "opted_in": [False, False],
    }))
    write_deltalake(reader.path(catalog.AUDIENCES), pa.table({
        "campaign": ["c_sms", "c_sms", "c_sms", "c_sms", "c_phone"], "version": [1, 1, 1, 1, 1], "customer_id": ["C1", "C2", "C3", "C6", "C5"],
        "channel": ["sms", "sms", "sms", "sms", "phone"], "holdout": [True, False, False, False, False],
    }), partition_by=["campaign"])
    truth = tmp_path / "truth"
    truth.mkdir()
    _csv(truth / "mentions.csv", ["feed", "record_id", "role", "person_id"], [
        ["sales_orders", "S1", "buyer", "P1"], ["complaints", "K1", "caller", "P1"], ["sales_orders", "S3", "buyer", "P2"],
        ["leads", "L4", "prospect", "P3"], ["leads", "L5", "prospect", "P4"], ["leads", "L6", "prospect", "P6"],
    ])
    _csv(truth / "contact_preferences.csv", ["person_id", "mobile", "id_number", "channel", "opt_in", "updated_at"], [
        ["P1", "+86 138-0000-0001", "", "sms", "false", "2026-01-01 10:00:00"],
        ["P2", "", "11010519491231002X", "phone", "true", "2025-01-01 10:00:00"],
        ["P2", "", "11010519491231002x", "phone", "false", "2026-02-01 10:00:00"],  # the latest counts
        ["P3", "13800000004", "", "sms", "false", "2026-01-01 10:00:00"],  # no address: never reachable, never a leak
        ["P4", "13800000005", "", "wechat", "false", "2025-01-01 10:00:00"],
        ["P4", "13800000005", "", "wechat", "true", "2026-03-01 10:00:00"],  # opted back in
        ["P6", "", "110105194912310038", "sms", "false", "2026-01-01 10:00:00"],  # an ID no record carries
    ])
    return reader, truth


def test_a_split_person_and_a_missed_opt_out_are_leaks(lake, no_spark):
    reader, truth = lake
    figures = opt_out_leaks(reader, truth)
    by_channel = {row["channel"]: row for row in figures["channels"]}
    assert by_channel["sms"] == {
        "channel": "sms", "reachable": 4, "leaked_rows": 1, "unattributable_rows": 1, "held_back_in_doubt": 0, "opted_out_people": 3,
        "unattributable_people": 2, "leaked_split": 1, "leaked_missed": 0, "audience_rows": 3, "audience_rows_leaked": 1,
        "audience_rows_unattributable": 1,
    }
    assert (by_channel["phone"]["leaked_rows"], by_channel["phone"]["leaked_missed"], by_channel["phone"]["leaked_split"]) == (1, 1, 0)
    assert by_channel["wechat"]["leaked_rows"] == 0 and by_channel["wechat"]["reachable"] == 5
    assert (by_channel["email"]["reachable"], by_channel["email"]["held_back_in_doubt"]) == (0, 1)
    assert (figures["leaked_rows"], figures["leaked_split"], figures["leaked_missed"], figures["unattributable_rows"]) == (2, 1, 1, 1)
    # A list's control group is not contacted: C1 held out of the sms list is no leak.
    assert (figures["audience_rows"], figures["audience_rows_leaked"], figures["audience_rows_unattributable"]) == (4, 1, 1)


def test_a_truth_folder_without_its_files_is_a_usage_error(lake, tmp_path, no_spark):
    reader, truth = lake
    (truth / "contact_preferences.csv").unlink()
    with pytest.raises(UsageError, match="contact_preferences.csv"):
        opt_out_leaks(reader, truth)
