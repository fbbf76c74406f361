"""Activation end to end on generated, resolved customers: reminders, versioned audiences,
exports with consent, masking and audit, the win-back model and list, and erasure."""

from __future__ import annotations

import csv
import datetime as dt
import glob
import logging
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from pyspark.sql import functions as F

from activation import erase as privacy
from activation import versions as audience
from activation.campaigns import CampaignBook, definition_hash
from activation.exports import ExportError
from activation.inputs import load_consent
from app.cli import main as cdp_main
from cdp import catalog
from cdp.activation_config import ActivationConfig, ExportsConfig, PrivacyConfig
from cdp.config import LakeConfig
from cdp.lake import Lake, read_table
from cdp.privacy import current_user
from cdp.vacuum import vacuum_lake
from tests.conftest import PIPELINE_AS_OF, RESOLVED_AS_OF, copy_pipeline, copy_resolved
from tests.steps import run_step

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]
D = RESOLVED_AS_OF
MOBILE = re.compile(r"(?<![\d.])1[3-9]\d{9}(?!\d)")
MASKED = re.compile(r"^\d{3}\*{4}\d{4}$")


@pytest.fixture(scope="module")
def world(resolved, ingested, tmp_path_factory):
    _, root, *_ = ingested
    base = tmp_path_factory.mktemp("activation")
    # A copy of the resolved lake: erasure must not touch other tests' data.
    config = copy_resolved(resolved, base)
    shutil.copytree(root / "raw", base / "raw")  # erasure adds a file; the shared feeds stay as they are
    conf = base / "conf"
    conf.mkdir()
    shutil.copy(ROOT / "conf" / "campaigns.yaml", conf / "campaigns.yaml")
    config = config.model_copy(
        update={
            "lake": LakeConfig(root=str(base / "lake"), raw_root=str(base / "raw")),
            "conf_dir": str(conf),
            "activation": ActivationConfig(exports=ExportsConfig(privileged_users=["alice"]), privacy=PrivacyConfig(vacuum_retention_hours=0)),
        }
    )
    profile = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text(encoding="utf-8"))
    profile.update(
        lake={"root": config.lake.root, "raw_root": config.lake.raw_root},
        mlflow={"tracking_uri": config.mlflow.tracking_uri, "artifact_root": config.mlflow.artifact_root},
        activation={"exports": {"privileged_users": ["alice"]}},
    )
    profile["spark"]["jars_dir"] = str(ROOT / "jars")
    (conf / "local.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True), encoding="utf-8")
    shutil.copy(ROOT / "conf" / "feeds.yaml", conf / "feeds.yaml")
    return config, Lake(config.lake.root), base


@pytest.fixture(scope="module")
def pipeline(local_pipeline, tmp_path_factory):
    """A private copy of the whole pipeline's run on the shared feeds (the cluster check's
    local run): every step's tables as of D and the models it trained. Tests of what a step
    leaves behind read it here instead of running the step again."""
    config, profile = copy_pipeline(local_pipeline, tmp_path_factory.mktemp("pipeline"))
    return config, Lake(config.lake.root), str(profile)


def _args(**kw):
    from activation.exports import ExportRequest

    defaults = {"fields": None, "format": "csv", "privileged": False, "purpose": None, "user": "bob"}
    o = {**defaults, **kw}
    return ExportRequest("audience", "", "", D, "", tuple(o["fields"] or ()), o["format"], o["out"], o["user"], o["privileged"], o["purpose"])


def test_reminders_job_is_idempotent(spark, world):
    config, lake, _ = world
    first = run_step(spark, config, "reminders", as_of=D)
    again = run_step(spark, config, "reminders", as_of=D)
    assert first.by_kind == again.by_kind and sum(first.by_kind.values()) > 0
    assert {"insurance_renewal", "birthday"} <= set(first.by_kind)
    table = read_table(spark, lake.path(catalog.REMINDERS))
    assert table.count() == sum(first.by_kind.values())
    assert table.filter(F.col("days_until_due") < -config.activation.reminders.overdue_days).count() == 0


def test_audience_versions(spark, world):
    config, lake, base = world
    now = dt.datetime(2026, 7, 1, 8)
    first = audience.build(spark, config, "insurance_renewal_wechat", D, now)
    rebuilt = audience.build(spark, config, "insurance_renewal_wechat", D, now)
    assert (first.version, first.rebuilt, rebuilt.version, rebuilt.rebuilt) == (1, False, 1, True)
    rows = read_table(spark, lake.path(catalog.AUDIENCES)).filter("campaign = 'insurance_renewal_wechat'")
    assert rows.count() == first.preview.members == rebuilt.preview.members > 0
    book = audience.load_campaigns(config)
    assert {r[0] for r in rows.select("definition_hash").distinct().collect()} == {definition_hash(book, "insurance_renewal_wechat")}
    # A changed definition is a new version; the old one stays.
    raw = yaml.safe_load((base / "conf" / "campaigns.yaml").read_text(encoding="utf-8"))
    raw["campaigns"]["insurance_renewal_wechat"]["holdout_percent"] = 30
    (base / "conf" / "campaigns.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    second = audience.build(spark, config, "insurance_renewal_wechat", D, now)
    assert (second.version, second.rebuilt) == (2, False)
    versions = read_table(spark, lake.path(catalog.AUDIENCE_VERSIONS)).filter("campaign = 'insurance_renewal_wechat'").orderBy("version").collect()
    assert [(v["version"], v["holdout"], v["members"]) for v in versions] == [
        (1, first.preview.holdout, first.preview.members), (2, second.preview.holdout, second.preview.members),
    ]
    assert versions[0]["definition_hash"] != versions[1]["definition_hash"]
    assert CampaignBook.model_validate({"campaigns": {"x": __import__("json").loads(versions[1]["definition"])}})


def test_campaigns_built_on_shared_inputs_match_campaigns_built_alone(spark, world):
    """`build --all` reads the inputs once; each campaign must still see the lists written
    before it (recently_contacted), exactly as when built alone."""
    config, lake, _ = world
    now = dt.datetime(2026, 7, 2, 8)
    book = audience.load_campaigns(config)
    shared = audience.audience_inputs(spark, config, D, now, cache=True)
    audience.build(spark, config, "birthday_wechat", D, now, shared=shared)
    # The campaigns that suppress recent contacts, on the shared inputs, until one meets the
    # birthday list (which of them does depends on the generated people).
    for name in [n for n, c in book.campaigns.items() if n != "birthday_wechat" and c.suppress.contacted_within_days]:
        together = audience.build(spark, config, name, D, now, shared=shared)
        if together.preview.suppressed_alone["recently_contacted"]:
            break
    else:
        pytest.fail("no campaign's audience meets the birthday list: the shared inputs cannot be told from stale ones")
    alone = audience.build(spark, config, name, D, now)
    assert together.version == alone.version and alone.rebuilt
    assert together.preview.suppressed_in_order == alone.preview.suppressed_in_order
    assert (together.preview.members, together.preview.listed) == (alone.preview.members, alone.preview.listed)
    # The birthday list, written after the shared inputs were read, suppresses some of them.
    assert together.preview.suppressed_alone["recently_contacted"] > 0


def test_lists_evaluated_by_duckdb_are_the_lists_spark_builds(spark, world, tmp_path):
    """Every campaign of the book built in order, as the audiences step builds them, on two
    copies of the lake: evaluated by Spark on one, by DuckDB over the tables' files on the
    other. The same lists row for row, the same versions and counts."""
    config, lake, _ = world
    now = dt.datetime(2026, 7, 5, 8)
    names = sorted(audience.load_campaigns(config).campaigns)
    built = {}
    for engine in ("spark", "duckdb"):
        root = tmp_path / engine
        shutil.copytree(lake.root, root)
        copy = config.model_copy(update={
            "lake": LakeConfig(root=str(root), raw_root=config.lake.raw_root),
            "activation": config.activation.model_copy(update={"list_engine": engine}),
        })
        shared = audience.campaign_inputs(spark, copy, D, now, cache=True)
        assert isinstance(shared, audience.LocalInputs) == (engine == "duckdb")
        reports = [audience.build(spark, copy, name, D, now, shared=shared) for name in names]
        copied = Lake(str(root))
        built[engine] = (
            [(r.campaign, r.version, r.rebuilt, r.preview.__dict__) for r in reports],
            sorted(read_table(spark, copied.path(catalog.AUDIENCES)).collect()),
            sorted(tuple(r) for r in read_table(spark, copied.path(catalog.AUDIENCE_VERSIONS)).collect()),
            read_table(spark, copied.path(catalog.AUDIENCES)).schema,
        )
    assert built["duckdb"] == built["spark"]
    # Lists with members, and a campaign that suppressed customers the lists built before it
    # had contacted: the comparison has something to compare.
    counts = [r[3] for r in built["spark"][0]]
    assert len(built["spark"][1]) > 0 and any(c["suppressed_alone"]["recently_contacted"] for c in counts), counts


def test_preview_without_a_jvm_gives_the_counts_spark_gives(spark, world, monkeypatch, capsys):
    """Every campaign of the book previewed twice: by Spark (as a build evaluates it) and by
    DuckDB over the gold tables (`cdp audience preview`); the same counts, no SparkSession."""
    from activation.preview import preview_from_lake
    from cdp.reader import LakeReader

    config, lake, base = world
    now = dt.datetime(2026, 7, 3, 8)
    run_step(spark, config, "ownership", as_of=D)
    audience.build(spark, config, "birthday_wechat", D, now)  # earlier lists: recently_contacted has work to do
    book = audience.load_campaigns(config)
    reader = LakeReader(config.lake.root)
    spark_counts = {}
    for name in book.campaigns:
        on_spark = spark_counts[name] = audience.preview(spark, config, name, D, now)
        local = preview_from_lake(reader, book, name, D, now)
        assert local.__dict__ == on_spark.__dict__, name
    assert sum(p.qualifying for p in spark_counts.values()) > 0 and sum(p.holdout for p in spark_counts.values()) > 0
    import cdp.spark

    monkeypatch.setattr(cdp.spark, "build_spark_session", lambda *a, **k: pytest.fail("a preview started Spark"))
    assert cdp_main(["audience", "preview", "birthday_wechat", "--json", "--conf", str(base / "conf" / "local.yaml")]) == 0
    shown = __import__("json").loads(capsys.readouterr().out)
    # Counts that do not depend on the time of day the preview runs.
    expected = spark_counts["birthday_wechat"]
    assert (shown["qualifying"], shown["suppressed_alone"]["opted_out"]) == (expected.qualifying, expected.suppressed_alone["opted_out"])


def test_exports_mask_by_default_and_audit_every_export(spark, world, tmp_path):
    config, lake, _ = world
    audience.build(spark, config, "birthday_wechat", D, dt.datetime(2026, 7, 1, 9))
    audit_path = lake.path(catalog.EXPORT_AUDIT)
    masked_file = tmp_path / "birthdays.csv"
    n = audience.export(spark, config, "birthday_wechat", _args(out=str(masked_file)))
    text = masked_file.read_text(encoding="utf-8")
    assert n > 0 and not MOBILE.search(text) and "****" in text
    with masked_file.open(encoding="utf-8") as handle:
        exported = {r["customer_id"] for r in csv.DictReader(handle)}
    consent = load_consent(spark, lake)
    opted_out = {r[0] for r in consent.filter("channel = 'wechat' AND opted_out").select("customer_id").collect()}
    listed = {r[0] for r in read_table(spark, lake.path(catalog.AUDIENCES)).filter("campaign = 'birthday_wechat' AND NOT holdout").select("customer_id").collect()}
    assert exported <= listed and not exported & opted_out
    # Privileged: refused for a user not listed (and nothing recorded), allowed for alice.
    with pytest.raises(ExportError, match="user 'bob' may not export unmasked contact details"):
        audience.export(spark, config, "birthday_wechat", _args(out=str(tmp_path / "nope.csv"), privileged=True, purpose="x"))
    assert not (tmp_path / "nope.csv").exists()
    full = tmp_path / "full.csv"
    audience.export(spark, config, "birthday_wechat", _args(out=str(full), privileged=True, purpose="birthday gift delivery", user="alice"))
    assert MOBILE.search(full.read_text(encoding="utf-8"))
    audit = read_table(spark, audit_path).orderBy("exported_at").collect()
    assert [(a["user"], a["masked"], a["privileged"], a["rows"], a["purpose"]) for a in audit] == [
        ("bob", True, False, n, None), ("alice", False, True, n, "birthday gift delivery"),
    ]
    assert audit[0]["fields"] == ["customer_id", "name", "mobile", "dealer_code", "reason"]
    assert not any(MOBILE.search(str(a.asDict())) for a in audit)


def test_winback_model_and_list(spark, pipeline, tmp_path, capsys):
    """The model the pipeline trained is champion with its holdout metrics; the list (made
    again here, replacing the pipeline's) ranks every dormant and lost owner with reasons; a
    masked export is audited."""
    from cdp.tracking import get_model_version

    config, lake, profile = pipeline
    champion = get_model_version(config, config.activation.winback.model_name, "champion")
    assert champion.version == "1"
    assert 0.0 <= champion.metrics["test_auc"] <= 1.0 and champion.metrics["test_rows"] > 0
    # Its requirements are the ones named, pinned, not whatever the training process had loaded.
    import mlflow.artifacts

    mlflow.set_registry_uri(config.mlflow_tracking_uri())
    uri = f"models:/{config.activation.winback.model_name}/{champion.version}/requirements.txt"
    needs = Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path), tracking_uri=config.mlflow_tracking_uri())).read_text().split()
    assert {n.split("==")[0] for n in needs} == {"mlflow", "scikit-learn", "skops", "numpy", "pandas", "scipy"}
    assert all("==" in n for n in needs)
    listed = run_step(spark, config, "winback", as_of=D)
    table = read_table(spark, lake.path(catalog.WINBACK)).collect()
    stages = read_table(spark, lake.path(catalog.CUSTOMER_FEATURES)).filter(
        (F.col("as_of_date") == F.lit(D)) & F.col("lifecycle_stage").isin("dormant", "lost")
    ).count()
    assert len(table) == sum(listed.by_stage.values()) == stages
    assert sorted(r["rank"] for r in table) == list(range(1, len(table) + 1))
    assert all(r["reason_codes"] and r["reason_codes"][0].startswith(("no visit for", "never serviced")) for r in table)
    out = tmp_path / "winback.csv"
    assert cdp_main(["winback", "export", "--out", str(out), "--conf", profile]) == 0
    with out.open(encoding="utf-8") as handle:
        exported = list(csv.DictReader(handle))
    assert exported and all(MASKED.match(r["mobile"]) for r in exported)
    assert [int(r["rank"]) for r in exported] == sorted(int(r["rank"]) for r in exported)
    assert set(exported[0]) == {"rank", "dealer_rank", "customer_id", "name", "mobile", "dealer_code", "lifecycle_stage", "reason_codes", "p_return", "expected_value"}
    audit = read_table(spark, lake.path(catalog.EXPORT_AUDIT)).filter(F.col("user") == current_user()).collect()
    assert [(a["list_kind"], a["rows"], a["channel"]) for a in audit] == [("winback", len(exported), "phone")]


