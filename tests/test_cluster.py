"""The pipeline on a real Spark standalone cluster (a master and two workers on 127.0.0.1),
checked table by table against a local run on the same data by `scripts/cluster_check.py`.

The local run goes first in the test run, on the shared SparkSession; the cluster run (a
spark-submit of its own) then works in the background while the other tests run, and the
check at the end of the run waits for it and compares the two lakes."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-07-01"
CLUSTER_TIMEOUT_S = 2400


def test_no_job_module_hides_a_package():
    """spark-submit puts a job script's own folder first on the path, so `jobs/NAME.py`
    must not share its name with a top-level package it imports."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    jobs = {p.stem for p in (ROOT / "jobs").glob("*.py")}
    assert packages, "no packages found"
    assert not jobs & packages


def test_waiting_for_workers_rides_out_a_master_page_served_before_its_json(tmp_path):
    """While the master's web UI starts, "/json/" is answered by the HTML master page for a
    moment; the wait treats that as "not up yet" instead of failing the run."""
    import http.server

    from tests.conftest import _cluster_check

    answers = [b"<!DOCTYPE html><html><body>Spark Master</body></html>", json.dumps({"workers": [{"state": "ALIVE"}]}).encode()]
    served: list[str] = []

    class MasterUi(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            served.append(self.path)
            body = answers[min(len(served), len(answers)) - 1]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MasterUi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cluster = _cluster_check().StandaloneCluster(tmp_path, 0, server.server_address[1], workers=1, cores=1, memory="1g")
        cluster.wait_for_workers(timeout=30)
    finally:
        server.shutdown()
    assert served == ["/json/", "/json/"]


class _Background:
    """The cluster run in a thread: its result, or the error it ended with."""

    def __init__(self, check: Any, work: Path, profile: Path) -> None:
        self.result: tuple[int, int, float] | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(check, work, profile), name="cluster-run", daemon=True)
        self._thread.start()

    def _run(self, check: Any, work: Path, profile: Path) -> None:
        try:
            # At the lowest priority: the cluster takes the CPU the other tests leave idle
            # instead of slowing them down; what it has not finished by the last test, it
            # finishes while that test waits (28-106 s in CI).
            self.result = check.run_on_cluster(work, profile, AS_OF, port=17077, ui_port=18080, worker_memory="2g", niceness=19)
        except BaseException as exc:  # noqa: BLE001 - handed to the test that waits
            self.error = exc

    def wait(self, timeout: float) -> tuple[int, int, float]:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the cluster run did not finish within {timeout:.0f}s")
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


@pytest.fixture(scope="session")
def cluster_run(local_pipeline):
    """(check module, work folder, background cluster run) after the local run."""
    check, work, cluster_profile = local_pipeline
    background = _Background(check, work, cluster_profile)
    yield check, work, background
    background.wait(CLUSTER_TIMEOUT_S)  # the cluster is stopped before the run ends


@pytest.mark.cluster
def test_local_run_resolves_the_generated_people(spark, cluster_run):
    """Runs first (see conftest): the local run, scoring and clustering with Splink's Spark
    backend as on the cluster, must find the generator's people."""
    from cdp.lake import read_table
    from entity_resolution.evaluation import pairwise_scores, truth_mentions

    _, work, _ = cluster_run
    truth = truth_mentions(spark.read.option("header", True).csv(str(work / "raw" / "truth" / "mentions.csv")))
    xref = read_table(spark, str(work / "local" / "lake" / "gold" / "customer_xref")).withColumnRenamed("customer_id", "cluster_id")
    scores = pairwise_scores(xref, truth)
    assert scores["pairwise_f1"] > 0.9, scores


@pytest.mark.cluster
def test_every_step_declares_the_tables_it_uses(local_pipeline):
    """The pipeline runs steps side by side when neither needs the other's tables: that is
    only safe while each step's declared tables are the ones it touches (recorded while the
    local run ran)."""
    from app.registry import steps
    from tests.conftest import TABLES_USED

    _, work, _ = local_pipeline
    used = json.loads((work / "local" / TABLES_USED).read_text(encoding="utf-8"))
    assert {"resolve", "audiences", "winback", "dealer_kpis"} <= set(used)
    scratch = ("_work/", "_staging/", "_validation/", "_ops/runs")
    for name, tables in used.items():
        step = steps()[name]
        declared = {t.label for t in (*step.reads, *step.written)}
        undeclared = {t for t in tables if not t.startswith(scratch)} - declared
        assert not undeclared, f"step {name} uses {sorted(undeclared)} without declaring them"


@pytest.mark.cluster
def test_pipeline_on_standalone_cluster_matches_local_run(cluster_run):
    """Runs last (see conftest): spark-submit on a standalone master with two workers, against
    the same pipeline run locally on this test run's SparkSession; every output table
    compared row for row."""
    check, work, background = cluster_run
    status, apps, _ = background.wait(CLUSTER_TIMEOUT_S)
    log = (work / "cluster" / "submit.log").read_text(encoding="utf-8", errors="replace")
    assert status == 0, log[-4000:]
    assert apps >= 1
    # The cluster really ran the jobs: its driver reported the standalone master.
    assert "master=spark://127.0.0.1:17077" in log
    # And it is gone afterwards.
    assert not list((work / "standalone" / "pids").glob("*.pid"))
    assert "step train_winback skipped: a champion model exists" in log
    report = check.compare_lakes(work / "local" / "lake", work / "cluster" / "lake", AS_OF)
    assert report["gold/customers"]["cluster_rows"] > 0
    assert check.summarise(report) == [], report
