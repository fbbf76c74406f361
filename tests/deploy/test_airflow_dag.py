"""The scheduler's view of the pipeline, built from the step registry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from app.registry import PIPELINE
from app.schedule import daily_tasks

ROOT = Path(__file__).resolve().parents[2]


def test_daily_tasks_follow_the_pipeline():
    tasks = daily_tasks(conf="conf/cluster.yaml")
    assert [t.step for t in tasks] == list(PIPELINE)
    assert [t.upstream for t in tasks] == [None, *PIPELINE[:-1]]
    by_step = {t.step: t.command for t in tasks}
    assert by_step["ingest"] == "cdp run ingest --conf conf/cluster.yaml"
    assert by_step["features"] == "cdp run features --as-of {{ ds }} --conf conf/cluster.yaml"


def test_dag_file_loads_in_airflow():
    pytest.importorskip("airflow.sdk")
    spec = importlib.util.spec_from_file_location("cdp_daily", ROOT / "deploy" / "airflow" / "cdp_daily.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert [t.task_id for t in module.dag.topological_sort()] == [s for s in PIPELINE if s not in module.SKIP]
