"""The pipeline on a real Spark standalone cluster (a master and two workers on 127.0.0.1),
checked table by table against a local run on the same data by `scripts/cluster_check.py`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_no_job_module_hides_a_package():
    """spark-submit puts a job script's own folder first on the path, so `jobs/NAME.py`
    must not share its name with a top-level package it imports."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    jobs = {p.stem for p in (ROOT / "jobs").glob("*.py")}
    assert packages, "no packages found"
    assert not jobs & packages


def _cluster_check():
    spec = importlib.util.spec_from_file_location("cluster_check", ROOT / "scripts" / "cluster_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.cluster
def test_pipeline_on_standalone_cluster_matches_local_run(spark, tmp_path):
    """spark-submit on a standalone master with two workers, against the same pipeline run
    locally on this test run's SparkSession; every output table compared row for row."""
    check = _cluster_check()
    work = tmp_path / "cluster-check"
    as_of = "2026-07-01"
    # The cluster scores with the models the local run trains: the pipeline finds their
    # champions and skips training (driver-side scikit-learn on a sample).
    local_profile, cluster_profile = check.prepare(work, customers=80, seed=7, shared_models=True)
    # Locally, on this run's session (no second JVM).
    check.run_local_in_process(spark, local_profile, as_of)
    # Both runs resolve with Splink's Spark backend: it must find the generator's people.
    from cdp.lake import read_table
    from entity_resolution.evaluation import pairwise_scores, truth_mentions

    truth = truth_mentions(spark.read.option("header", True).csv(str(work / "raw" / "truth" / "mentions.csv")))
    xref = read_table(spark, str(work / "local" / "lake" / "gold" / "customer_xref")).withColumnRenamed("customer_id", "cluster_id")
    scores = pairwise_scores(xref, truth)
    assert scores["pairwise_f1"] > 0.9, scores

    status, apps, _ = check.run_on_cluster(work, cluster_profile, as_of, port=17077, ui_port=18080, worker_memory="2g")
    log = (work / "cluster" / "submit.log").read_text(encoding="utf-8", errors="replace")
    assert status == 0, log[-4000:]
    assert apps >= 1
    # The cluster really ran the jobs: its driver reported the standalone master.
    assert "master=spark://127.0.0.1:17077" in log
    # And it is gone afterwards.
    assert not list((work / "standalone" / "pids").glob("*.pid"))
    assert "step train_winback skipped: a champion model exists" in log
    report = check.compare_lakes(work / "local" / "lake", work / "cluster" / "lake", as_of)
    assert report["gold/customers"]["cluster_rows"] > 0
    assert check.summarise(report) == [], report
