"""Resolution end to end on generated data: gold tables, MLflow, stable IDs, incremental
runs, reviewers' overrides, the customer view, and each linkage engine.

The tests share one lake and run in file order; each leaves it fully resolved.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml
from pyspark.sql import functions as F

from cdp import catalog
from cdp.lake import Lake, overwrite_table, read_table
from entity_resolution.crosswalk import build_customer_xref, build_review_pairs
from entity_resolution.evaluation import pairwise_scores, truth_mentions
from entity_resolution.golden import build_customer_vehicles, build_customers
from entity_resolution.resolve import resolve_identities as run
from tests.conftest import copy_resolved

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resolved(resolved, ingested, tmp_path_factory):
    """A copy of the run's shared resolved lake (a full run scored against the truth), with
    a conf folder of its own for reviewers' decisions."""
    _, root, *_ = ingested
    config = copy_resolved(resolved, tmp_path_factory.mktemp("resolve"))
    config = config.model_copy(update={"conf_dir": str(tmp_path_factory.mktemp("conf"))})
    return config, resolved[2], Lake(config.lake.root), str(root / "raw" / "truth" / "mentions.csv")


def _xref(spark, lake):
    return {r.mention_id: r.customer_id for r in read_table(spark, lake.path(catalog.CUSTOMER_XREF)).collect()}


def _gold(spark, lake, name):
    return read_table(spark, lake.path(catalog.by_label(f"gold/{name}")))


def _pairs_files_in_order(lake) -> bool:
    """Every current file of `gold/match_pairs` in (mention_id_l, mention_id_r) order, as written."""
    import duckdb
    from deltalake import DeltaTable

    files = DeltaTable(lake.path(catalog.MATCH_PAIRS)).file_uris()
    out_of_order = duckdb.sql(
        "SELECT count(*) FROM (SELECT filename, mention_id_l, mention_id_r, lag(mention_id_l) OVER w AS l, lag(mention_id_r) OVER w AS r "
        "FROM read_parquet($files, filename = true, file_row_number = true) WINDOW w AS (PARTITION BY filename ORDER BY file_row_number)) "
        "WHERE l IS NOT NULL AND (mention_id_l, mention_id_r) < (l, r)",
        params={"files": [f.removeprefix("file://") for f in files]},
    ).fetchall()[0][0]
    return bool(files) and out_of_order == 0


def test_full_run_writes_consistent_gold_tables(spark, resolved):
    _, report, lake, _ = resolved
    assert spark.conf.get("parquet.block.size", None) is None  # the pairs' row-group size was for their write only
    assert _pairs_files_in_order(lake)
    mentions = _gold(spark, lake, "person_mentions")
    xref = _gold(spark, lake, "customer_xref")
    customers = _gold(spark, lake, "customers")
    unidentified = _gold(spark, lake, "unidentified_records")
    # Every person in every source record has exactly one customer, or names nobody and is set
    # aside; every customer has a profile.
    assert xref.count() == xref.select("mention_id").distinct().count() == report.mentions - report.unidentified
    assert unidentified.count() == report.unidentified and unidentified.join(xref, "mention_id").count() == 0
    assert xref.select("mention_id").union(unidentified.select("mention_id")).distinct().count() == mentions.count() == report.mentions
    assert xref.filter(F.col("customer_id").isNull()).count() == 0
    # No customer is made only of records that name nobody; no unidentified record names anybody.
    from entity_resolution.attach import is_strong

    strength = mentions.select("mention_id", is_strong().cast("int").alias("strong"))
    assert xref.join(strength, "mention_id").groupBy("customer_id").agg(F.max("strong").alias("s")).filter("s = 0").count() == 0
    assert unidentified.join(strength, "mention_id").filter("strong = 1").count() == 0
    assert customers.count() == customers.select("customer_id").distinct().count() == report.customers
    assert xref.select("customer_id").distinct().join(customers, "customer_id", "left_anti").count() == 0
    assert customers.join(xref, "customer_id", "left_anti").count() == 0
    assert set(r.role for r in xref.select("role").distinct().collect()) == {"primary", "contact"}
    counted = customers.select(F.aggregate(F.map_values("record_counts"), F.lit(0).cast("long"), lambda a, b: a + b).alias("n"))
    assert counted.agg(F.sum("n")).first()[0] == report.mentions - report.unidentified
    vehicles = _gold(spark, lake, "customer_vehicles")
    assert vehicles.join(customers, "customer_id", "left_anti").count() == 0
    assert vehicles.filter("is_current_owner").groupBy("vin").count().filter("count > 1").count() == 0
    review = _gold(spark, lake, "resolution_review")
    assert {r.kind for r in review.select("kind").distinct().collect()} <= {"near_miss", "weak_join"}
    assert report.scores["pairwise_f1"] > 0.9, report.scores


