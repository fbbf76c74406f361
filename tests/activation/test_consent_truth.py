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
    # though nobody in it opted out of e-mail.
    write_deltalake(reader.path(catalog.CUSTOMERS), pa.table({
        "customer_id": ["C1", "C2", "C3", "C4", "C5"],
        "mobile": ["13800000001", "13800000002", "13800000003", None, "13800000005"],
        "email": [None, None, None, None, "p4@example.com"],
    }))
    write_deltalake(reader.path(catalog.CUSTOMER_XREF), pa.table({
        "customer_id": ["C1", "C2", "C3", "C4", "C5"],
        "mention_id": ["sales_orders:S1:buyer", "complaints:K1:caller", "sales_orders:S3:buyer", "leads:L4:prospect", "leads:L5:prospect"],
    }))
    write_deltalake(reader.path(catalog.CUSTOMER_CONSENT), pa.table({
        "customer_id": ["C1", "C5"], "channel": ["sms", "email"], "opted_out": [True, True], "opted_in": [False, False],
    }))
    write_deltalake(reader.path(catalog.AUDIENCES), pa.table({
        "campaign": ["c_sms", "c_sms", "c_sms", "c_phone"], "version": [1, 1, 1, 1], "customer_id": ["C1", "C2", "C3", "C5"],
        "channel": ["sms", "sms", "sms", "phone"], "holdout": [True, False, False, False],
    }), partition_by=["campaign"])
    truth = tmp_path / "truth"
    truth.mkdir()
    _csv(truth / "mentions.csv", ["feed", "record_id", "role", "person_id"], [
        ["sales_orders", "S1", "buyer", "P1"], ["complaints", "K1", "caller", "P1"], ["sales_orders", "S3", "buyer", "P2"],
        ["leads", "L4", "prospect", "P3"], ["leads", "L5", "prospect", "P4"],
    ])
    _csv(truth / "contact_preferences.csv", ["person_id", "channel", "opt_in", "updated_at"], [
        ["P1", "sms", "false", "2026-01-01 10:00:00"],
        ["P2", "phone", "true", "2025-01-01 10:00:00"], ["P2", "phone", "false", "2026-02-01 10:00:00"],  # the latest counts
        ["P3", "sms", "false", "2026-01-01 10:00:00"],  # no mobile: never reachable, never a leak
        ["P4", "wechat", "false", "2025-01-01 10:00:00"], ["P4", "wechat", "true", "2026-03-01 10:00:00"],  # opted back in
    ])
    return reader, truth


def test_a_split_person_and_a_missed_opt_out_are_leaks(lake, no_spark):
    reader, truth = lake
    figures = opt_out_leaks(reader, truth)
    by_channel = {row["channel"]: row for row in figures["channels"]}
    assert by_channel["sms"] == {"channel": "sms", "reachable": 3, "leaked_rows": 1, "held_back_in_doubt": 0,
                                 "opted_out_people": 2, "leaked_split": 1, "leaked_missed": 0, "audience_rows": 2, "audience_rows_leaked": 1}
    assert (by_channel["phone"]["leaked_rows"], by_channel["phone"]["leaked_missed"], by_channel["phone"]["leaked_split"]) == (1, 1, 0)
    assert by_channel["wechat"]["leaked_rows"] == 0 and by_channel["wechat"]["reachable"] == 4
    assert (by_channel["email"]["reachable"], by_channel["email"]["held_back_in_doubt"]) == (0, 1)
    assert (figures["leaked_rows"], figures["leaked_split"], figures["leaked_missed"]) == (2, 1, 1)
    # A list's control group is not contacted: C1 held out of the sms list is no leak.
    assert (figures["audience_rows"], figures["audience_rows_leaked"]) == (3, 1)


def test_a_truth_folder_without_its_files_is_a_usage_error(lake, tmp_path, no_spark):
    reader, truth = lake
    (truth / "contact_preferences.csv").unlink()
    with pytest.raises(UsageError, match="contact_preferences.csv"):
        opt_out_leaks(reader, truth)