def test_dealer_operations_steps_reconcile_with_the_feeds(spark, pipeline):
    """Satisfaction and the monthly dealer figures the pipeline wrote: every survey and lead
    before D is counted once, dealers add up to the group, a re-run replaces the date."""
    config, lake, _ = pipeline
    assert dt.date.fromisoformat(PIPELINE_AS_OF) == D
    surveys = read_table(spark, lake.path(catalog.silver("surveys"))).filter(
        (F.col("surveyed_at") < F.lit(dt.datetime(2026, 7, 1))) & F.col("overall_score").isNotNull()
    ).count()
    monthly = read_table(spark, lake.path(catalog.SATISFACTION_MONTHLY))
    assert surveys == monthly.agg(F.sum("surveys")).first()[0] > 0
    callbacks = read_table(spark, lake.path(catalog.SATISFACTION_CALLBACKS)).collect()
    assert all(c["overall_score"] < 75 for c in callbacks)
    opted_out = {r["customer_id"] for r in read_table(spark, lake.path(catalog.CUSTOMER_CONSENT)).filter("channel = 'phone' AND opted_out").collect()}
    assert not opted_out & {c["customer_id"] for c in callbacks}

    kpis = run_step(spark, config, "dealer_kpis", as_of=D)  # the pipeline ran it once already
    table = read_table(spark, lake.path(catalog.DEALER_KPIS_MONTHLY))
    assert table.count() == kpis.rows
    window_start = dt.date(2024, 7, 1)  # 24 months: July 2024 to June 2026
    leads = read_table(spark, lake.path(catalog.silver("leads"))).filter(
        (F.to_date("created_at") >= F.lit(window_start)) & (F.col("created_at") < F.lit(dt.datetime(2026, 7, 1)))
    ).count()
    totals = {r["level"]: (r["leads"], r["owners"]) for r in table.groupBy("level").agg(
        F.sum("leads").alias("leads"), F.sum(F.when(F.col("month") == F.lit(dt.date(2026, 6, 1)), F.col("owners"))).alias("owners")
    ).collect()}
    assert totals["dealer"] == totals["region"] == totals["group"] and totals["group"][0] == leads > 0
    customers = read_table(spark, lake.path(catalog.CUSTOMER_FEATURES)).filter(
        (F.col("as_of_date") == F.lit(D)) & F.col("lifecycle_stage").isin("new_owner", "active", "dormant", "lost")
    ).count()
    assert 0 < totals["group"][1] <= customers

    # Campaign results once every version's window is over: each group counted whole.
    later = D + dt.timedelta(days=120)
    results = run_step(spark, config, "campaign_results", as_of=later)
    audiences = read_table(spark, lake.path(catalog.AUDIENCES))
    sizes = {(r["campaign"], r["version"]): r["count"] for r in audiences.groupBy("campaign", "version").count().collect()}
    assert sizes and results.versions == len(sizes)
    measured = read_table(spark, lake.path(catalog.CAMPAIGN_RESULTS)).collect()
    assert {(r["campaign"], r["version"]): r["listed"] + r["control"] for r in measured} == sizes



