"""Golden profiles: survivorship per attribute, and customer-vehicle links."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

import pytest

from cdp.config import ResolutionConfig
from entity_resolution.golden import (
    build_customer_vehicles,
    build_customer_vehicles_in_duckdb,
    build_customers,
    build_customers_in_duckdb,
)

pytestmark = pytest.mark.spark

_SCHEMA = (
    "customer_id string, mention_id string, feed string, role string, dealer_code string, seen_at timestamp, "
    "customer_type string, name_simplified string, name_pinyin string, gender string, birth_date date, "
    "id_number string, id_unchecked string, mobile string, mobile_alt string, email string, address string, "
    "province string, city string, vin string"
)


def _mention(customer, mention, feed, day, **values):
    row = dict.fromkeys(_SCHEMA_COLUMNS)
    row.update(customer_id=customer, mention_id=mention, feed=feed, role=values.pop("role", "buyer"), dealer_code=values.pop("dealer", "GZ001"), seen_at=dt.datetime(2025, 1, day))
    row.update(values)
    return tuple(row[c] for c in _SCHEMA_COLUMNS)


_SCHEMA_COLUMNS = [part.split()[0] for part in _SCHEMA.split(", ")]


@pytest.fixture
def mentions(spark):
    rows = [
        # The showroom spells the name with an ID check; the call centre later mishears it.
        _mention("CU1", "m1", "sales_orders", 1, name_simplified="王伟", name_pinyin="wang wei", gender="M", id_unchecked="110105199001011234", mobile="13800000001", customer_type="individual", city="广州市"),
        _mention("CU1", "m2", "complaints", 9, name_simplified="王维", name_pinyin="wang wei", mobile="13900000002", role="caller"),
        _mention("CU1", "m3", "service_orders", 5, name_simplified="王维", name_pinyin="wang wei", id_number="11010519491231002X", role="owner", dealer="SZ002", vin="VIN1"),
        _mention("CU1", "m4", "surveys", 3, name_simplified="王维", name_pinyin="wang wei", mobile="13800000001", mobile_alt="13700000003", role="respondent"),
    ]
    return spark.createDataFrame(rows, _SCHEMA)


def test_default_survivorship(spark, mentions):
    row = build_customers(mentions, ResolutionConfig()).first().asDict()
    assert row["name"] == "王伟"  # source priority: the sales order wins over three others
    assert row["id_number"] == "11010519491231002X" and row["id_valid"]  # valid check digit first
    assert row["mobile"] == "13900000002"  # the number used last
    assert row["mobiles"] == ["13700000003", "13800000001", "13900000002"]
    assert row["customer_type"] == "individual"
    assert row["city"] == "广州市"
    assert row["record_counts"] == {"complaints": 1, "sales_orders": 1, "service_orders": 1, "surveys": 1}
    assert row["dealers"] == ["GZ001", "SZ002"]
    assert (row["first_seen"], row["last_seen"], row["mention_count"]) == (dt.datetime(2025, 1, 1), dt.datetime(2025, 1, 9), 4)


def test_survivorship_is_configurable_per_attribute(spark, mentions):
    config = ResolutionConfig(survivorship={"name": ["most_frequent"], "mobile": ["most_frequent", "most_recent"], "id_number": ["source_priority"]})
    row = build_customers(mentions, config).first().asDict()
    assert row["name"] == "王维"
    assert row["mobile"] == "13800000001"
    assert row["id_number"] == "110105199001011234" and row["id_valid"] is False


def test_unknown_rule_or_attribute_is_rejected():
    with pytest.raises(ValueError, match="name: rules must be a non-empty list"):
        ResolutionConfig(survivorship={"name": ["loudest"]})
    with pytest.raises(ValueError, match=r"unknown attribute\(s\) \['shoe_size'\]"):
        ResolutionConfig(survivorship={"shoe_size": ["most_recent"]})


def test_vehicles_know_owners_contacts_and_the_current_owner(spark):
    rows = [
        _mention("CU1", "a", "sales_orders", 1, vin="VIN1"),
        _mention("CU1", "b", "service_orders", 4, vin="VIN1", role="owner"),
        _mention("CU2", "c", "service_orders", 4, vin="VIN1", role="contact"),
        # Resold: a new owner services the car later.
        _mention("CU3", "d", "service_orders", 20, vin="VIN1", role="owner"),
    ]
    out = build_customer_vehicles(spark.createDataFrame(rows, _SCHEMA))
    got = sorted((r.customer_id, r.role, str(r.from_date), str(r.to_date), r.records, r.is_current_owner) for r in out.collect())
    assert got == [
        ("CU1", "owner", "2025-01-01", "2025-01-04", 2, False),
        ("CU2", "contact", "2025-01-04", "2025-01-04", 1, False),
        ("CU3", "owner", "2025-01-20", "2025-01-20", 1, True),
    ]


def _reference_pick(candidates, chain, priority):
    """The documented rule chain, record by record: candidates are (feed, seen_at, value, valid, extra)."""
    frequency, last_seen = {}, {}
    for _feed, seen, value, _valid, _extra in candidates:
        frequency[value] = frequency.get(value, 0) + 1
        last_seen[value] = max(last_seen.get(value, seen), seen)
    rank = {feed: i for i, feed in enumerate(priority)}

    def key(candidate):
        feed, _seen, value, valid, extra = candidate
        rules = {
            "valid_first": 0 if valid else 1, "source_priority": rank.get(feed, len(priority)),
            "most_frequent": -frequency[value], "most_recent": -last_seen[value].timestamp(),
        }
        return (*[rules[r] for r in chain], value, (0, "") if extra is None else (1, extra))

    return min(candidates, key=key)


def _random_mentions(seed):
    """Mentions of 25 customers with few values to pick from (ties on every rule), and a
    random chain of rules per attribute: (rows, config)."""
    import random

    from cdp.config import SURVIVING_ATTRIBUTES, SURVIVORSHIP_RULES

    rnd = random.Random(seed)
    feeds = ["sales_orders", "warranty_claims", "service_orders", "surveys", "complaints", "leads"]
    chains = {a: rnd.sample(SURVIVORSHIP_RULES, rnd.randint(1, len(SURVIVORSHIP_RULES))) for a in SURVIVING_ATTRIBUTES}
    config = ResolutionConfig(survivorship=chains, source_priority=rnd.sample(feeds, 4))
    ids = {"110105199001011234": False, "11010519491231002X": True, "440301198802023456": True}
    rows = []
    for n in range(240):
        customer = f"CU{rnd.randint(1, 25)}"
        maybe = lambda pool: rnd.choice([*pool, None])  # noqa: E731
        identity = maybe(list(ids))
        rows.append(_mention(
            customer, f"m{n}", rnd.choice(feeds), rnd.randint(1, 6),
            name_simplified=maybe(["王伟", "王维", "李娜"]), name_pinyin=maybe(["wang wei", "li na"]),
            gender=maybe(["M", "F"]), birth_date=maybe([dt.date(1990, 1, 1), dt.date(1991, 2, 2)]),
            id_number=identity if identity and ids[identity] else None, id_unchecked=identity if identity and not ids[identity] else None,
            mobile=maybe(["13800000001", "13900000002"]), mobile_alt=maybe(["13800000001", "13700000003"]),
            email=maybe(["a@x.cn"]), address=maybe(["一路1号", "二路2号"]), province=maybe(["广东省"]), city=maybe(["广州市", "深圳市"]),
            customer_type=maybe(["individual", "company"]),
        ))
    return rows, config


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_survivorship_matches_the_rule_chain_record_by_record(spark, seed):
    from cdp.config import SURVIVING_ATTRIBUTES

    rows, config = _random_mentions(seed)
    got = {r.customer_id: r.asDict() for r in build_customers(spark.createDataFrame(rows, _SCHEMA), config).collect()}

    mentions = [dict(zip(_SCHEMA_COLUMNS, r)) for r in rows]
    sources = {
        "name": [("name_simplified", "name_pinyin")], "gender": [("gender", None)], "birth_date": [("birth_date", None)],
        "id_number": [("id_number", None), ("id_unchecked", None)], "mobile": [("mobile", None), ("mobile_alt", None)],
        "email": [("email", None)], "address": [("address", None)], "province": [("province", None)], "city": [("city", None)],
        "customer_type": [("customer_type", None)],
    }
    for customer in sorted({m["customer_id"] for m in mentions}):
        mine = [m for m in mentions if m["customer_id"] == customer]
        for attribute in SURVIVING_ATTRIBUTES:
            candidates = [
                (m["feed"], m["seen_at"], str(m[column]), column != "id_unchecked", m[extra] if extra else None)
                for m in mine for column, extra in sources[attribute] if m[column] is not None
            ]
            expected = _reference_pick(candidates, config.survivorship[attribute], config.source_priority) if candidates else None
            value = got[customer][attribute]
            if attribute == "customer_type" and expected is None:
                assert value == "individual"
                continue
            assert (str(value) if value is not None else None) == (expected[2] if expected else None), (customer, attribute)
            if attribute == "name":
                assert got[customer]["name_pinyin"] == (expected[4] if expected else None), customer
            if attribute == "id_number":
                assert got[customer]["id_valid"] == (expected[3] if expected else None), customer


@contextmanager
def _session_zone(spark, zone):
    """Spark's session time zone set to `zone` inside; DuckDB's connection, given the same."""
    import duckdb

    from entity_resolution.duckdb_engine import duckdb_time_zone

    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)
    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{duckdb_time_zone(zone)}'")
    try:
        yield con
    finally:
        con.close()
        spark.conf.set("spark.sql.session.timeZone", before)


@pytest.mark.parametrize(("seed", "zone"), [(1, "UTC"), (2, "UTC"), (3, "+08:00")])
def test_duckdb_builds_the_profiles_spark_builds(spark, tmp_path, seed, zone):
    """`build_customers_in_duckdb` (the DuckDB engine's golden phase): the same rows, value
    for value, as `build_customers`, with mentions seen at no time among them, in Spark's
    session time zone."""
    from pyspark.sql import functions as F

    rows, config = _random_mentions(seed)
    seen_at = _SCHEMA_COLUMNS.index("seen_at")
    rows = [(*r[:seen_at], None, *r[seen_at + 1:]) if n % 7 == 0 else r for n, r in enumerate(rows)]
    with _session_zone(spark, zone) as con:
        mentions = spark.createDataFrame(rows, _SCHEMA)
        mentions.write.parquet(str(tmp_path / "mentions"))
        out = str(tmp_path / "customers.parquet")
        build_customers_in_duckdb(con, f"read_parquet('{tmp_path}/mentions/*.parquet')", config, out)
        expected = build_customers(mentions, config)
        got = spark.read.parquet(out)
        assert got.columns == expected.columns
        typed = got.select(*[F.col(c).cast(kind) for c, kind in expected.dtypes])
        by_customer = {r.customer_id: r.asDict() for r in typed.collect()}
        assert by_customer == {r.customer_id: r.asDict() for r in expected.collect()} and len(by_customer) > 20


@pytest.mark.parametrize(("seed", "zone"), [(1, "UTC"), (2, "UTC"), (3, "+08:00"), (4, "Asia/Shanghai")])
def test_duckdb_links_the_vehicles_spark_links(spark, tmp_path, seed, zone):
    """`build_customer_vehicles_in_duckdb`: the same links as `build_customer_vehicles`,
    with cars resold, contacts, records near midnight and records seen at no time, their
    dates in Spark's session time zone (a region or an offset)."""
    import random

    rnd = random.Random(seed)
    rows = []
    for n in range(300):
        row = list(_mention(
            f"CU{rnd.randint(1, 30)}", f"m{n}", "service_orders", rnd.randint(1, 28),
            vin=rnd.choice(["VIN1", "VIN2", "VIN3", "VIN4", "VIN5", None]), role=rnd.choice(["owner", "buyer", "contact", None]),
        ))
        seen_at = _SCHEMA_COLUMNS.index("seen_at")
        row[seen_at] = None if n % 9 == 0 else row[seen_at] + dt.timedelta(hours=rnd.choice([0, 23]), minutes=rnd.choice([0, 59]))
        rows.append(tuple(row))
    with _session_zone(spark, zone) as con:
        mentions = spark.createDataFrame(rows, _SCHEMA)
        mentions.write.parquet(str(tmp_path / "mentions"))
        out = str(tmp_path / "vehicles.parquet")
        build_customer_vehicles_in_duckdb(con, f"read_parquet('{tmp_path}/mentions/*.parquet')", out)
        expected = build_customer_vehicles(mentions)
        got = spark.read.parquet(out)
        assert got.columns == expected.columns
        assert sorted(got.collect()) == sorted(expected.collect()) and got.filter("is_current_owner").count() == 5
