"""The ingest job on generated data: every feed reconciles, re-runs change nothing, new files add only their rows."""

from __future__ import annotations

import shutil

import pytest
from pyspark.testing import assertDataFrameEqual

from app.steps.ingest import format_reports
from cdp import catalog
from cdp.contract import CONTRACTS
from cdp.lake import Lake, read_table
from ingestion import ingest_feeds

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def job(ingested):
    return ingested


def _snapshot(spark, lake: Lake) -> dict[str, object]:
    tables = {}
    for feed in CONTRACTS:
        for path in (lake.path(catalog.bronze(feed)), lake.path(catalog.silver(feed)), lake.path(catalog.quarantine(feed))):
            tables[path] = read_table(spark, path).drop("_loaded_at")
    return tables


def test_every_feed_loads_and_reconciles(job):
    _, _, summary, reports, errors = job
    assert errors == []
    assert {r.feed: r.rows_read for r in reports} == summary.records
    assert all(r.reconciled for r in reports)
    assert sum(r.rows_quarantined for r in reports) > 0
    assert "total" in format_reports(reports)


def test_silver_is_typed_and_standardised(spark, job):
    config, *_ = job
    lake = Lake(config.lake.root)
    so = read_table(spark, lake.path(catalog.silver("service_orders")))
    types = dict(so.dtypes)
    assert (types["opened_at"], types["mileage_km"], types["total_amount"], types["contact_mobile_valid"]) == (
        "timestamp", "int", "decimal(14,2)", "boolean")
    assert so.filter("contact_mobile rlike '^1[3-9][0-9]{9}$'").count() > 0.9 * so.count()
    sales = read_table(spark, lake.path(catalog.silver("sales_orders")))
    assert sales.filter("id_type = 'resident_id' and id_valid and id_birth_date is not null").count() > 0
    assert sales.filter("customer_type = 'company' and id_type = 'uscc'").count() == sales.filter("customer_type = 'company'").count()


def test_rerun_leaves_tables_as_after_one_run(spark, job):
    config, *_ = job
    lake = Lake(config.lake.root)
    before = _snapshot(spark, lake)
    reports, errors = ingest_feeds(spark, config, Lake(config.lake.root))
    assert errors == []
    assert all(r.files_new == 0 and r.files_skipped >= 1 for r in reports)
    after = _snapshot(spark, lake)
    for path, table in before.items():
        assertDataFrameEqual(after[path], table)


def test_new_file_adds_only_its_rows_and_updates_resent_records(spark, job):
    config, root, *_ = job
    lake = Lake(config.lake.root)
    silver_before = read_table(spark, lake.path(catalog.silver("leads"))).count()
    part = next((root / "raw" / "leads").glob("*.jsonl"))
    first_line = part.read_text(encoding="utf-8").splitlines()[0]
    resent = first_line.replace('"status": "won"', '"status": "dormant"').replace('"status": "open"', '"status": "dormant"').replace('"status": "lost"', '"status": "dormant"')
    new = first_line.replace('"lead_id": "L', '"lead_id": "NEW')
    (root / "raw" / "leads" / "leads_update.jsonl").write_text(resent + "\n" + new + "\n", encoding="utf-8")
    # The same bytes under another name are not loaded twice.
    shutil.copy(part, root / "raw" / "leads" / "copy_of_part.jsonl")
    reports, errors = ingest_feeds(spark, config, Lake(config.lake.root), ["leads"])
    assert errors == []
    assert (reports[0].files_new, reports[0].rows_read) == (1, 2)
    silver = read_table(spark, lake.path(catalog.silver("leads")))
    assert silver.count() == silver_before + 1
    lead_id = first_line.split('"lead_id": "')[1].split('"')[0]
    assert silver.filter(silver.lead_id == lead_id).first().status == "dormant"
