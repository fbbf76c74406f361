"""Consent: every identifier of a preference counts, and when in doubt an opt-out suppresses
(a mistyped ID, the other fragments of a person that resolution split)."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from activation.consent import build_channel_consent, build_customer_identifiers
from entity_resolution.standardise.resident_ids import build_id_number

pytestmark = pytest.mark.spark

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(body: str) -> str:
    """A valid 18-character ID from its first 17 digits."""
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS)) % 11]


def one_wrong(valid: str, i: int = 9) -> str:
    return valid[:i] + str((int(valid[i]) + 3) % 10) + valid[i + 1:]


def swapped(valid: str) -> str:
    i = next(i for i in range(10, 16) if valid[i] != valid[i + 1])
    return valid[:i] + valid[i + 1] + valid[i] + valid[i + 2:]


A = resident_id("44010619850312001")  # opts out by ID, alongside a mobile nobody holds
B = resident_id("44010619720101123")  # opts out by the old 15-digit form of the ID
C = resident_id("11010519900707456")  # opts out by ID; held by others with a typo


@pytest.fixture(scope="module")
def consent(spark):
    mentions = [
        # customer, mobile, mobile_alt, id_number (valid), id_unchecked (failing its check)
        ("CA", "13900000001", None, A, None),
        ("CB", "13900000002", None, B, None),
        ("CC", None, None, C, None),
        ("CT1", "13900000004", None, None, one_wrong(C)),
        ("CT2", "13900000005", None, None, swapped(C)),
        ("CX", "13900000006", None, None, one_wrong(one_wrong(C), 12)),  # two wrong: another person
        ("CF", "13900000001", None, None, None),  # a fragment of CA: shares its mobile
        ("CN", "13900000007", None, None, None),  # a fragment of CB: near miss in review
        ("CD", "13900000008", None, None, None),  # unrelated
        *[(f"CS{i}", "13900000009", None, A if i == 0 else None, None) for i in range(5)],  # a dealer's number
    ]
    for row in mentions:
        assert row[3] is None or row[3] == resident_id(row[3][:17])
    prefs = [
        # mobile, id_number, channel, opt_in, updated_at, record_id
        ("13811112222", A, "sms", False, dt.datetime(2026, 3, 1), "p1"),
        (None, B[:6] + B[8:17], "sms", False, dt.datetime(2026, 3, 1), "p2"),
        (None, C, "sms", False, dt.datetime(2026, 3, 1), "p3"),
        ("13900000008", None, "phone", True, dt.datetime(2026, 3, 1), "p4"),
    ]
    preferences = spark.createDataFrame(prefs, "mobile string, id_number string, channel string, opt_in boolean, updated_at timestamp, record_id string")
    preferences = preferences.withColumn("id_number", build_id_number(F.col("id_number")))
    identifiers = build_customer_identifiers(
        spark.createDataFrame(mentions, "customer_id string, mobile string, mobile_alt string, id_number string, id_unchecked string")
    )
    near = spark.createDataFrame([("CB", "CN")], "customer_id_l string, customer_id_r string")
    rows = build_channel_consent(preferences, identifiers, near).collect()
    return {(r["customer_id"], r["channel"]): (r["opted_out"], r["opted_in"]) for r in rows}


def out(consent, channel="sms"):
    return {c for (c, ch), (opted_out, _) in consent.items() if ch == channel and opted_out}


def test_every_identifier_on_a_preference_counts(consent):
    assert "CA" in out(consent)  # the row's mobile is unknown, its ID is CA's


def test_an_old_15_digit_id_reaches_the_18_digit_holder(consent):
    assert "CB" in out(consent)


def test_a_mistyped_id_is_suppressed_but_not_a_different_one(consent):
    assert {"CC", "CT1", "CT2"} <= out(consent)
    assert "CX" not in out(consent)


def test_fragments_of_an_opted_out_person_are_suppressed(consent):
    assert "CF" in out(consent)  # shares CA's mobile
    assert "CN" in out(consent)  # near miss of CB in the review band


def test_a_widely_shared_number_does_not_spread_an_opt_out(consent):
    # CS0 holds A and is reached directly; CS1-CS4 only share a number five customers hold.
    assert "CS0" in out(consent)
    assert not {"CS1", "CS2", "CS3", "CS4"} & out(consent)


def test_opt_ins_and_other_channels_are_untouched(consent):
    assert consent[("CD", "phone")] == (False, True)
    assert "CD" not in out(consent) and not out(consent, "phone")