def test_training_run_is_tracked_in_mlflow_without_personal_data(spark, resolved):
    import mlflow

    config, report, lake, _ = resolved
    client = mlflow.MlflowClient(tracking_uri=config.mlflow_tracking_uri())
    run_info = client.get_run(report.mlflow_run_id)
    assert client.get_experiment(run_info.info.experiment_id).name == "identity_resolution"
    assert run_info.data.params["engine"] == "duckdb"
    assert float(run_info.data.params["match_threshold"]) == config.resolution.match_threshold
    assert run_info.data.metrics["customers"] == report.customers
    assert run_info.data.metrics["pairwise_f1"] == pytest.approx(report.scores["pairwise_f1"])
    artifacts = {a.path for top in client.list_artifacts(report.mlflow_run_id) for a in client.list_artifacts(report.mlflow_run_id, top.path)}
    charts = {"match_weights.png", "match_weights.html", "m_u_parameters.html", "waterfall.html", "cluster_studio.html"}
    assert artifacts == {"model/splink_model.json"} | {f"charts/{c}" for c in charts}
    local = Path(mlflow.artifacts.download_artifacts(run_id=report.mlflow_run_id, tracking_uri=config.mlflow_tracking_uri()))
    data = b"\n".join(p.read_bytes() for p in local.rglob("*") if p.is_file())
    # The HTML charts render offline: their scripts are inline, nothing loads from the network.
    for chart in ("match_weights", "m_u_parameters", "waterfall", "cluster_studio"):
        html = (local / "charts" / f"{chart}.html").read_text(encoding="utf-8")
        assert "vega" in html and not re.search(r"<script[^>]+src=[\"']https?:", html), chart
    # The sample pairs and clusters show real records, masked: 138****8000, a birth year.
    studio = (local / "charts" / "cluster_studio.html").read_text(encoding="utf-8")
    assert re.search(r'"mobile": "1\d\d\*\*\*\*\d{4}"', studio) and re.search(r'"birth_date": "(19|20)\d\d-\*\*-\*\*"', studio)
    customers = _gold(spark, lake, "customers").select("name", "name_pinyin", "mobile", "id_number", "email", "birth_date").collect()
    values = {str(v) for row in customers for v in row if v and len(str(v)) >= 4}
    values |= {r.vin for r in _gold(spark, lake, "customer_vehicles").select("vin").collect() if r.vin}
    assert values and not [v for v in values if v.encode() in data]


