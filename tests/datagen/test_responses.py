"""Planted campaign responses: listed and control groups drawn at their rates, repair orders
that the service-orders feed parses, the same file for the same seed (no JVM)."""

from __future__ import annotations

import datetime as dt
import json
import math

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from cdp import catalog
from cdp.contract import CONTRACTS
from cdp.errors import UsageError
from cdp.reader import LakeReader
from datagen.responses import generate_responses
from ingestion.parsing import parse_csv_bytes

LISTED, CONTROL = 3000, 1000
LIST_DAY = dt.date(2026, 6, 30)


@pytest.fixture
def lake(tmp_path):
    root = str(tmp_path / "lake")
    reader = LakeReader(root)
    ids = [f"C{i:06d}" for i in range(LISTED + CONTROL)]
    write_deltalake(reader.path(catalog.AUDIENCE_VERSIONS), pa.table({
        "campaign": ["service_due", "service_due"], "version": [1, 2], "as_of_date": [LIST_DAY - dt.timedelta(days=30), LIST_DAY],
    }))
    write_deltalake(reader.path(catalog.AUDIENCES), pa.table({
        "campaign": ["service_due"] * len(ids), "version": [2] * len(ids), "customer_id": ids,
        "holdout": [i >= LISTED for i in range(len(ids))],
    }))
    write_deltalake(reader.path(catalog.CUSTOMERS), pa.table({
        "customer_id": ids, "name": ["王伟"] * len(ids), "mobile": [f"139{i:08d}" for i in range(len(ids))],
        "dealers": [["GZ001"]] * len(ids),
    }))
    # Every customer owns a car; the last one has also sold an older one.
    vehicles = [(c, f"LSVAA4182E2{i:06d}", "owner", dt.date(2025, 1, 1)) for i, c in enumerate(ids)]
    vehicles.append((ids[-1], "LSVAA4182E2999999", "owner", dt.date(2020, 1, 1)))
    write_deltalake(reader.path(catalog.CUSTOMER_VEHICLES), pa.table({
        "customer_id": [v[0] for v in vehicles], "vin": [v[1] for v in vehicles], "role": [v[2] for v in vehicles],
        "to_date": [v[3] for v in vehicles],
    }))
    return root, tmp_path / "raw"


def test_groups_respond_at_their_planted_rates(lake):
    root, raw = lake
    planted = generate_responses(root, raw, "service_due", window_days=45, base_rate=0.2, effect=0.1, seed=3)
    assert (planted.version, planted.listed, planted.control) == (2, LISTED, CONTROL)
    # Within four standard errors of the planted rates.
    for rate, n, hits in ((0.3, LISTED, planted.listed_responders), (0.2, CONTROL, planted.control_responders)):
        assert abs(hits / n - rate) < 4 * math.sqrt(rate * (1 - rate) / n), (hits, n, rate)
    assert planted.repair_orders == planted.listed_responders + planted.control_responders
    truth = json.loads((raw / "truth" / "responses_service_due_v2.json").read_text(encoding="utf-8"))
    assert truth["effect"] == 0.1 and truth["drawn_lift"] == pytest.approx(planted.drawn_lift)


def test_repair_orders_parse_as_the_service_feed_inside_the_window(lake):
    root, raw = lake
    planted = generate_responses(root, raw, "service_due", window_days=45, seed=3)
    files = sorted((raw / "service_orders").iterdir())
    assert [f.name for f in files] == ["responses_service_due_v2_part0001.csv"]
    header, rows = parse_csv_bytes(files[0].read_bytes())
    assert header == list(CONTRACTS["service_orders"].columns)
    assert len(rows) == planted.repair_orders and not any(error for _, _, error in rows)
    records = [dict(zip(header, values)) for _, values, _ in rows]
    assert len({r["ro_id"] for r in records}) == len(records)
    opened = [dt.datetime.strptime(r["opened_at"], "%Y/%m/%d %H:%M").date() for r in records]
    assert LIST_DAY < min(opened) and max(opened) < LIST_DAY + dt.timedelta(days=45)
    # The current car, under the golden profile's name and mobile.
    last = [r for r in records if r["contact_mobile"] == f"139{LISTED + CONTROL - 1:08d}"]
    assert all(r["vin"] == f"LSVAA4182E2{LISTED + CONTROL - 1:06d}" and r["owner_name"] == "王伟" for r in last)


def test_same_seed_same_file_and_a_wrong_campaign_or_version_is_named(lake):
    root, raw = lake
    generate_responses(root, raw / "a", "service_due", window_days=45, seed=3)
    generate_responses(root, raw / "b", "service_due", window_days=45, seed=3)
    name = "service_orders/responses_service_due_v2_part0001.csv"
    assert (raw / "a" / name).read_bytes() == (raw / "b" / name).read_bytes()
    with pytest.raises(UsageError, match="did you mean 'service_due'"):
        generate_responses(root, raw, "service_dew", window_days=45)
    with pytest.raises(UsageError, match="no version 5"):
        generate_responses(root, raw, "service_due", window_days=45, version=5)
    with pytest.raises(UsageError, match="rates"):
        generate_responses(root, raw, "service_due", window_days=45, base_rate=0.95, effect=0.1)
