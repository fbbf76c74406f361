"""The generator: deterministic per seed, a truth row for every mention, messy but valid ids (no JVM)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from stdnum.cn import ric

from cdp.contract import CONTRACTS
from datagen import generate
from datagen.identifiers import vin_check_digit

ROLES = {
    "sales_orders": {"buyer"},
    "leads": {"prospect"},
    "service_orders": {"owner", "contact"},
    "warranty_claims": {"customer"},
    "complaints": {"caller"},
    "surveys": {"respondent"},
}


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.*"))}


def _records(out: Path, feed: str) -> list[dict[str, str | None]]:
    rows: list[dict[str, str | None]] = []
    for path in sorted((out / feed).iterdir()):
        if path.suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as handle:
                rows += list(csv.DictReader(handle))
        elif path.suffix == ".jsonl":
            rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        else:
            rows += pq.read_table(path).to_pylist()
    return rows


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    summary = generate(300, 7, out, error_rate=0.0)
    return out, summary


def test_same_seed_same_bytes_other_seed_differs(tmp_path, generated):
    out, _ = generated
    generate(300, 7, tmp_path / "again", error_rate=0.0)
    generate(300, 8, tmp_path / "other", error_rate=0.0)
    assert _digest(tmp_path / "again") == _digest(out)
    assert _digest(tmp_path / "other") != _digest(out)


def test_every_feed_has_contract_columns_and_counts(generated):
    out, summary = generated
    for feed, contract in CONTRACTS.items():
        rows = _records(out, feed)
        assert len(rows) == summary.records[feed] > 0
        assert list(rows[0]) == list(contract.columns)
    assert summary.total_records >= 300 * 8


def test_truth_maps_every_mention_to_one_person(generated):
    out, _ = generated
    with (out / "truth" / "mentions.csv").open(encoding="utf-8") as handle:
        truth = list(csv.DictReader(handle))
    keys = Counter((t["feed"], t["record_id"], t["role"]) for t in truth)
    assert max(keys.values()) == 1
    for feed, roles in ROLES.items():
        key = CONTRACTS[feed].keys[0]
        ids = {r[key] for r in _records(out, feed)}
        for role in roles:
            assert {t["record_id"] for t in truth if t["feed"] == feed and t["role"] == role} == ids
    assert all(re.fullmatch(r"[PC]\d{6,7}", t["person_id"]) for t in truth)


def test_clean_identifiers_have_valid_check_digits_and_messy_ones_exist(generated):
    out, _ = generated
    sales = _records(out, "sales_orders")
    vins = [r["vin"] for r in sales]
    assert all(v[8] == vin_check_digit(v) for v in vins)
    ids = [r["id_number"] for r in sales if r["customer_type"] == "individual" and r["id_number"]]
    valid = sum(ric.calc_check_digit(i) == i[17] for i in ids)
    assert 0.85 < valid / len(ids) < 1.0  # most valid, a few mistyped
    mobiles = [r["mobile"] for r in sales]
    assert any(m.startswith("+86 ") for m in mobiles) and any(re.fullmatch(r"1\d{10}", m) for m in mobiles)
    claims = [r["customer_name"] for r in _records(out, "warranty_claims")]
    assert any(re.fullmatch(r"[A-Za-z]+ [A-Za-z]+", n or "") for n in claims)  # pinyin spellings
    with (out / "truth" / "mentions.csv").open(encoding="utf-8") as handle:
        truth = list(csv.DictReader(handle))
    contacts = {t["record_id"]: t["person_id"] for t in truth if t["role"] == "contact"}
    owners = {t["record_id"]: t["person_id"] for t in truth if t["role"] == "owner"}
    assert any(contacts[k] != owners[k] for k in owners)  # family members and drivers bring cars


def test_hard_cases_of_dealer_records(generated):
    """Full names with a form of address after them, and warranty claims that name nobody:
    only the repair order's number and the car say whose claim it is."""
    out, _ = generated
    names = [r["owner_name"] for r in _records(out, "service_orders")] + [r["customer_name"] for r in _records(out, "sales_orders")]
    assert any(re.fullmatch(r"[\u4e00-\u9fff]{3,4}(先生|女士)", n or "") for n in names)
    claims = _records(out, "warranty_claims")
    anonymous = [c for c in claims if not c["customer_name"] and not c["customer_mobile"]]
    assert 0.03 < len(anonymous) / len(claims) < 0.3
    repair_orders = {r["ro_id"] for r in _records(out, "service_orders")}
    assert all(c["ro_id"] in repair_orders and c["vin"] for c in anonymous)