def test_the_linkage_model_is_registered_and_a_rerun_scores_with_it_keeping_every_id(spark, resolved):
    """Each full run registers its model as the champion version of `resolution.model_name`;
    the registered model loads and scores records without Spark. The next full run on the
    same data scores with that champion: the same pairs to the last bit, the same IDs, no
    history events."""
    import mlflow

    from cdp.tracking import get_model_version, list_model_versions

    config, report, lake, _ = resolved
    name = config.resolution.model_name
    champion = get_model_version(config, name, "champion")
    assert report.model_source == "trained" and report.model_version == champion.version and champion.run_id == report.mlflow_run_id
    assert champion.metrics["pairwise_f1"] == pytest.approx(report.scores["pairwise_f1"])
    assert [v.version for v in list_model_versions(config, name)][0] == champion.version
    mlflow.set_tracking_uri(config.mlflow_tracking_uri())
    # No personal data in what the registry holds either.
    registered = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}@champion"))
    files = [p for p in registered.rglob("*") if p.is_file()]
    data = b"\n".join(p.read_bytes() for p in files)
    customers = _gold(spark, lake, "customers").select("name", "name_pinyin", "mobile", "id_number", "email").collect()
    values = {v for row in customers for v in row if v and len(v) >= 4}
    assert files and values and not [v for v in values if v.encode() in data]
    scorer = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    mentions = _gold(spark, lake, "person_mentions").toPandas()  # all of them: term frequencies as in the run
    pairs = scorer.predict(mentions)
    stored = {(r["mention_id_l"], r["mention_id_r"]): r["match_probability"] for r in _gold(spark, lake, "match_pairs").collect()}
    scored = {(min(a, b), max(a, b)): p for a, b, p in pairs[["mention_id_l", "mention_id_r", "match_probability"]].itertuples(index=False)}
    shared = [k for k in scored if k in stored]
    assert shared and all(scored[k] == pytest.approx(stored[k], rel=1e-9) for k in shared)
    # The next full run scores with the champion instead of training: same pairs, no new version.
    before = _xref(spark, lake)
    ordered = sorted(_gold(spark, lake, "match_pairs").collect())
    again = run(spark, config, track=True)
    assert (again.model_source, again.model_version) == ("champion", champion.version)
    assert [v.version for v in list_model_versions(config, name)] == [champion.version]
    assert {(r["mention_id_l"], r["mention_id_r"]): r["match_probability"] for r in _gold(spark, lake, "match_pairs").collect()} == stored
    # Same data, same customers: every ID kept, every score the same to the last bit.
    assert _xref(spark, lake) == before
    assert sorted(_gold(spark, lake, "match_pairs").collect()) == ordered
    assert again.events == {}
    assert _gold(spark, lake, "customer_id_history").count() == 0


def _comparable(df):
    """Rows as a set operation can compare them (maps as sorted entries)."""
    return df.select(*[
        F.to_json(F.array_sort(F.map_entries(c))).alias(c) if t.startswith("map<") else F.col(c) for c, t in df.dtypes
    ])


def _rebuilt(spark, lake, config):
    """Customers, vehicles, review queue and crosswalk rebuilt whole from the current
    mentions, crosswalk and pairs: what the gold tables must hold."""
    mentions = _gold(spark, lake, "person_mentions")
    assigned = _gold(spark, lake, "customer_xref").select("mention_id", "customer_id").localCheckpoint()
    pairs = _gold(spark, lake, "match_pairs")
    resolved = mentions.join(assigned, "mention_id")
    return {
        "customers": build_customers(resolved, config.resolution),
        "customer_vehicles": build_customer_vehicles(resolved),
        "resolution_review": build_review_pairs(pairs, assigned, config.resolution),
        "customer_xref": build_customer_xref(mentions, assigned, pairs, config.resolution.match_threshold),
    }