def test_kpi_show_and_the_monthly_report_need_no_jvm(pipeline, tmp_path, monkeypatch, capsys):
    import json

    import cdp.spark

    _, lake, profile = pipeline

    def refuse(*_args, **_kwargs):
        raise AssertionError("a SparkSession was started")

    monkeypatch.setattr(cdp.spark, "build_spark_session", refuse)
    capsys.readouterr()
    assert cdp_main(["kpi", "show", "--json", "--conf", profile]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["month"] == "2026-06" and shown["complete"]
    dealers = [r for r in shown["rows"] if r["level"] == "dealer"]
    group = next(r for r in shown["rows"] if r["level"] == "group")
    assert dealers and sum(r["kpi"]["owners"] for r in dealers) == group["kpi"]["owners"]
    assert sum(r["complaints"]["cases"] for r in dealers) == group["complaints"]["cases"]
    dealer = max(dealers, key=lambda r: r["kpi"]["owners"])["dealer_code"]
    assert cdp_main(["kpi", "show", "--dealer", dealer, "--month", "2026-05", "--conf", profile]) == 0
    out = capsys.readouterr().out
    assert "2026-05" in out and dealer in out and "group" in out
    assert cdp_main(["kpi", "show", "--dealer", dealer + "X", "--conf", profile]) == 2
    assert "did you mean" in capsys.readouterr().err
    assert cdp_main(["kpi", "show", "--month", "2019-01", "--conf", profile]) == 2

    out_dir = tmp_path / "reports"
    assert cdp_main(["report", "dealer", "--dealer", dealer, "--out", str(out_dir), "--conf", profile]) == 0
    page = (out_dir / f"{dealer}-2026-06.html").read_text(encoding="utf-8")
    for heading in ("本月概览", "满意度", "投诉跟踪", "流失客户分析", "营销活动与提醒", "下月重点关注"):
        assert heading in page
    # Nothing loaded from anywhere: no scripts, styles or images by address, links only within the page.
    assert "<svg" in page and not re.search(r"<script|<link|<img|src=|url\((?!#)", page)
    assert set(re.findall(r'href="(.)', page)) <= {"#"} and not re.search(r"https?://(?!www\.w3\.org/)", page)
    assert not MOBILE.search(page)  # figures only: no contact details
    assert cdp_main(["report", "dealer", "--all", "--out", str(out_dir), "--conf", profile]) == 0
    pages = [p.read_text(encoding="utf-8") for p in out_dir.glob("*-2026-06.html")]
    assert len(pages) == len(dealers)
    # Survey items by the names the profile gives them, never by their codes: in the latest
    # month where a dealer's surveys scored items (a small lake may have none in June).
    from cdp.reader import LakeReader

    scored = LakeReader(lake.root).query(
        "SELECT dealer_code, month FROM s WHERE cardinality(item_avgs) > 0 AND complete ORDER BY month DESC, dealer_code LIMIT 1",
        {"s": catalog.SATISFACTION_MONTHLY})
    assert scored
    month = f"{scored[0]['month']:%Y-%m}"
    assert cdp_main(["report", "dealer", "--dealer", scored[0]["dealer_code"], "--month", month, "--out", str(out_dir), "--conf", profile]) == 0
    with_items = (out_dir / f"{scored[0]['dealer_code']}-{month}.html").read_text(encoding="utf-8")
    assert "<th>项目</th>" in with_items and "服务人员" in with_items and "<td>staff</td>" not in with_items
    assert cdp_main(["report", "dealer", "--out", str(out_dir), "--conf", profile]) == 2


def _vin(serial: int) -> str:
    """A VIN with a right check digit (ISO 3779), serial in the last six characters."""
    from datagen.identifiers import vin_check_digit

    body = f"LAUAA3B10MB{serial:06d}"
    return body[:8] + vin_check_digit(body) + body[9:]


def test_erasure_removes_the_person_everywhere(spark, world, resolved, monkeypatch, capsys, caplog):
    config, lake, base = world
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CDP_PRIVACY_KEY", "test-only-key")
    customers = read_table(spark, lake.path(catalog.CUSTOMERS))
    person = customers.filter(F.size("mobiles") >= 1).orderBy(F.desc("mention_count"), "customer_id").first()
    mobile = person["mobiles"][0]
    # Someone else is found by their resident ID, written either way (an old 15-digit form).
    holder = customers.filter(F.col("id_number").rlike("^[0-9]{6}19[0-9]{9}[0-9X]$") & (F.col("customer_id") != person["customer_id"])).first()
    old_form = holder["id_number"][:6] + holder["id_number"][8:17]
    for given in (holder["id_number"], old_form, f" {holder['id_number'][:6]}-{holder['id_number'][6:].lower()} "):
        assert holder["customer_id"] in privacy.plan_erasure(spark, lake, id_number=given).customer_ids, given
    assert cdp_main(["privacy", "erase", "--id-number", old_form, "--dry-run", "--conf", str(base / "conf" / "local.yaml")]) == 0
    assert "customer(s)" in capsys.readouterr().out
    # Late orders of the person that never reach silver: quarantined for a rule other than
    # parsing (a price with a stray letter), the mobile typed with separators and a prefix.
    typed = f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
    header = "order_id,dealer_code,order_date,delivery_date,customer_type,customer_name,gender,birth_date,id_number,mobile,phone_alt,email,province,city,district,address,vin,plate_no,brand,model,model_year,price,payment_method,sales_consultant,lead_id"
    late = [
        f"SOERASE1,GZ001,2026-06-01,,individual,某某,F,,,{typed},,erase-me-1@example.com,广东省,广州市,天河区,删除路1号,{_vin(900001)},粤ZERASE1,Aurora,A3,2026,\"1,200.00x\",cash,,",
        f"SOERASE2,GZ001,2026-06-02,,individual,某某,F,,,{mobile},,erase-me-2@example.com,广东省,广州市,天河区,删除路2号,{_vin(900002)},粤ZERASE2,Aurora,A3,2026,oops,cash,,",
        # Loaded after the last resolution: in silver, not yet in any customer.
        f"SOERASE3,GZ001,2026-06-03,,individual,某某,F,,,{typed},,erase-me-3@example.com,广东省,广州市,天河区,删除路3号,{_vin(900003)},粤ZERASE3,Aurora,A3,2026,100000.0,cash,,",
        *(f"SOLATE{i:03d},GZ001,2026-06-03,,individual,路人,M,,,150{i:08d},,,广东省,广州市,天河区,,{_vin(800000 + i)},,Aurora,A3,2026,100000.0,cash,,"
          for i in range(45)),
    ]
    (Path(config.lake.raw_root) / "sales_orders" / "late_orders.csv").write_text("\n".join([header, *late]) + "\n", encoding="utf-8")
    loaded = run_step(spark, config, "ingest", feed=["sales_orders"])
    assert loaded.errors == [] and loaded.feeds[0].files_new == 1, loaded.report.lines
    quarantine = read_table(spark, lake.path(catalog.quarantine("sales_orders"))).filter(F.col("_raw.order_id").startswith("SOERASE"))
    assert quarantine.count() == 2 and "number_format:price" in {r["_rule"] for r in quarantine.collect()}
    plan = privacy.plan_erasure(spark, lake, mobile=mobile)
    assert person["customer_id"] in plan.customer_ids
    counts = privacy.erase(spark, config, plan, "mobile", "token-abc", "dpo")
    assert counts["gold.customers"] == len(plan.customer_ids)
    assert {"silver.sales_orders", "bronze.sales_orders", "gold.person_mentions", "gold.customer_xref", "gold.customer_features"} <= set(counts)
    vacuum_lake(spark, lake, 0, allow_short_retention=True)
    needles = [*plan.mobiles, *plan.id_numbers, *plan.customer_ids, typed, "erase-me-", "删除路", "粤ZERASE"]
    for path in glob.glob(f"{lake.root}/**/*.parquet", recursive=True):
        text = str(pq.read_table(path).to_pylist())
        assert not [n for n in needles if n in text], path
    for path in glob.glob(f"{lake.root}/**/_delta_log/*.json", recursive=True):
        text = Path(path).read_text(encoding="utf-8")
        assert not [n for n in [*plan.mobiles, *plan.id_numbers] if n in text], path
    # Validation results and everything the run logged or printed hold none of it either.
    results = glob.glob(f"{lake.root}/_validation/**/*.json", recursive=True)
    assert results
    for path in results:
        text = Path(path).read_text(encoding="utf-8")
        assert not [n for n in [*plan.mobiles, *plan.id_numbers, typed] if n in text], path
    # MLflow (runs, models, artifacts) keeps feature values and model files, never identifiers.
    # (The linkage run's artifacts are in the shared resolved lake's store, which this copy started from.)
    roots = (Path(config.mlflow.artifact_root), resolved[1] / "mlruns")
    mlflow_files = [p for p in [Path(config.mlflow.tracking_uri), *(f for root in roots for f in root.rglob("*"))] if p.is_file()]
    for path in mlflow_files:
        data = path.read_bytes()
        assert not [n for n in [*plan.mobiles, *plan.id_numbers] if n.encode() in data], path
    said = caplog.text + "".join(capsys.readouterr())
    assert not [n for n in [*plan.mobiles, *plan.id_numbers, typed, "删除路"] if n in said]
    log = read_table(spark, lake.path(catalog.ERASURE_LOG)).collect()
    assert [(r["subject_kind"], r["subject_token"], r["customers"]) for r in log] == [("mobile", "token-abc", len(plan.customer_ids))]
    # A second request finds nobody.
    again = privacy.plan_erasure(spark, lake, mobile=person["mobiles"][0])
    assert again.customer_ids == [] and again.mention_ids == []


def test_no_table_keeps_statistics_of_personal_data(local_pipeline, world):
    """Every table of a lake the whole pipeline wrote (bronze to gold and _ops), and of this
    module's lake with its exports, audits and erasures: no personal or vehicle-identifying
    column keeps min/max values in `_delta_log`; other columns do."""
    from cdp.delta_stats import _stats_of_log, personal_statistics

    _, work, _ = local_pipeline
    lake = Lake(str(work / "local" / "lake"))
    tables = sorted(Path(lake.root).rglob("_delta_log"))
    assert len(tables) >= 25
    assert {catalog.AUDIENCES.name, catalog.WINBACK.name, catalog.CUSTOMER_CONSENT.name} <= {t.parent.name for t in tables}
    assert personal_statistics(lake.root) == []
    assert personal_statistics(world[1].root) == []
    kept = {p for _, stats in _stats_of_log(Path(lake.path(catalog.CUSTOMERS)) / "_delta_log") for p in stats.get("minValues", {})}
    assert "customer_id" in kept and "name" not in kept


def test_every_opt_out_reaches_the_person_and_no_list_by_the_truth(local_pipeline, ingested, no_spark):
    """Against the generator's truth (whose each record and preference row is), on the lake the
    whole pipeline wrote: every opt-out made with an identifier the person's records carry
    reaches the person's customers, and no row of a built list belongs to a person who opted out
    of its channel. What still leaks is a fragment that resolution split from the person and
    that shares nothing with the fragment the opt-out reached (here: a lead with the same name
    and the person's older mobile, nothing else), counted, not hidden."""
    from activation.consent_truth import opt_out_leaks
    from cdp.reader import LakeReader

    _, work, _ = local_pipeline
    _, root, *_ = ingested
    figures = opt_out_leaks(LakeReader(str(work / "local" / "lake")), root / "raw" / "truth")
    assert figures["opted_out_people"] > 0 and figures["reachable"] > 0 and figures["audience_rows"] > 0
    assert (figures["leaked_missed"], figures["audience_rows_leaked"]) == (0, 0), figures


@pytest.mark.reliability
def test_an_audience_build_killed_before_a_commit_then_rerun_equals_a_clean_run(spark, world, tmp_path):
    import random

    from cdp import faults
    from cdp.reliability import lake_fingerprint

    config, lake, _ = world
    now = dt.datetime(2026, 7, 4, 8)

    def copy(name):
        shutil.copytree(lake.root, tmp_path / name)
        return config.model_copy(update={"lake": LakeConfig(root=str(tmp_path / name), raw_root=config.lake.raw_root)})

    clean = copy("clean")
    with faults.counting_commits() as counted:
        audience.build(spark, clean, "warranty_expiry_phone", D, now)
    expected = lake_fingerprint(clean.lake.root)
    assert counted.seen >= 2 and expected["gold/audiences"]["rows"] > 0
    for point in sorted(random.Random(20261201).sample(range(1, counted.seen + 1), 2)):
        crashed = copy(f"crash_{point}")
        with pytest.raises(faults.InjectedCrash), faults.crash_before_commit(point):
            audience.build(spark, crashed, "warranty_expiry_phone", D, now)
        audience.build(spark, crashed, "warranty_expiry_phone", D, now)
        assert lake_fingerprint(crashed.lake.root) == expected, f"crash before commit {point}"
