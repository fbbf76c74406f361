"""The step registry and pipeline selection, with fake steps: no JVM."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import sys
import threading
import time

import pytest

from app import ledger, registry, runner
from app.context import RunContext
from app.registry import PIPELINE, StepReport, select_steps
from cdp import catalog
from cdp.config import PipelineConfig
from cdp.errors import MissingInputError, UsageError


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


def test_every_module_a_step_preloads_exists():
    preloaded = {m for step in registry.steps().values() for m in step.preload}
    assert "great_expectations" in preloaded
    assert not [m for m in preloaded if importlib.util.find_spec(m) is None]


def test_a_run_preloads_modules_once_on_a_background_thread(app_config, tmp_path, monkeypatch):
    (tmp_path / "cdp_preload_probe.py").write_text("import threading\nLOADED_BY = threading.current_thread().name\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cdp_preload_probe", raising=False)
    context = RunContext(app_config, run_id="r1")
    # A module that cannot load is left to the step that imports it to report.
    thread = context.preload(["cdp_no_such_module", "cdp_preload_probe", "cdp_preload_probe"])
    assert thread is not None
    thread.join(30)
    assert sys.modules["cdp_preload_probe"].LOADED_BY == "preload"
    assert "cdp_no_such_module" not in sys.modules
    assert context.preload(["cdp_preload_probe", "cdp_no_such_module"]) is None  # asked for before
    assert context.preload(["json"]) is None  # already imported


@pytest.fixture
def fake_steps(monkeypatch, app_config):
    """The pipeline's steps with their real tables and links, running nothing; returns (steps
    run with their options, ledger records, a context factory by `parallel_steps`, events)."""
    ran: list[tuple[str, dict]] = []
    recorded: list[tuple[str, str]] = []
    events: list[tuple[str, str]] = []
    lock = threading.Lock()
    real = registry.steps()

    def fake(name):
        def run(context, options):
            with lock:
                events.append(("start", name))
                ran.append((name, options))
            time.sleep(0.01)
            with lock:
                events.append(("end", name))
            return StepReport(name, [name])
        return dataclasses.replace(real[name], help=f"fake {name}", run=run, validate=None)

    fakes = {name: fake(name) for name in PIPELINE}
    monkeypatch.setattr(runner, "get_step", lambda name: fakes[name])
    monkeypatch.setattr(runner, "record_step", lambda ctx, step, started, status, report, written, message="": recorded.append((step, status)))
    monkeypatch.setattr(runner, "table_versions", lambda ctx, tables: {})

    def context(parallel_steps=1):
        config = app_config.model_copy(update={"pipeline": PipelineConfig(parallel_steps=parallel_steps)})
        return RunContext(config, run_id="r1")

    return ran, recorded, context, events, fakes


def test_pipeline_runs_steps_in_order_and_records_each(fake_steps):
    ran, recorded, context, *_ = fake_steps
    reports = runner.run_pipeline(context(1), champion_exists=lambda ctx, step: step == "train_segments")
    assert [name for name, _ in ran] == [n for n in PIPELINE if n != "train_segments"]
    assert [r.step for r in reports] == [n for n in PIPELINE if n != "train_segments"]
    assert recorded == [(n, "ok") for n in PIPELINE if n != "train_segments"]


def test_options_set_by_step_name_reach_that_step_only(fake_steps):
    ran, _, context, *_ = fake_steps
    runner.run_pipeline(context(1), ["ingest", "resolve", "consent"], options={"resolve": {"incremental": True}})
    options = dict(ran)
    assert options["resolve"]["incremental"] is True and not options["resolve"]["retrain"]
    assert options["ingest"] == registry.get_step("ingest").defaults()
    runner.run_pipeline(context(1), ["resolve"])
    assert ran[-1] == ("resolve", registry.get_step("resolve").defaults()) and not ran[-1][1]["incremental"]


def test_side_by_side_each_step_starts_after_the_steps_it_needs(fake_steps, monkeypatch):
    ran, recorded, context, events, fakes = fake_steps
    # features and ownership need only resolve and head its two longest chains: with two at a
    # time, they start first, and each waits for the other to start.
    started = {name: threading.Event() for name in ("features", "ownership")}

    def meets(name, other):
        inner = fakes[name].run

        def run(ctx, options):
            started[name].set()
            assert started[other].wait(10), f"{name} and {other} never ran side by side"
            return inner(ctx, options)
        return dataclasses.replace(fakes[name], run=run)

    fakes["features"], fakes["ownership"] = meets("features", "ownership"), meets("ownership", "features")
    reports = runner.run_pipeline(context(2))
    assert [r.step for r in reports] == list(PIPELINE)  # reports in pipeline order, whatever ran first
    assert sorted(recorded) == sorted((n, "ok") for n in PIPELINE)
    upstream = registry.dependencies(PIPELINE)
    position = {(kind, name): i for i, (kind, name) in enumerate(events)}
    for name in PIPELINE:
        for needed in upstream[name]:
            assert position[("end", needed)] < position[("start", name)], (needed, name)
    # After resolve, the steps heading the longest chains start before those few others wait on.
    after_resolve = [name for kind, name in events[position[("end", "resolve")]:] if kind == "start"]
    assert set(after_resolve[:2]) == {"features", "ownership"}, after_resolve
    assert after_resolve.index("consent") < after_resolve.index("complaint_cases"), after_resolve
    # Never two steps that use MLflow at once, never more than two steps at once.
    active: set[str] = set()
    for kind, name in events:
        active = active | {name} if kind == "start" else active - {name}
        assert len(active) <= 2 and sum(fakes[n].tracks for n in active) <= 1, active


def test_critical_first_orders_steps_by_the_longest_chain_waiting_on_them():
    upstream = {"a": [], "b": ["a"], "c": ["a"], "d": ["c"], "e": ["d"], "f": ["a"]}
    # chains: a-c-d-e (4), b and f end theirs; ties keep the given order.
    assert runner.critical_first(list(upstream), upstream) == ["a", "c", "d", "b", "e", "f"]
    real = runner.critical_first(PIPELINE, registry.dependencies(PIPELINE))
    assert real[:2] == ["ingest", "resolve"] and real.index("features") < real.index("consent") < real.index("complaint_cases")


def test_a_small_lake_runs_the_profiles_small_data_number_of_steps_at_once(app_config, tmp_path):
    """`small_data_parallel_steps` applies to a small local lake only; unset, `parallel_steps`."""
    (tmp_path / "raw" / "sales_orders").mkdir(parents=True)
    (tmp_path / "raw" / "sales_orders" / "a.csv").write_text("x\n" * 100, encoding="utf-8")

    def at_once(max_bytes, **pipeline):
        config = app_config.model_copy(update={
            "pipeline": PipelineConfig(**pipeline),
            "lake": app_config.lake.model_copy(update={"raw_root": str(tmp_path / "raw")}),
            "spark": app_config.spark.model_copy(update={"small_data_max_bytes": max_bytes}),
        })
        return runner.steps_at_once(RunContext(config, run_id="r1"))

    assert at_once(10_000, parallel_steps=1, small_data_parallel_steps=2) == 2
    assert at_once(100, parallel_steps=1, small_data_parallel_steps=2) == 1  # 200 bytes of feeds: not small
    assert at_once(10_000, parallel_steps=3) == 3


def test_the_pipelines_links_come_from_the_tables(fake_steps):
    upstream = registry.dependencies(PIPELINE)
    assert upstream["resolve"] == ["ingest"]
    assert set(upstream["audiences"]) >= {"consent", "segment", "reminders", "features"}
    assert "train_segments" in upstream["segment"] and "train_winback" in upstream["winback"]
    # Training snapshots are earlier dates: lists of the run's date do not wait for them.
    assert "audiences" not in upstream["train_winback"] and "train_winback" not in upstream["audiences"]
    assert "features" in upstream["train_winback"]
    assert upstream["consent"] == upstream["ownership"] == ["ingest", "resolve"]


def test_a_training_step_named_alone_runs_even_with_a_champion(fake_steps):
    ran, _, context, *_ = fake_steps
    runner.run_pipeline(context(2), ["train_segments", "segment"], champion_exists=lambda ctx, step: True)
    assert [name for name, _ in ran] == ["train_segments", "segment"]


def test_a_pipeline_that_trains_win_back_builds_its_snapshots_in_the_features_pass(fake_steps):
    """One features pass (one plan, one commit) for the run's date and the training snapshots,
    instead of a second pass inside train_winback; only when training will run."""
    ran, _, context, _, fakes = fake_steps
    seen: list[set[dt.date]] = []
    inner = fakes["features"].run

    def features(ctx, options):
        seen.append(ctx.backfill_dates.get(catalog.CUSTOMER_FEATURES, set()))
        return inner(ctx, options)

    fakes["features"] = dataclasses.replace(fakes["features"], run=features)
    asked: list[str] = []

    def champion(ctx, step):
        asked.append(step)
        return step == "train_segments"

    run = dataclasses.replace(context(1), as_of=dt.date(2026, 7, 1))
    runner.run_pipeline(run, champion_exists=champion)
    assert seen == [{dt.date(2026, 1, 1), dt.date(2025, 10, 1), dt.date(2025, 7, 1), dt.date(2025, 4, 1)}]
    assert sorted(asked) == ["train_segments", "train_winback"]  # each asked once, planning included
    # A champion win-back model: no training, nothing to backfill.
    runner.run_pipeline(run, champion_exists=lambda ctx, step: True)
    assert seen[-1] == set()
    # Training without features in the run builds its own snapshots.
    runner.run_pipeline(run, ["train_winback", "winback"])
    assert run.backfill_dates == {} and [name for name, _ in ran][-2:] == ["train_winback", "winback"]


def test_the_first_steps_start_while_the_registry_is_asked_for_champions(fake_steps):
    """Asking for a champion can take seconds (a new MLflow store first creates its database):
    ingest starts meanwhile. A step that trains, uses MLflow or writes a table some step
    backfills starts only once the answers are in."""
    _, _, context, events, fakes = fake_steps
    ingest_started = threading.Event()
    inner = fakes["ingest"].run

    def ingest(ctx, options):
        ingest_started.set()
        return inner(ctx, options)

    fakes["ingest"] = dataclasses.replace(fakes["ingest"], run=ingest)
    answered_after_ingest_started: list[bool] = []

    def champion(ctx, step):
        answered_after_ingest_started.append(ingest_started.wait(10))
        events.append(("answered", step))
        return False

    runner.run_pipeline(dataclasses.replace(context(1), as_of=dt.date(2026, 7, 1)), champion_exists=champion)
    assert answered_after_ingest_started == [True, True]  # train_segments and train_winback
    answered = events.index(("answered", "train_winback"))  # the plan: its snapshots are backfilled by features
    backfilled = {table for step in fakes.values() for table in step.backfills}
    waiting = [n for n, step in fakes.items() if step.trains or step.tracks or backfilled & set(step.writes)]
    assert {"features", "resolve", "train_segments", "train_winback"} <= set(waiting)
    assert [name for name in waiting if events.index(("start", name)) < answered] == []


def test_a_failing_step_stops_the_run_and_is_recorded(fake_steps, monkeypatch):
    ran, recorded, context, _, fakes = fake_steps

    def boom(context, options):
        raise UsageError("bad value")

    fakes["resolve"] = dataclasses.replace(fakes["resolve"], run=boom)
    with pytest.raises(UsageError, match="bad value"):
        runner.run_pipeline(context(2))
    assert [name for name, _ in ran] == ["ingest"]
    assert recorded == [("ingest", "ok"), ("resolve", "failed")]


def test_no_win_back_model_skips_only_what_needs_it(fake_steps):
    ran, recorded, context, _, fakes = fake_steps

    def too_little_history(context, options):
        raise MissingInputError("no owner returned")

    fakes["train_winback"] = dataclasses.replace(fakes["train_winback"], run=too_little_history)
    reports = runner.run_pipeline(context(2))
    skipped = {"winback", "dealer_kpis"}  # the list, and the figures that count owners won back from it
    assert {name for name, _ in ran} == set(PIPELINE) - skipped - {"train_winback"}
    assert {r.step: r.status for r in reports}["train_winback"] == "skipped"
    assert ("train_winback", "failed") in recorded and not skipped & {r.step for r in reports}


def test_ledger_schema_names_the_promised_columns():
    for column in ("run_id", "step", "started_at", "finished_at", "status", "rows_read", "rows_written", "versions_written"):
        assert column in ledger.RUNS_SCHEMA


def test_a_run_with_spark_gives_back_the_heap_after_each_step(fake_steps, monkeypatch):
    import cdp.spark

    _, _, context, *_ = fake_steps
    given: list[object] = []
    monkeypatch.setattr(cdp.spark, "give_back_heap", given.append)
    run = context(1)
    runner.run_pipeline(run, ["ingest", "resolve"])
    assert given == []  # no step started Spark: none is started to give back nothing
    run._spark = session = object()  # type: ignore[assignment]
    runner.run_pipeline(run, ["ingest", "resolve"])
    assert given == [session, session]