def test_incremental_run_agrees_with_the_full_run(spark, resolved):
    config, _, lake, truth = resolved
    full = _gold(spark, lake, "customer_xref").select("mention_id", "customer_id").cache()
    full.count()
    # Pretend one record in ten arrived after the last run: unknown to the crosswalk and unscored.
    late = full.filter(F.abs(F.hash("mention_id")) % 10 == 0).select("mention_id").cache()
    assert late.count() > 0
    pairs = _gold(spark, lake, "match_pairs")
    kept_pairs = pairs.join(late.withColumnRenamed("mention_id", "mention_id_l"), "mention_id_l", "left_anti").join(
        late.withColumnRenamed("mention_id", "mention_id_r"), "mention_id_r", "left_anti"
    )
    kept_xref = _gold(spark, lake, "customer_xref").join(late, "mention_id", "left_anti")
    # And one mention of a customer the late records do not touch was corrected in its source since.
    untouched = full.join(full.join(late, "mention_id", "left_semi").select("customer_id"), "customer_id", "left_anti")
    corrected = untouched.orderBy("mention_id").first().mention_id
    kept_mentions = _gold(spark, lake, "person_mentions").join(late, "mention_id", "left_anti").withColumn(
        "dealer_code", F.when(F.col("mention_id") == corrected, F.lit("ZZ-STALE")).otherwise(F.col("dealer_code"))
    )
    overwrite_table(spark, kept_pairs.localCheckpoint(), lake.path(catalog.MATCH_PAIRS))
    overwrite_table(spark, kept_xref.localCheckpoint(), lake.path(catalog.CUSTOMER_XREF))
    overwrite_table(spark, kept_mentions.localCheckpoint(), lake.path(catalog.PERSON_MENTIONS))
    for name, df in _rebuilt(spark, lake, config).items():  # the gold tables as that earlier run left them
        overwrite_table(spark, df.localCheckpoint(), lake.path(catalog.by_label(f"gold/{name}")))
    assert _gold(spark, lake, "customers").filter(F.array_contains("dealers", "ZZ-STALE")).count() == 1

    report = run(spark, config, incremental=True, track=False)

    assert report.new_mentions == late.count()
    # Records that name nobody were linked again, yet no pair is held twice: one scored
    # before keeps its row.
    pairs_after = _gold(spark, lake, "match_pairs")
    unidentified = _gold(spark, lake, "unidentified_records").select("mention_id")
    rescored = kept_pairs.join(unidentified.withColumnRenamed("mention_id", "mention_id_l"), "mention_id_l", "left_semi")
    assert rescored.count() > 0
    assert pairs_after.count() == pairs_after.select("mention_id_l", "mention_id_r").distinct().count()
    assert rescored.exceptAll(pairs_after.select(*rescored.columns)).count() == 0
    incremental = _gold(spark, lake, "customer_xref")
    assert incremental.count() + report.unidentified == report.mentions
    agreement = pairwise_scores(
        incremental.select("mention_id", F.col("customer_id").alias("cluster_id")),
        full.select("mention_id", F.col("customer_id").alias("person_id")),
    )
    assert agreement["pairwise_precision"] >= 0.99 and agreement["pairwise_recall"] >= 0.99, agreement
    # Customers untouched by the new records keep their IDs.
    touched = full.join(late, "mention_id", "left_semi").select("customer_id").distinct()
    untouched = full.join(touched, "customer_id", "left_anti")
    changed = untouched.join(incremental.select("mention_id", F.col("customer_id").alias("now")), "mention_id").filter(F.col("now") != F.col("customer_id"))
    assert changed.count() == 0
    truth_scores = pairwise_scores(incremental.select("mention_id", F.col("customer_id").alias("cluster_id")), truth_mentions(spark.read.option("header", True).csv(truth)))
    assert truth_scores["pairwise_f1"] > 0.9
    # Only touched customers were rewritten, yet every gold table equals a whole rebuild,
    # and the corrected mention reached its (otherwise untouched) customer's profile.
    assert _gold(spark, lake, "customers").filter(F.array_contains("dealers", "ZZ-STALE")).count() == 0
    for name, expected in _rebuilt(spark, lake, config).items():
        actual = _comparable(_gold(spark, lake, name))
        expected = _comparable(expected.localCheckpoint())
        assert actual.count() == expected.count(), name
        assert actual.exceptAll(expected).count() == 0 and expected.exceptAll(actual).count() == 0, name


def test_incremental_run_needs_a_full_run_first(spark, resolved, tmp_path):
    from entity_resolution.resolve import ResolveError

    config, *_ = resolved
    from cdp.config import LakeConfig

    empty = config.model_copy(update={"lake": LakeConfig(root=str(tmp_path / "lake"), raw_root=config.lake.raw_root)})
    with pytest.raises(ResolveError, match="no customer crosswalk at .*customer_xref: run a full `cdp run resolve` first"):
        run(spark, empty, incremental=True, track=False)


