"""Airflow 3 example: the daily pipeline, one task per step, built from the step registry:
each task waits for the steps whose tables it reads, so independent steps run side by side.

Copy to the DAGs folder of an Airflow that can run `cdp` (the project installed in its
environment, `CDP_CONF` pointing at the profile). Training steps are in the list; in the
CLI's pipeline they run only while no champion exists, here they run when scheduled, so
drop them from `SKIP` below only if a daily retrain is wanted.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from app.schedule import daily_tasks

SKIP = {"train_segments", "train_winback"}

with DAG(
    dag_id="cdp_daily",
    schedule="0 2 * * *",
    start_date=dt.datetime(2026, 1, 1),
    catchup=False,
    tags=["cdp"],
    doc_md=__doc__,
) as dag:
    operators: dict[str, BashOperator] = {}
    for task in daily_tasks(skip=SKIP):
        operators[task.step] = BashOperator(
            task_id=task.step,
            doc=task.description,
            bash_command=task.command,
            retries=3,
            retry_delay=dt.timedelta(minutes=5),
        )
        for upstream in task.upstream:
            operators[upstream] >> operators[task.step]
