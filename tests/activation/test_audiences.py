"""Campaign evaluation on a hand-built world: rules, each suppression, priority, control
group, consent and exports."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from activation.audiences import AudienceInputs, build_audience, evaluate_campaign, summarise_audience
from activation.campaigns import CampaignBook, CampaignError
from activation.consent import build_channel_consent, build_customer_identifiers

pytestmark = pytest.mark.spark

D = dt.date(2026, 7, 1)
NOW = dt.datetime(2026, 7, 1, 8, 0)
FEATURES = "customer_id string, lifecycle_stage string, city string, province string, complaints_open int, lifetime_spend double"

# id: stage, city, open complaints, spend, mobile, email
WORLD = {
    "A": ("active", "广州市", 0, 5000.0, "13800000001", "a@example.com"),
    "B": ("active", "广州市", 0, 5000.0, "13800000002", None),  # opted out of sms on a second number
    "C": ("active", "广州市", 0, 5000.0, None, None),  # no mobile
    "D": ("active", "广州市", 2, 5000.0, "13800000004", None),  # open complaints
    "E": ("active", "广州市", 0, 5000.0, "13800000005", None),  # in another list 3 days ago
    "F": ("dormant", "广州市", 0, 5000.0, "13800000006", None),
    "G": ("active", "深圳市", 0, 5000.0, "13800000007", None),
    "H": ("active", "广州市", 0, 200000.0, "13800000008", None),  # wins the VIP campaign first
}

BOOK = CampaignBook.model_validate(
    {
        "campaigns": {
            "vip": {"channel": "sms", "audience": {"where": [{"feature": "lifetime_spend", "op": ">=", "value": 100000}]},
                    "group": "g", "priority": 1},
            "gz_active": {"channel": "sms", "audience": {"lifecycle_stage": ["active"], "city": ["广州市"]},
                          "suppress": {"open_complaint": True, "contacted_within_days": 7}, "group": "g", "priority": 2},
            "maint": {"channel": "sms", "audience": {"due": {"kind": "maintenance", "within_days": 30}},
                      "suppress": {"open_complaint": False}},
            "maint_next_month": {"channel": "sms", "audience": {"due": {"kind": "maintenance", "month": "next"}}},
            "bad_feature": {"channel": "sms", "audience": {"where": [{"feature": "shoe_size", "op": ">", "value": 40}]}},
            "everyone_10": {"channel": "sms", "audience": {}, "holdout_percent": 10, "suppress": {"open_complaint": False}},
            "everyone_10_again": {"channel": "sms", "audience": {}, "holdout_percent": 10, "suppress": {"open_complaint": False}},
        }
    }
)


def _inputs(spark, world=WORLD, preferences=None):
    features = spark.createDataFrame([(c, s, city, "广东省", n, spend) for c, (s, city, n, spend, *_rest) in world.items()], FEATURES)
    profiles = spark.createDataFrame(
        [(c, m, e) for c, (*_head, m, e) in world.items()], "customer_id string, mobile string, email string"
    )
    mentions = spark.createDataFrame(
        [(c, m, "13900000002" if c == "B" else None, None) for c, (*_head, m, _e) in world.items()],
        "customer_id string, mobile string, mobile_alt string, id_number string",
    )
    preferences = preferences or [
        ("13800000002", None, "sms", True, dt.datetime(2026, 1, 1), "p1"),
        ("13900000002", None, "sms", False, dt.datetime(2025, 1, 1), "p2"),
    ]
    prefs = spark.createDataFrame(preferences, "mobile string, id_number string, channel string, opt_in boolean, updated_at timestamp, record_id string")
    return AudienceInputs(
        features=features,
        profiles=profiles,
        segments=spark.createDataFrame([], "customer_id string, segment_name string"),
        home_dealers=spark.createDataFrame([(c, "GZ001") for c in world], "customer_id string, dealer_code string"),
        owned_models=spark.createDataFrame([], "customer_id string, model string"),
        reminders=spark.createDataFrame(
            [("A", "maintenance", D + dt.timedelta(days=10)), ("B", "maintenance", D + dt.timedelta(days=40)),
             ("D", "maintenance", D + dt.timedelta(days=5)), ("A", "birthday", D + dt.timedelta(days=3))],
            "customer_id string, kind string, due_date date",
        ),
        # Materialised once: its plan (identifier variants, windows) is costly to run in every evaluation.
        consent=build_channel_consent(prefs, build_customer_identifiers(mentions)).localCheckpoint(),
        contacts=spark.createDataFrame([("other", "E", NOW - dt.timedelta(days=3)), ("other", "A", NOW - dt.timedelta(days=30))],
                                       "campaign string, customer_id string, built_at timestamp"),
        as_of=D,
        now=NOW,
    )


@pytest.fixture(scope="module")
def inputs(spark):
    return _inputs(spark)


def _flags(df, flag):
    return sorted(r["customer_id"] for r in df.filter(F.col(flag)).collect())


def test_rules_and_each_suppression(inputs):
    evaluated = evaluate_campaign(inputs, BOOK, "gz_active").cache()
    assert _flags(evaluated, "eligible") == ["A", "B", "C", "D", "E", "H"]
    eligible = evaluated.filter("eligible")
    assert _flags(eligible, "opted_out") == ["B"]  # one of B's numbers opted out: B has
    assert _flags(eligible, "unreachable") == ["C"]
    assert _flags(eligible, "open_complaint") == ["D"]
    assert _flags(eligible, "recently_contacted") == ["E"]  # A's contact was 30 days ago
    assert _flags(eligible, "claimed_by_priority") == ["H"]
    assert _flags(evaluated, "member") == ["A"]
    reason = evaluated.filter("customer_id = 'A'").first()["reason"]
    assert reason == "lifecycle active; city 广州市"


def test_preview_counts_each_suppression_alone_and_in_order(inputs):
    preview = summarise_audience(evaluate_campaign(inputs, BOOK, "gz_active"), inputs, BOOK, "gz_active")
    assert preview.qualifying == 6
    assert preview.suppressed_alone == {"opted_out": 1, "unreachable": 1, "open_complaint": 1, "recently_contacted": 1, "claimed_by_priority": 1}
    assert preview.suppressed_in_order == preview.suppressed_alone
    assert (preview.members, preview.holdout, preview.listed) == (1, 0, 1)
    # C has no mobile; B opted out of sms only; nobody but A has an e-mail.
    assert preview.reachable_by_channel == {"sms": 4, "phone": 5, "wechat": 5, "email": 1}


def test_higher_priority_campaign_keeps_its_members(inputs):
    vip = evaluate_campaign(inputs, BOOK, "vip")
    assert _flags(vip, "member") == ["H"]


def test_due_windows(inputs):
    within = evaluate_campaign(inputs, BOOK, "maint")
    assert _flags(within, "eligible") == ["A", "D"]
    assert within.filter("customer_id = 'A'").first()["reason"] == "maintenance due 2026-07-11"
    # D's complaint does not suppress where the campaign says so.
    assert _flags(within, "member") == ["A", "D"]
    assert _flags(evaluate_campaign(inputs, BOOK, "maint_next_month"), "eligible") == ["B"]


def test_unknown_feature_names_the_rule(inputs):
    with pytest.raises(CampaignError, match=r"campaigns.bad_feature.audience.where.0.feature: unknown feature 'shoe_size'"):
        evaluate_campaign(inputs, BOOK, "bad_feature")


def test_control_group_is_deterministic_per_campaign_and_customer(spark):
    world = {f"C{i:05d}": ("active", "广州市", 0, 1000.0, f"138{i:08d}", None) for i in range(3000)}
    big = _inputs(spark, world, preferences=[("00000000000", None, "sms", True, dt.datetime(2026, 1, 1), "p")])
    first = {r["customer_id"]: r["holdout"] for r in evaluate_campaign(big, BOOK, "everyone_10").collect()}
    again = {r["customer_id"]: r["holdout"] for r in evaluate_campaign(big, BOOK, "everyone_10").collect()}
    assert first == again
    share = sum(first.values()) / len(first)
    assert 0.08 < share < 0.12
    # The flag depends on campaign and customer only, not on who else is in the population.
    half = _inputs(spark, dict(list(world.items())[:1500]), preferences=[("00000000000", None, "sms", True, dt.datetime(2026, 1, 1), "p")])
    assert all(first[r["customer_id"]] == r["holdout"] for r in evaluate_campaign(half, BOOK, "everyone_10").collect())
    # Another campaign draws another control group.
    other = {r["customer_id"]: r["holdout"] for r in evaluate_campaign(big, BOOK, "everyone_10_again").collect()}
    assert other != first


def test_built_list_keeps_the_control_group_flagged(spark):
    world = {f"C{i:04d}": ("active", "广州市", 0, 1000.0, f"138{i:08d}", None) for i in range(400)}
    big = _inputs(spark, world, preferences=[("00000000000", None, "sms", True, dt.datetime(2026, 1, 1), "p")])
    rows = build_audience(evaluate_campaign(big, BOOK, "everyone_10"), BOOK, "everyone_10", 3, "abc", big.now, big.as_of).collect()
    assert len(rows) == 400
    assert {(r["campaign"], r["version"], r["channel"], r["definition_hash"], r["as_of_date"]) for r in rows} == {("everyone_10", 3, "sms", "abc", D)}
    assert 20 < sum(r["holdout"] for r in rows) < 60


def test_consent_latest_statement_per_identifier_and_any_opt_out_wins(spark):
    mentions = spark.createDataFrame(
        [("X", "13800000010", None, None), ("X", "13800000011", None, "440101199001011234"), ("Y", "13800000012", None, None)],
        "customer_id string, mobile string, mobile_alt string, id_number string",
    )
    prefs = spark.createDataFrame(
        [
            # X's first number: opted out, then back in (the latest counts).
            ("13800000010", None, "sms", False, dt.datetime(2024, 1, 1), "1"),
            ("13800000010", None, "sms", True, dt.datetime(2025, 1, 1), "2"),
            # X's ID number: opted out of phone; the number says yes to phone.
            (None, "440101199001011234", "phone", False, dt.datetime(2024, 1, 1), "3"),
            ("13800000011", None, "phone", True, dt.datetime(2026, 1, 1), "4"),
            # Y: opt-in and opt-out at the same instant: opt-out wins.
            ("13800000012", None, "email", True, dt.datetime(2025, 5, 5), "5"),
            ("13800000012", None, "email", False, dt.datetime(2025, 5, 5), "6"),
        ],
        "mobile string, id_number string, channel string, opt_in boolean, updated_at timestamp, record_id string",
    )
    consent = {(r["customer_id"], r["channel"]): (r["opted_out"], r["opted_in"]) for r in build_channel_consent(prefs, build_customer_identifiers(mentions)).collect()}
    assert consent == {("X", "sms"): (False, True), ("X", "phone"): (True, True), ("Y", "email"): (True, False)}


def test_duckdb_runs_the_same_campaign_query(spark, inputs):
    """The preview's engine (DuckDB) and the build's (Spark) give every customer the same
    flags, reason, membership and control group, for every campaign."""
    import duckdb

    from activation.campaign_sql import DUCKDB, SUPPRESSIONS, campaign_query

    con = duckdb.connect()
    frames = {
        "features": inputs.features, "profiles": inputs.profiles, "segments": inputs.segments, "home_dealers": inputs.home_dealers,
        "owned_models": inputs.owned_models, "reminders": inputs.reminders, "consent": inputs.consent, "contacts": inputs.contacts,
    }
    for name, frame in frames.items():
        rows = frame.collect()
        con.register(f"_{name}", __import__("pandas").DataFrame([r.asDict() for r in rows], columns=frame.columns))
        columns = ", ".join(f'CAST("{c}" AS {"DATE" if t == "date" else "TIMESTAMP" if t == "timestamp" else "BOOLEAN" if t == "boolean" else "DOUBLE" if t == "double" else "INTEGER" if t == "int" else "VARCHAR"}) AS "{c}"' for c, t in frame.dtypes)
        con.execute(f"CREATE VIEW {name} AS SELECT {columns} FROM _{name}")
    keep = ["customer_id", "eligible", "reason", "due_date", *SUPPRESSIONS, "member", "holdout"]
    for name in BOOK.campaigns:
        if name == "bad_feature":
            continue
        on_spark = sorted(tuple(r[c] for c in keep) for r in evaluate_campaign(inputs, BOOK, name).collect())
        query = campaign_query(BOOK, name, as_of=D, now=NOW, feature_columns=inputs.features.columns, dialect=DUCKDB)
        on_duckdb = sorted(con.execute(f"SELECT {', '.join(keep)} FROM ({query})").fetchall())
        assert on_duckdb == on_spark, name