def test_reviewers_overrides_are_honoured(spark, resolved):
    config, _, lake, _ = resolved
    xref = _gold(spark, lake, "customer_xref")
    pairs = _gold(spark, lake, "match_pairs")
    ids = {r.mention_id: r.customer_id for r in xref.collect()}
    # Split: the strongest link inside a customer of three or more mentions.
    sizes = xref.groupBy("customer_id").count().filter("count >= 3")
    inside = (
        pairs.join(xref.select(F.col("mention_id").alias("mention_id_l"), F.col("customer_id").alias("c")), "mention_id_l")
        .join(sizes.withColumnRenamed("customer_id", "c"), "c")
        .orderBy(F.desc("match_probability"), "mention_id_l", "mention_id_r")
        .first()
    )
    apart = (inside.mention_id_l, inside.mention_id_r)
    assert ids[apart[0]] == ids[apart[1]]
    # Join: two single-mention customers that never scored as a pair.
    singles = sorted(r.customer_id for r in xref.groupBy("customer_id").count().filter("count = 1").collect())[:2]
    together = tuple(m for m, c in sorted(ids.items()) if c in singles)
    assert len(together) == 2
    Path(config.conf_path(config.resolution.overrides_file)).write_text(
        yaml.safe_dump(
            {
                "must_link": [{"left": together[0], "right": together[1], "note": "confirmed by phone"}],
                "cannot_link": [{"left": apart[0], "right": apart[1]}],
            }
        )
    )
    report = run(spark, config, track=False)
    after = _xref(spark, lake)
    assert after[apart[0]] != after[apart[1]]
    assert after[together[0]] == after[together[1]]
    assert report.events.get("merged") == 1 and report.events.get("split", 0) >= 1
    assert _pairs_files_in_order(lake)  # with a must-link added to the scored pairs
    history = _gold(spark, lake, "customer_id_history").filter(F.col("event") == "merged").collect()
    # Two one-record customers tie on size: the smaller ID survives, the other is recorded.
    assert after[together[0]] == singles[0]
    assert (singles[1], singles[0]) in {(h.customer_id, h.related_customer_id) for h in history}
    review = _gold(spark, lake, "resolution_review")
    decided = review.filter(
        ((F.col("mention_id_l") == min(apart)) & (F.col("mention_id_r") == max(apart)))
        | ((F.col("mention_id_l") == min(together)) & (F.col("mention_id_r") == max(together)))
    )
    assert decided.count() == 0


