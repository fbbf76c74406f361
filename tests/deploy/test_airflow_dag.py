"""The scheduler's view of the pipeline, built from the step registry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

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


def test_dag_file_loads_in_airflow(tmp_path, monkeypatch):
    """Airflow's own loader parses the DAG folder without import errors, and the DAG runs
    the daily steps in pipeline order, each retried."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "deploy" / "airflow"), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["cdp_daily"]
    spec = importlib.util.spec_from_file_location("cdp_daily", ROOT / "deploy" / "airflow" / "cdp_daily.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    daily = [s for s in PIPELINE if s not in module.SKIP]
    assert [t.task_id for t in dag.topological_sort()] == daily
    assert all(dag.get_task(s).retries == 3 for s in daily)
    assert dag.get_task("ingest").bash_command.startswith("cdp run ingest")
