"""Train, register, promote and score segments end to end against a local MLflow store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import mlflow
import pytest
import yaml

from app.cli import main as cdp_main
from cdp import catalog
from cdp.analytics_config import SegmentationConfig
from cdp.config import LakeConfig, MlflowConfig
from cdp.lake import Lake, read_table, replace_partition
from features.build import FEATURE_TABLE_COLUMNS
from tests.segmentation.conftest import planted
from tests.steps import run_step

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]
AS_OF = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def lake_with_features(spark, app_config, tmp_path_factory):
    root = tmp_path_factory.mktemp("segjobs")
    X, _ = planted(300, seed=5)
    rows = X.assign(
        as_of_date=AS_OF,
        city=["广州市", "深圳市", "佛山市"] * (len(X) // 3),
        lifecycle_stage=["active", "dormant", "lost"] * (len(X) // 3),
        newest_vehicle_model="A6",
    )
    # Two customers without a vehicle are outside the segmented population.
    rows.loc[[0, 1], ["vehicles_bought", "service_visits_total"]] = 0
    features = spark.createDataFrame(rows[[c for c in FEATURE_TABLE_COLUMNS if c in rows]])
    config = app_config.model_copy(
        update={
            "lake": LakeConfig(root=str(root / "lake"), raw_root=str(root / "raw")),
            "mlflow": MlflowConfig(tracking_uri=str(root / "mlflow.db"), artifact_root=str(root / "mlruns")),
            "segmentation": SegmentationConfig(k_range=(2, 4), bootstrap_rounds=2),
        }
    )
    replace_partition(spark, features, Lake(config.lake.root).path(catalog.CUSTOMER_FEATURES), "as_of_date", AS_OF)
    conf = root / "conf"
    conf.mkdir()
    profile = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    profile.update(
        lake={"root": config.lake.root, "raw_root": config.lake.raw_root},
        mlflow={"tracking_uri": config.mlflow.tracking_uri, "artifact_root": config.mlflow.artifact_root},
        segmentation={"k_range": [2, 4], "bootstrap_rounds": 2},
    )
    profile["spark"]["jars_dir"] = str(ROOT / "jars")
    (conf / "local.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True))
    (conf / "feeds.yaml").write_text((ROOT / "conf" / "feeds.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    return config, X, conf / "local.yaml"


@pytest.fixture(scope="module")
def trained(spark, lake_with_features):
    config, X, _ = lake_with_features
    first = run_step(spark, config, "train_segments")
    second = run_step(spark, config, "train_segments")
    return first, second


def test_first_version_becomes_champion_and_later_ones_wait(lake_with_features, trained):
    config, X, _ = lake_with_features
    first, second = trained
    assert (first.version, first.champion, second.version, second.champion) == ("1", True, "2", False)
    assert first.rows == len(X) - 2
    assert [s.as_dict() for s in first.segments] == [s.as_dict() for s in second.segments]
    client = mlflow.MlflowClient(tracking_uri=config.mlflow_tracking_uri())
    assert str(client.get_model_version_by_alias(config.segmentation.model_name, "champion").version) == "1"
    run = client.get_run(first.run_id)
    assert run.data.params["chosen_k"] == str(len(first.segments))
    assert {"silhouette", "stability", "davies_bouldin", "k"} <= set(run.data.metrics)
    history = client.get_metric_history(first.run_id, "kmeans_silhouette")
    assert sorted(m.step for m in history) == [2, 3, 4]


def test_artifacts_hold_no_customer_rows(lake_with_features, trained):
    config, X, _ = lake_with_features
    first, _ = trained
    local = Path(mlflow.artifacts.download_artifacts(run_id=first.run_id, tracking_uri=config.mlflow_tracking_uri()))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert {"profile/segment_profile.csv", "profile/segments.json", "plots/segment_sizes.png", "plots/feature_heatmap.png"} <= files
    ids = set(X["customer_id"])
    for path in local.rglob("*"):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", errors="ignore")
            assert not any(i in text for i in ids), path
            assert "广州市" not in text, path


def test_promote_moves_the_alias_and_scoring_uses_it(spark, lake_with_features, trained, capsys, monkeypatch):
    config, X, profile = lake_with_features
    args = ["--conf", str(profile)]
    assert cdp_main(["model", "promote", "2", *args]) == 0
    assert capsys.readouterr().out.strip() == "customer_segmentation version 2 is now champion"
    assert cdp_main(["model", "list", *args]) == 0
    listing = capsys.readouterr().out
    assert "champion" in listing.splitlines()[1] and listing.splitlines()[1].strip().startswith("2")
    assert cdp_main(["model", "compare", "1", "2", *args]) == 0
    assert "silhouette" in capsys.readouterr().out
    assert cdp_main(["model", "promote", "9", *args]) == 2

    report = run_step(spark, config, "segment")
    assert (report.model_version, report.customers) == ("2", len(X) - 2)
    table = read_table(spark, Lake(config.lake.root).path(catalog.CUSTOMER_SEGMENTS))
    scored = table.toPandas().set_index("customer_id").sort_index()
    assert set(scored["model_version"]) == {"2"} and set(scored["as_of_date"]) == {AS_OF}
    # Spark executors give what the registered pipeline gives on the driver.
    from segmentation import load_segmentation_model

    model = load_segmentation_model(config.segmentation.model_name, "2")
    population = X.iloc[2:].set_index("customer_id").sort_index()
    expected = model.pipeline.predict(population[model.features].astype("float64"))
    assert list(scored["segment_id"]) == list(expected)
    assert list(scored["segment_name"]) == [model.segment_name(int(i)) for i in expected]
    # Re-running replaces the partition: same rows, no duplicates.
    run_step(spark, config, "segment")
    again = read_table(spark, Lake(config.lake.root).path(catalog.CUSTOMER_SEGMENTS))
    assert again.count() == len(X) - 2

    import cdp.spark

    # Lookups read the gold tables without Spark: starting or joining a session fails the test.
    monkeypatch.setattr(cdp.spark, "build_spark_session", lambda *a, **k: pytest.fail("a lookup started Spark"))
    assert cdp_main(["segments", "list", *args]) == 0
    out = capsys.readouterr().out
    name = model.segment_name(int(expected[0]))
    assert name in out
    chart = profile.parent / "segment.html"
    assert cdp_main(["segments", "show", name, "--chart", str(chart), *args]) == 0
    shown = capsys.readouterr().out
    size = int((scored["segment_name"] == name).sum())
    assert f"{name}: {size} customers ({size / len(scored):.1%})" in shown
    assert "lifecycle:" in shown and "top cities:" in shown and chart.read_text(encoding="utf-8").startswith("<html>")
    assert cdp_main(["segments", "show", "no such segment", *args]) == 2
