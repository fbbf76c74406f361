"""Records that name nobody join the owner of their vehicle at their date, and only then."""

from __future__ import annotations

import datetime as dt

import pytest

from entity_resolution.attach import attach_weak_clusters

pytestmark = pytest.mark.spark

SCHEMA = (
    "mention_id string, role string, seen_at timestamp, vin string, surname_pinyin string, customer_type string, "
    "mobile string, mobile_alt string, id_number string, email string, name_simplified string, refers_to string, cluster_id string"
)


def _mention(mention_id, role, day, vin, cluster, surname=None, mobile=None, name=None, customer_type=None, refers_to=None):
    return (mention_id, role, dt.datetime.fromisoformat(day), vin, surname, customer_type, mobile, None, None, None, name, refers_to, cluster)


ROWS = [
    # 王伟 bought V1 in 2024; 李娜 bought V2 in 2023 and sold it to 张强 in 2025-06.
    _mention("so:1:buyer", "buyer", "2024-01-10", "V1", "wang", surname="wang", mobile="13900000001", name="王伟"),
    _mention("so:2:buyer", "buyer", "2023-03-01", "V2", "li", surname="li", mobile="13900000002", name="李娜"),
    _mention("so:3:buyer", "buyer", "2025-06-01", "V2", "zhang", surname="zhang", mobile="13900000003", name="张强"),
    # 王先生 on a repair order of V1: joins 王伟.
    _mention("ro:1:owner", "owner", "2025-02-01", "V1", "w1", surname="wang"),
    # 李先生 on V1: not 王伟's surname, stays apart.
    _mention("ro:2:owner", "owner", "2025-03-01", "V1", "w2", surname="li"),
    # Claims with no person at all on V2: the owner at each date.
    _mention("wc:1:customer", "customer", "2025-01-15", "V2", "w3"),
    _mention("wc:2:customer", "customer", "2025-08-15", "V2", "w4"),
    # A repair order from before V1's first sale in the data: the earliest owner after it.
    _mention("ro:3:owner", "owner", "2023-05-01", "V1", "w5"),
    # One weak cluster whose mentions point at two owners: left alone.
    _mention("ro:4:owner", "owner", "2025-02-01", "V1", "w6"),
    _mention("ro:5:owner", "owner", "2024-02-01", "V2", "w6"),
    # A contact with no name: not an owner's role, left alone; a car nobody identified owns.
    _mention("ro:6:contact", "contact", "2025-02-01", "V1", "w7"),
    _mention("ro:7:owner", "owner", "2025-02-01", "V9", "w8"),
    # A weak mention already in an identified cluster stays there.
    _mention("ro:8:owner", "owner", "2025-02-01", "V2", "zhang", surname="zhang"),
    # A claim naming its repair order goes to that order's customer, whatever the car says; one
    # naming an order whose customer is unidentified goes by the car.
    _mention("ro:9:owner", "owner", "2023-06-01", "V2", "li", surname="li", name="李娜"),
    _mention("wc:5:customer", "customer", "2025-08-20", "V2", "w9", refers_to="ro:9:owner"),
    _mention("wc:6:customer", "customer", "2025-08-20", "V2", "w10", refers_to="ro:7:owner"),
    # 王先生 and 李先生 in one weak cluster on V1: both surnames must be the owner's, so it stays.
    _mention("ro:12:owner", "owner", "2025-04-01", "V1", "w11", surname="wang"),
    _mention("ro:13:owner", "owner", "2025-04-01", "V1", "w11", surname="li"),
]


def test_weak_records_join_the_owner_at_their_date(spark):
    frame = spark.createDataFrame(ROWS, SCHEMA)
    mentions = frame.drop("cluster_id")
    clusters = frame.select("mention_id", "cluster_id")
    got = {r.mention_id: r.cluster_id for r in attach_weak_clusters(mentions, clusters).collect()}
    assert len(got) == len(ROWS)
    assert got["ro:1:owner"] == "wang"
    assert got["ro:2:owner"] == "w2"
    assert (got["wc:1:customer"], got["wc:2:customer"]) == ("li", "zhang")
    assert got["ro:3:owner"] == "wang"
    assert got["ro:4:owner"] == got["ro:5:owner"] == "w6"
    assert (got["ro:6:contact"], got["ro:7:owner"], got["ro:8:owner"]) == ("w7", "w8", "zhang")
    assert (got["wc:5:customer"], got["wc:6:customer"]) == ("li", "zhang")
    assert got["ro:12:owner"] == got["ro:13:owner"] == "w11"
    assert {k: v for k, v in got.items() if k.startswith("so:")} == {"so:1:buyer": "wang", "so:2:buyer": "li", "so:3:buyer": "zhang"}


def test_clusters_that_still_name_nobody_are_unidentified_records_not_customers(spark):
    from entity_resolution.attach import flag_identified, split_unidentified

    frame = spark.createDataFrame(ROWS, SCHEMA)
    mentions = frame.drop("cluster_id")
    attached = attach_weak_clusters(mentions, frame.select("mention_id", "cluster_id"))
    identified, unidentified = split_unidentified(flag_identified(mentions, attached))
    # What joined an owner is a customer's; what did not (李先生 on 王伟's car, a weak cluster
    # pointing at two owners, a nameless contact, a car nobody identified owns) names nobody.
    assert {r.mention_id for r in unidentified.collect()} == {
        "ro:2:owner", "ro:4:owner", "ro:5:owner", "ro:6:contact", "ro:7:owner", "ro:12:owner", "ro:13:owner",
    }
    kept = {r.mention_id: r.cluster_id for r in identified.collect()}
    assert set(kept) | {r.mention_id for r in unidentified.collect()} == {r[0] for r in ROWS}
    assert set(kept.values()) == {"wang", "li", "zhang"}
    # A cluster none of whose mentions is among the mentions given is not judged: it stays.
    stranger = spark.createDataFrame([("xx:1:owner", "stranger")], "mention_id string, cluster_id string")
    flags = {r.mention_id: r.identified for r in flag_identified(mentions, attached.unionByName(stranger)).collect()}
    assert flags["xx:1:owner"] is True and flags["ro:2:owner"] is False
