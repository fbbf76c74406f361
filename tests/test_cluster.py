"""The pipeline on a real Spark standalone cluster (a master and two workers on 127.0.0.1),
checked table by table against a local run on the same data by `scripts/cluster_check.py`."""

from __future__ import annotations

import json
import subprocess
import sys
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


@pytest.mark.cluster
def test_pipeline_on_standalone_cluster_matches_local_run(tmp_path):
    work = tmp_path / "cluster-check"
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cluster_check.py"), "--customers", "120", "--work", str(work), "--port", "17077"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    report = json.loads((work / "cluster_check.json").read_text())
    assert report["cluster_applications"] >= 1
    tables = report["tables"]
    assert tables["gold/customers"]["cluster_rows"] > 0
    assert all(t["only_local"] == t["only_cluster"] == 0 for t in tables.values())
    # The cluster really ran the jobs: its driver reported the standalone master.
    assert "master=spark://127.0.0.1:17077" in (work / "cluster" / "submit.log").read_text()
    # And it is gone afterwards.
    assert not list((work / "standalone" / "pids").glob("*.pid"))
