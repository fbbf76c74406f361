"""Shared fixtures. One SparkSession per test run, tuned for tiny data (see each setting)."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
import cdp  # noqa: E402,F401 - its OpenMP wait policy must be set before any test imports scikit-learn


@pytest.fixture(scope="session")
def app_config():
    from cdp.config import load_config

    return load_config(ROOT / "conf" / "local.yaml")


@pytest.fixture
def no_spark(monkeypatch):
    """Fail the test if the code under test would start (or join) a SparkSession."""
    import cdp.spark

    def refuse(*_args, **_kwargs):
        raise AssertionError("a SparkSession was started")

    monkeypatch.setattr(cdp.spark, "build_spark_session", refuse)


@pytest.fixture(scope="session")
def spark(app_config, tmp_path_factory):
    from cdp.spark import build_spark_session

    warehouse = tmp_path_factory.mktemp("warehouse")
    session = build_spark_session(
        app_config,
        master="local[2]",
        overrides={
            # Tiny test data: one partition per shuffle. Every task costs a closure shipped
            # and a Hadoop configuration read back; more than one buys nothing on a few
            # thousand rows (the cluster check runs with two partitions on two executors).
            "spark.sql.shuffle.partitions": "1",
            "spark.default.parallelism": "1",
            # No UI server, no adaptive re-planning: faster start, deterministic plans.
            "spark.ui.enabled": "false",
            "spark.sql.adaptive.enabled": "false",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.warehouse.dir": str(warehouse),
            "spark.driver.memory": "2g",
            # Delta replays a table's log in one task (a few small files).
            "spark.databricks.delta.snapshotPartitions": "1",
            # Tiny data: compiling generated code for every new plan costs more than it
            # saves; interpreted evaluation made tests/app/test_resolve.py 312 s -> 239 s.
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.codegen.factoryMode": "NO_CODEGEN",
            # The throughput collector: G1's concurrent marking took a fifth of the JVM's CPU
            # time on two cores (tests/app/test_resolve.py 317-322 s -> 286-290 s). Only the
            # collector: C1-only compilation (TieredStopAtLevel=1) made the same tests slower.
            # The embedded profile keeps G1: the demo pipeline (4 GB heap, one JVM per run) took
            # 169.2 s with this and 169.5 s without.
            "spark.driver.extraJavaOptions": "-XX:+UseParallelGC",
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def ingested(spark, app_config, tmp_path_factory):
    """Generated dealer data for a few customers, ingested once for the whole test run.

    Returns (config pointing at it, root folder, generation summary, feed reports, feed errors).
    """
    from cdp.config import LakeConfig
    from cdp.lake import Lake
    from datagen import generate
    from ingestion import ingest_feeds

    root = tmp_path_factory.mktemp("job")
    summary = generate(120, 11, root / "raw", error_rate=0.01)
    config = app_config.model_copy(update={"lake": LakeConfig(root=str(root / "lake"), raw_root=str(root / "raw"))})
    reports, errors = ingest_feeds(spark, config, Lake(config.lake.root))
    return config, root, summary, reports, errors


RESOLVED_AS_OF = dt.date(2026, 7, 1)


@pytest.fixture(scope="session")
def resolved(spark, ingested, tmp_path_factory):
    """The shared ingested data resolved (Splink on DuckDB), with features and reminders as of
    RESOLVED_AS_OF: built once per run. Tests that write take a copy with `copy_resolved`.

    Returns (config pointing at it, its folder, the resolution run's report, scored against
    the generator's truth)."""
    from cdp.config import LakeConfig, MlflowConfig
    from entity_resolution.resolve import resolve_identities
    from tests.steps import build_features, run_step

    config, root, *_ = ingested
    base = tmp_path_factory.mktemp("resolved")
    shutil.copytree(root / "lake", base / "lake")
    (base / "conf").mkdir()  # no reviewer decisions
    config = config.model_copy(update={
        "lake": LakeConfig(root=str(base / "lake"), raw_root=str(root / "raw")),
        "mlflow": MlflowConfig(tracking_uri=str(base / "mlflow.db"), artifact_root=str(base / "mlruns")),
        "conf_dir": str(base / "conf"),
        "resolution": config.resolution.model_copy(update={"engine": "duckdb"}),
    })
    report = resolve_identities(spark, config, truth=str(root / "raw" / "truth" / "mentions.csv"))
    build_features(spark, config, RESOLVED_AS_OF)
    # Audiences with due rules read the reminders.
    run_step(spark, config, "reminders", as_of=RESOLVED_AS_OF)
    return config, base, report


def copy_resolved(resolved, dest: Path):
    """A private copy of the resolved lake and its MLflow store under `dest`; returns the
    config pointing at the copy (the raw feeds stay shared)."""
    from cdp.config import LakeConfig, MlflowConfig

    config, base, _ = resolved
    shutil.copytree(base / "lake", dest / "lake")
    if (base / "mlflow.db").exists():
        shutil.copy(base / "mlflow.db", dest / "mlflow.db")
    return config.model_copy(update={
        "lake": LakeConfig(root=str(dest / "lake"), raw_root=config.lake.raw_root),
        "mlflow": MlflowConfig(tracking_uri=str(dest / "mlflow.db"), artifact_root=str(dest / "mlruns")),
    })


PIPELINE_AS_OF = "2026-07-01"


def _cluster_check():
    import importlib.util

    spec = importlib.util.spec_from_file_location("cluster_check", ROOT / "scripts" / "cluster_check.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="session")
def local_pipeline(spark, ingested, resolved, tmp_path_factory):
    """The cluster check's local half: the whole pipeline (every step, as `cdp run pipeline`)
    on this run's session, as of PIPELINE_AS_OF, over the `ingested` feeds. It starts from a
    copy of their ingested lake, so its ingest step finds every file loaded (by content hash)
    and the run does not load the same files a second time; the cluster run ingests them
    itself. Its linkage champion is the model the `resolved` lake trained on the same feeds,
    so resolution scores with it as a daily run does (training is tested there, on DuckDB).
    Returns (check module, work folder, the cluster's profile). Its lake (`work/local/lake`)
    is what the cluster run is compared with at the end: tests may read it (or take a copy
    with `copy_pipeline`), never write it."""
    check = _cluster_check()
    _, root, *_ = ingested
    work = tmp_path_factory.mktemp("cluster") / "cluster-check"
    # The cluster scores with the models the local run trains: the pipeline finds their
    # champions and skips training (driver-side scikit-learn on a sample).
    local_profile, cluster_profile = check.prepare(work, customers=0, seed=0, shared_models=True, raw_from=root / "raw")
    shutil.copytree(root / "lake", work / "local" / "lake")
    _register_linkage_champion(resolved[0], local_profile)
    used: dict[str, set[str]] = {}
    with tables_used_by_steps(used):
        check.run_local_in_process(spark, local_profile, PIPELINE_AS_OF)  # no second JVM
    (work / "local" / TABLES_USED).write_text(json.dumps({k: sorted(v) for k, v in used.items()}, indent=1), encoding="utf-8")
    return check, work, cluster_profile


TABLES_USED = "tables_used.json"


def _register_linkage_champion(source, profile: Path) -> None:
    """Register the champion linkage model of config `source` as champion of the profile's store."""
    import mlflow

    from cdp.config import load_config
    from cdp.tracking import promote_model_version, use_experiment
    from entity_resolution.registry import champion_model, log_linkage_model
    from entity_resolution.tracking import EXPERIMENT

    found = champion_model(source)
    assert found is not None, "the resolved lake registered no linkage model"
    config = load_config(str(profile))
    use_experiment(config, EXPERIMENT)
    with mlflow.start_run(run_name="linkage model of the resolved lake"):
        version = log_linkage_model(found[1], config.resolution.model_name, {"trained_by": "the resolved lake (Splink on DuckDB)"})
    promote_model_version(config, config.resolution.model_name, version)


def copy_pipeline(local_pipeline, dest: Path):
    """A private copy of the cluster check's local pipeline run under `dest`: its lake, with
    every step's tables, and its MLflow store, with the models it trained (their artifacts stay
    where the run wrote them, read only). Returns (config, profile path) pointing at the copy."""
    import yaml

    from cdp.config import load_config

    _, work, _ = local_pipeline
    run = work / "local"
    shutil.copytree(run / "lake", dest / "lake")
    shutil.copy(run / "mlflow.db", dest / "mlflow.db")
    shutil.copytree(run / "conf", dest / "conf")
    profile = yaml.safe_load((dest / "conf" / "local.yaml").read_text(encoding="utf-8"))
    profile["lake"]["root"] = str(dest / "lake")
    profile["mlflow"] = {"tracking_uri": str(dest / "mlflow.db"), "artifact_root": str(dest / "mlruns")}
    (dest / "conf" / "local.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return load_config(str(dest / "conf" / "local.yaml")), dest / "conf" / "local.yaml"


@contextmanager
def tables_used_by_steps(used: dict[str, set[str]]):
    """Within it, every catalog table a step of a pipeline run locates (`Lake.path`) is added to
    `used[step]`, also from the threads the step starts itself."""
    from app import runner
    from cdp.lake import Lake

    current: contextvars.ContextVar[str | None] = contextvars.ContextVar("step", default=None)
    lock = threading.Lock()
    path, run_step, submit = Lake.path, runner.run_step, ThreadPoolExecutor.submit

    def recording_path(self, table):
        if (step := current.get()) is not None:
            with lock:
                used.setdefault(step, set()).add(table.label)
        return path(self, table)

    def step_in_context(context, step, options):
        current.set(step.name)
        return run_step(context, step, options)

    def submit_in_context(self, fn, /, *args, **kwargs):
        return submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    Lake.path, runner.run_step, ThreadPoolExecutor.submit = recording_path, step_in_context, submit_in_context
    try:
        yield used
    finally:
        Lake.path, runner.run_step, ThreadPoolExecutor.submit = path, run_step, submit


def pytest_collection_modifyitems(items):
    """The cluster check's local run first, so that its cluster run (a spark-submit of its own)
    works in the background while the other tests run; the check that waits for it last."""
    first = [i for i in items if i.name == "test_local_run_resolves_the_generated_people"]
    last = [i for i in items if i.name == "test_pipeline_on_standalone_cluster_matches_local_run"]
    items[:] = first + [i for i in items if i not in first and i not in last] + last
