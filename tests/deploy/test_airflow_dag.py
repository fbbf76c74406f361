"""The scheduler's view of the pipeline, built from the step registry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from app.registry import PIPELINE, dependencies
from app.schedule import daily_tasks

ROOT = Path(__file__).resolve().parents[2]


def test_daily_tasks_follow_the_pipeline():
    tasks = daily_tasks(conf="conf/cluster.yaml")
    assert [t.step for t in tasks] == list(PIPELINE)
    upstream = {t.step: t.upstream for t in tasks}
    assert upstream["ingest"] == () and upstream["resolve"] == ("ingest",)
    # Only direct links: features needs resolve, which needs ingest.
    assert upstream["features"] == ("resolve",)
    assert "train_winback" in upstream["winback"] and "features" not in upstream["winback"]
    # Every task waits, directly or through others, for every step the registry says it needs.
    needs = dependencies(PIPELINE)
    for task in tasks:
        reached, stack = set(), list(task.upstream)
        while stack:
            name = stack.pop()
            reached.add(name)
            stack.extend(upstream[name])
        assert set(needs[task.step]) <= reached, task.step
    # A skipped step's place is taken by the steps it needed.
    without = {t.step: t.upstream for t in daily_tasks(skip={"train_segments"})}
    assert without["segment"] == ("features",)
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
    assert sorted(dag.task_ids) == sorted(daily)
    for task in daily_tasks(skip=module.SKIP):
        assert dag.get_task(task.step).upstream_task_ids == set(task.upstream), task.step
    assert all(dag.get_task(s).retries == 3 for s in daily)
    assert dag.get_task("ingest").bash_command.startswith("cdp run ingest")
