"""The step registry and pipeline selection, with fake steps: no JVM."""

from __future__ import annotations

import pytest

from app import ledger, registry, runner
from app.context import RunContext
from app.registry import PIPELINE, Step, StepReport, select_steps
from cdp.errors import UsageError


def test_selection_from_to_and_only():
    assert select_steps(PIPELINE) == list(PIPELINE)
    assert select_steps(PIPELINE, "features", "segment") == ["features", "train_segments", "segment"]
    assert select_steps(PIPELINE, start="audiences") == ["audiences", "train_winback", "winback", "dealer_kpis", "campaign_results"]
    assert select_steps(PIPELINE, stop="resolve") == ["ingest", "resolve"]
    assert select_steps(PIPELINE, only=["winback", "ingest"]) == ["ingest", "winback"]
    with pytest.raises(UsageError, match="--only cannot be combined with --from or --to"):
        select_steps(PIPELINE, "ingest", only=["resolve"])
    with pytest.raises(UsageError, match="no pipeline step 'resolv': did you mean 'resolve'"):
        select_steps(PIPELINE, "resolv")


def test_every_pipeline_step_is_registered_with_tables():
    steps = registry.steps()
    assert set(PIPELINE) <= set(steps)
    for name in PIPELINE:
        assert steps[name].help and (steps[name].reads or steps[name].writes), name


@pytest.fixture
def fake_steps(monkeypatch, app_config):
    ran: list[tuple[str, dict]] = []
    recorded: list[tuple[str, str]] = []

    def fake(name):
        def run(context, options):
            ran.append((name, options))
            return StepReport(name, [name])
        return Step(name, f"fake {name}", run, trains=name.startswith("train_"))

    fakes = {name: fake(name) for name in PIPELINE}
    monkeypatch.setattr(runner, "get_step", lambda name: fakes[name])
    monkeypatch.setattr(runner, "record_step", lambda ctx, step, started, status, report, written, message="": recorded.append((step, status)))
    monkeypatch.setattr(runner, "table_versions", lambda ctx, tables: {})
    return ran, recorded, RunContext(app_config, run_id="r1")


def test_pipeline_runs_steps_in_order_and_records_each(fake_steps):
    ran, recorded, context = fake_steps
    reports = runner.run_pipeline(context, champion_exists=lambda ctx, step: step == "train_segments")
    assert [name for name, _ in ran] == [n for n in PIPELINE if n != "train_segments"]
    assert [r.step for r in reports] == [n for n in PIPELINE if n != "train_segments"]
    assert recorded == [(n, "ok") for n in PIPELINE if n != "train_segments"]


def test_a_training_step_named_alone_runs_even_with_a_champion(fake_steps):
    ran, _, context = fake_steps
    runner.run_pipeline(context, ["train_segments", "segment"], champion_exists=lambda ctx, step: True)
    assert [name for name, _ in ran] == ["train_segments", "segment"]


def test_a_failing_step_stops_the_run_and_is_recorded(fake_steps, monkeypatch):
    ran, recorded, context = fake_steps

    def boom(context, options):
        raise UsageError("bad value")

    failing = Step("resolve", "fails", boom)
    original = runner.get_step
    monkeypatch.setattr(runner, "get_step", lambda name: failing if name == "resolve" else original(name))
    with pytest.raises(UsageError, match="bad value"):
        runner.run_pipeline(context)
    assert [name for name, _ in ran] == ["ingest"]
    assert recorded == [("ingest", "ok"), ("resolve", "failed")]


def test_ledger_schema_names_the_promised_columns():
    for column in ("run_id", "step", "started_at", "finished_at", "status", "rows_read", "rows_written", "versions_written"):
        assert column in ledger.RUNS_SCHEMA