def test_customer_show_and_explain(spark, resolved, tmp_path, capsys, monkeypatch):
    from app.cli import main as cdp_main
    from cdp.privacy import current_user

    config, _, lake, _ = resolved
    conf = tmp_path / "conf"
    conf.mkdir()
    profile = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    profile["lake"] = {"root": config.lake.root, "raw_root": config.lake.raw_root}
    profile["spark"]["jars_dir"] = str(ROOT / "jars")
    (conf / "local.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True))
    (conf / "feeds.yaml").write_text((ROOT / "conf" / "feeds.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    customers = _gold(spark, lake, "customers")
    busiest = customers.filter(F.size("mobiles") > 0).orderBy(F.desc("mention_count"), "customer_id").first()
    args = ["--conf", str(conf / "local.yaml")]
    import cdp.spark

    # Lookups read the gold tables without Spark: starting or joining a session fails the test.
    monkeypatch.setattr(cdp.spark, "build_spark_session", lambda *a, **k: pytest.fail("a lookup started Spark"))

    assert cdp_main(["customer", "show", busiest.customer_id, *args]) == 0
    shown = capsys.readouterr().out
    assert busiest.customer_id in shown and "timeline" in shown and "vehicles" in shown
    assert busiest.mobile not in shown and f"{busiest.mobile[:3]}****{busiest.mobile[-4:]}" in shown
    assert busiest.name not in shown
    assert shown.count("\n  20") == busiest.mention_count  # one timeline line per person mention

    # Full values only for an operating-system user listed as privileged, never for a flag alone.
    assert cdp_main(["customer", "show", "--mobile", busiest.mobile, "--reveal", *args]) == 2
    assert busiest.mobile not in capsys.readouterr().out
    profile.setdefault("activation", {}).setdefault("exports", {})["privileged_users"] = [current_user()]
    (conf / "local.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True))
    assert cdp_main(["customer", "show", "--mobile", busiest.mobile, "--reveal", *args]) == 0
    assert busiest.mobile in capsys.readouterr().out

    assert cdp_main(["customer", "explain", busiest.customer_id, "--json", *args]) == 0
    import json

    links = json.loads(capsys.readouterr().out)
    assert len(links) == busiest.mention_count - 1  # a spanning set joins n records with n-1 links
    scored = [link for link in links if link["joined_by"] == "score"]
    assert scored and all(link["match_probability"] >= config.resolution.match_threshold for link in scored)
    # The rest joined as their vehicle's owner: records that name nobody.
    mentions = {r.mention_id: r for r in _gold(spark, lake, "person_mentions").collect()}
    for link in links:
        if link["joined_by"] == "vehicle_owner":
            weak = mentions[link["mention_id_r"]]
            assert weak.vin and not (weak.mobile or weak.id_number or weak.name_simplified), link
    names = {c["comparison"] for c in links[0]["comparisons"]}
    assert {"name", "mobile", "vin"} <= names
    total = sum(c["match_weight"] for c in links[0]["comparisons"])
    assert total == pytest.approx(links[0]["match_weight"] - _prior_weight(lake, spark), abs=0.05)


def _prior_weight(lake, spark):
    import math

    from entity_resolution.model import load_model

    p = load_model(spark, lake.path(catalog.RESOLUTION_MODEL))["probability_two_random_records_match"]
    return math.log2(p / (1 - p))


def test_features_job_on_resolved_customers(spark, resolved, monkeypatch):
    from contextlib import contextmanager

    from app.steps import features as step
    from features.build import FEATURE_TABLE_COLUMNS
    from tests.steps import build_features, run_step

    config, _, lake, _ = resolved
    as_of = dt.date(2026, 1, 1)
    first = build_features(spark, config, as_of)
    path = lake.path(catalog.CUSTOMER_FEATURES)
    table = read_table(spark, path)
    assert tuple(table.columns) == FEATURE_TABLE_COLUMNS
    customers = read_table(spark, lake.path(catalog.CUSTOMERS))
    seen = customers.filter(F.col("first_seen") < F.lit(as_of).cast("timestamp")).count()
    assert first.customers == table.filter(F.col("as_of_date") == F.lit(as_of)).count() == seen
    assert set(first.stages) <= {"prospect", "defeated_lead", "new_owner", "active", "dormant", "lost", "contact"}
    assert first.stages.get("active", 0) > 0 and first.stages.get("lost", 0) > 0
    # Another date is another partition.
    build_features(spark, config, dt.date(2025, 1, 1))
    counts = {r["as_of_date"]: r["count"] for r in read_table(spark, path).groupBy("as_of_date").count().collect()}
    assert counts[as_of] == first.customers and counts[dt.date(2025, 1, 1)] < first.customers
    # Both dates again, side by side: each replaces its partition with the same rows as one
    # after the other.
    def partition(day):
        return sorted(tuple(r) for r in read_table(spark, path).filter(F.col("as_of_date") == day).collect())

    sequential = {day: partition(day) for day in (as_of, dt.date(2025, 1, 1))}
    both = run_step(spark, config, "features", as_of=[dt.date(2025, 1, 1), as_of])
    assert set(both.by_date) == {"2025-01-01", as_of.isoformat()} and both.by_date[as_of.isoformat()] == first.stages
    assert {day: partition(day) for day in sequential} == sequential
    # Past the small-data limit: a pass per date, both reading the records tied to their
    # customers once, kept in the lake's scratch space while they run and removed after.
    scratch = Path(lake.path(catalog.work("x"))).parent
    kept, real = [], step.records_for

    @contextmanager
    def watched(context, dates, keep=False):
        with real(context, dates, keep) as records:
            kept.append((keep, sorted(p.name.split("_", 3)[-1] for p in scratch.glob("feature_records_*"))))
            yield records

    monkeypatch.setattr(step, "small_lake_bytes", lambda _config: None)
    monkeypatch.setattr(step, "records_for", watched)
    apart = run_step(spark, config, "features", as_of=[dt.date(2025, 1, 1), as_of])
    assert kept == [(True, sorted(["seen", "sales_orders", "leads", "service_orders", "warranty_claims", "complaints", "surveys"]))]
    assert not list(scratch.glob("feature_records_*"))
    assert apart.by_date == both.by_date
    assert {day: partition(day) for day in sequential} == sequential
