"""The benchmark's Spark work per step, read from an event log in Spark's format."""

from __future__ import annotations

import json

import pytest

from bench.spark_events import event_log_settings, read_events, work_by_step

_QUERY = "org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionStart"


def _query(execution: int, at_ms: int, root: int | None = None) -> dict:
    return {"Event": _QUERY, "executionId": execution, "rootExecutionId": execution if root is None else root, "time": at_ms}


def _job(job: int, start_ms: int, end_ms: int, site: str | None, description: str | None = None) -> list[dict]:
    properties = {"callSite.short": site} if site else {}
    if description:
        properties["spark.job.description"] = description
    stages = [{"Stage Name": "parquet at <unknown>:0"}]
    return [
        {"Event": "SparkListenerJobStart", "Job ID": job, "Submission Time": start_ms, "Properties": properties, "Stage Infos": stages},
        {"Event": "SparkListenerJobEnd", "Job ID": job, "Completion Time": end_ms},
    ]


def _write(path, events: list[dict], tail: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + tail, encoding="utf-8")


def test_work_is_counted_for_the_step_whose_window_holds_it(tmp_path):
    events = [
        {"Event": "SparkListenerApplicationStart", "Timestamp": 999_000},
        _query(0, 1_000_500),
        *_job(0, 1_000_600, 1_002_600, "collect at /repo/ingestion/ingest.py:85"),
        *_job(1, 1_003_000, 1_003_500, "collect at /repo/ingestion/ingest.py:85"),
        _query(1, 1_004_000),
        _query(2, 1_004_100, root=1),  # a Delta command's inner query: counted under its root
        *_job(2, 1_004_200, 1_005_200, None),
        *_job(5, 1_005_200, 1_005_300, None, "Delta: MERGE"),
        # The next step.
        _query(3, 1_010_000),
        *_job(3, 1_010_100, 1_013_100, "save at NativeMethodAccessorImpl.java:0"),
        # Between steps: nobody's.
        _query(4, 1_020_000),
        *_job(4, 1_020_000, 1_021_000, "count at x.py:1"),
    ]
    _write(tmp_path / "events" / "eventlog_v2_local-1" / "events_1_local-1", events[:6])
    _write(tmp_path / "events" / "eventlog_v2_local-1" / "events_2_local-1", events[6:])
    (tmp_path / "events" / "eventlog_v2_local-1" / "appstatus_local-1").write_text("")
    work = work_by_step(read_events(tmp_path / "events"), {"ingest": (1000.0, 1006.0), "resolve": (1009.5, 1015.0)})

    ingest, resolve = work["ingest"], work["resolve"]
    assert (ingest.queries, ingest.jobs, ingest.job_seconds) == (2, 4, pytest.approx(3.6))
    assert ingest.as_row()["spark_longest_sites"] == {
        "collect at /repo/ingestion/ingest.py:85": 2.5, "parquet at <unknown>:0": 1.0, "Delta: MERGE": 0.1,
    }
    assert (resolve.queries, resolve.jobs, resolve.job_seconds) == (1, 1, pytest.approx(3.0))
    assert resolve.as_row(top=1) == {
        "spark_queries": 1, "spark_jobs": 1, "spark_job_seconds": 3.0,
        "spark_longest_sites": {"save at NativeMethodAccessorImpl.java:0": 3.0},
    }


def test_a_log_still_being_written_is_read_to_its_last_whole_event(tmp_path):
    _write(tmp_path / "events" / "app-1", [_query(0, 5_000), *_job(0, 5_000, 6_000, "a")], tail='{"Event": "SparkListenerJobSt')
    work = work_by_step(read_events(tmp_path / "events"), {"step": (4.0, 7.0)})
    assert (work["step"].queries, work["step"].jobs) == (1, 1)


def test_a_broken_line_inside_a_log_and_a_compressed_log_are_refused(tmp_path):
    path = tmp_path / "events" / "app-1"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_query(0, 5_000)) + "\nnot json\n" + json.dumps(_query(1, 5_000)) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match="app-1, line 2: not a JSON event"):
        list(read_events(tmp_path / "events"))
    path.unlink()
    (tmp_path / "events" / "events_1_app-2.zstd").write_bytes(b"\x28\xb5\x2f\xfd")
    with pytest.raises(ValueError, match="spark.eventLog.compress=false"):
        list(read_events(tmp_path / "events"))


def test_the_settings_write_an_uncompressed_log_to_the_folder(tmp_path):
    settings = event_log_settings(tmp_path)
    assert settings == {"spark.eventLog.enabled": "true", "spark.eventLog.dir": str(tmp_path), "spark.eventLog.compress": "false"}