def test_error_rate_injects_faults(tmp_path):
    summary = generate(200, 1, tmp_path, error_rate=0.05)
    rows = _records(tmp_path, "sales_orders")
    faults = [
        r for r in rows
        if r["order_date"] in ("2023-02-30", "31/12/2022", "unknown")
        or r["price"] in ("-1200", "abc", "1,200.00x")
        or r["customer_type"] == "UNKNOWN"
        or not r["dealer_code"]
    ]
    assert 0 < len(faults) < 0.15 * len(rows)
    assert summary.records["sales_orders"] == len(rows)


def test_dealer_operations_patterns(generated):
    """Repeat bursts the repeat rule must catch, and Friday-evening complaints."""
    import datetime as dt

    out, _ = generated
    complaints = _records(out, "complaints")
    received = [(c, dt.datetime.fromisoformat(str(c["received_at"]))) for c in complaints]
    per_month = Counter((c["dealer_code"], c["category"], f"{at:%Y-%m}") for c, at in received)
    assert max(per_month.values()) > 3
    assert sum(1 for _, at in received if at.weekday() == 4 and at.hour >= 18) >= 3


def test_each_dealer_has_its_own_satisfaction_level_and_items():
    from datagen.dealer_patterns import DealerPatterns

    one, same, other = DealerPatterns(7), DealerPatterns(7), DealerPatterns(8)
    assert one.bias("GZ001") == same.bias("GZ001") != other.bias("GZ001")
    levels = {round(one.bias(d)[0], 6) for d in ("GZ001", "GZ002", "SZ001", "BJ003")}
    assert len(levels) == 4
    overall, items = one.bias("GZ001")
    score, scored = one.survey_scores("GZ001", 80, {"staff": 80.0, "process": 150.0})
    assert score == max(0, min(100, round(80 + overall)))
    assert scored == {"staff": max(0, min(100, round(80 + overall + items["staff"]))), "process": 100}


def test_some_lapsed_owners_come_back(generated):
    """A VIN whose visits stop for over 700 days (the longest service interval is 438) and then
    resume: lost owners who returned."""
    import pandas as pd

    out, _ = generated
    visits: dict[str, list] = {}
    for order in _records(out, "service_orders"):
        opened = pd.to_datetime(str(order["opened_at"]), format="mixed", errors="coerce")  # dealers write dates many ways
        if not pd.isna(opened):
            visits.setdefault(str(order["vin"]).upper().strip(), []).append(opened)
    returned = [vin for vin, days in visits.items() if any((b - a).days > 700 for a, b in zip(sorted(days), sorted(days)[1:]))]
    assert 0.015 < len(returned) / len(visits) < 0.3  # none without returns


def test_loyal_and_premium_owners_return_more_often_complainers_less():
    from datagen.returns import LapsedReturns

    p = LapsedReturns.probability
    assert p(6, False, 119_800) > p(1, False, 119_800) and p(1, False, 319_800) > p(1, False, 119_800)
    assert p(3, True, 199_800) < p(3, False, 199_800) and 0 < p(0, True, 119_800) < p(9, False, 449_800) <= 0.7


def test_vins_stay_valid_and_distinct_past_a_million_vehicles() -> None:
    """A population of over a million vehicles (the 1M-customer bench) keeps 17-character VINs."""
    import random

    from datagen.identifiers import vin

    rng = random.Random(7)
    serials = [0, 1, 999_999, 1_000_000, 1_000_001, 2_999_999, 3_000_000, 15_000_000]
    vins = [vin(rng, "AA3B1", 2026, serial) for serial in serials]
    assert all(len(v) == 17 and v[8] == vin_check_digit(v) for v in vins)
    assert len(set(v[9:] for v in vins)) == len(vins)  # the same model and year, still distinct
    assert all(re.fullmatch(r"[A-HJ-NPR-Z0-9]{17}", v) for v in vins)  # the platform's rule: no I, O or Q
