"""Run the pipeline on a real Spark standalone cluster and check it against a local run.

Starts a standalone master and two workers on 127.0.0.1 from the pyspark installation
(`spark-class` through `sbin/spark-daemon.sh`), generates a small data set, submits
`jobs/pipeline.py` with `spark-submit --master spark://127.0.0.1:7077`, runs the same
pipeline on the same data with a local master, compares every output table (row for row,
timestamps left out) and stops the cluster, also when something fails.

Both runs use one profile, the embedded default with the master, driver memory and JARs
left to the launcher, and Splink's Spark backend, so any difference comes from the cluster.

    .venv/bin/python scripts/cluster_check.py --customers 150 --work /tmp/cdp-cluster
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cdp import catalog  # noqa: E402 - the project is importable once ROOT is on the path

PACKAGES = ("app", "cdp", "datagen", "ingestion", "expectations", "entity_resolution", "features", "segmentation", "activation", "operations", "jobs")
# Tables the pipeline writes, compared between the two runs (by label, `layer/name`).
_COMPARED = (
    *(catalog.silver(f) for f in ("sales_orders", "leads", "service_orders", "warranty_claims", "complaints", "surveys", "contact_preferences")),
    catalog.PERSON_MENTIONS, catalog.MATCH_PAIRS, catalog.CUSTOMER_XREF, catalog.CUSTOMERS, catalog.CUSTOMER_VEHICLES,
    catalog.VEHICLE_OWNERS, catalog.HOME_DEALERS, catalog.COMPLAINT_CASES, catalog.SATISFACTION_MONTHLY,
    catalog.SATISFACTION_CALLBACKS, catalog.DEALER_KPIS_MONTHLY, catalog.CAMPAIGN_RESULTS, catalog.REMINDER_FOLLOWTHROUGH,
    catalog.CUSTOMER_FEATURES, catalog.CUSTOMER_SEGMENTS, catalog.REMINDERS, catalog.AUDIENCES, catalog.WINBACK,
)
TABLES = tuple(t.label for t in _COMPARED)
FEATURES_TABLE = catalog.CUSTOMER_FEATURES.label
# Must hold rows, so that an empty run cannot pass the check.
NOT_EMPTY = tuple(
    t.label for t in (
        catalog.silver("service_orders"), catalog.CUSTOMER_XREF, catalog.CUSTOMERS, catalog.CUSTOMER_FEATURES,
        catalog.CUSTOMER_SEGMENTS, catalog.REMINDERS,
    )
)


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


class StandaloneCluster:
    """A standalone master and workers on 127.0.0.1, run as daemons of the pyspark install."""

    def __init__(self, work: Path, port: int, ui_port: int, workers: int, cores: int, memory: str, niceness: int = 0) -> None:
        self.work = work
        self.port = port
        self.ui_port = ui_port
        self.workers = workers
        self.cores = cores
        self.memory = memory
        home = spark_home()
        self.daemon = [str(home / "sbin" / "spark-daemon.sh")]
        self.env = {
            **os.environ,
            "SPARK_HOME": str(home),
            "SPARK_LOG_DIR": str(work / "logs"),
            "SPARK_PID_DIR": str(work / "pids"),
            "SPARK_WORKER_DIR": str(work / "worker"),
            "PYSPARK_PYTHON": sys.executable,
            # The master and workers run at this scheduling priority; executors inherit it.
            "SPARK_NICENESS": str(niceness),
        }
        self.niceness = niceness

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _daemon(self, action: str, cls: str, instance: int, *args: str) -> None:
        subprocess.run([*self.daemon, action, cls, str(instance), *args], env=self.env, check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        for folder in ("logs", "pids", "worker"):
            (self.work / folder).mkdir(parents=True, exist_ok=True)
        self._daemon(
            "start", "org.apache.spark.deploy.master.Master", 1,
            "--host", "127.0.0.1", "--port", str(self.port), "--webui-port", str(self.ui_port),
        )
        for i in range(1, self.workers + 1):
            self._daemon(
                "start", "org.apache.spark.deploy.worker.Worker", i,
                "--host", "127.0.0.1", "--webui-port", str(self.ui_port + i),
                "--cores", str(self.cores), "--memory", self.memory, self.url,
            )
        self.wait_for_workers()

    def state(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=5) as response:
            return json.load(response)

    def wait_for_workers(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                alive = [w for w in self.state().get("workers", []) if w.get("state") == "ALIVE"]
                if len(alive) >= self.workers:
                    print(f"cluster: master {self.url} with {len(alive)} workers", file=sys.stderr, flush=True)
                    return
            except (OSError, ValueError):
                # Not listening yet, or listening with the master page attached before its
                # JSON view: the UI attaches "/" first, so "/json/" briefly answers in HTML.
                pass
            time.sleep(1)
        raise RuntimeError(f"the standalone cluster did not come up within {timeout:.0f}s; see {self.work / 'logs'}")

    def stop(self) -> None:
        for i in range(1, self.workers + 1):
            subprocess.run([*self.daemon, "stop", "org.apache.spark.deploy.worker.Worker", str(i)], env=self.env, check=False, stdout=subprocess.DEVNULL)
        subprocess.run([*self.daemon, "stop", "org.apache.spark.deploy.master.Master", "1"], env=self.env, check=False, stdout=subprocess.DEVNULL)


@contextmanager
def running(cluster: StandaloneCluster) -> Iterator[StandaloneCluster]:
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        print("cluster: stopped", file=sys.stderr, flush=True)


def write_profile(folder: Path, raw: Path, jars_dir: str | None, master: str | None, models_from: Path | None = None) -> Path:
    """The embedded default profile with its own lake and MLflow store (or the one of the
    run in `models_from`), Splink on Spark."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "conf").glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    profile = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text(encoding="utf-8"))
    run = folder.parent
    profile["spark"].update({"master": master, "jars_dir": jars_dir, "driver_memory": None if master is None else "2g"})
    profile["lake"] = {"root": str(run / "lake"), "raw_root": str(raw)}
    models = models_from or run
    profile["mlflow"] = {"tracking_uri": str(models / "mlflow.db"), "artifact_root": str(models / "mlruns")}
    profile["resolution"]["engine"] = "spark"
    # A few hundred records: two shuffle partitions (one per worker core) rather than the
    # profile's eight keep the cluster from scheduling four times the tasks for nothing.
    profile["spark"]["settings"]["spark.sql.shuffle.partitions"] = 2
    # And interpreted evaluation: compiling generated code for every plan costs more than it
    # saves on so little data (the test run's session does the same).
    profile["spark"]["settings"].update({"spark.sql.codegen.wholeStage": False, "spark.sql.codegen.factoryMode": "NO_CODEGEN"})
    # Steps side by side where the registry allows: both runs must still give the same tables.
    profile["pipeline"] = {"parallel_steps": 2}
    (folder / "local.yaml").write_text(yaml.safe_dump(profile, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder / "local.yaml"


def code_archive(path: Path) -> Path:
    """The project's packages as a zip for `--py-files`, as executors elsewhere would need."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for package in PACKAGES:
            for file in sorted((ROOT / package).rglob("*")):
                if file.is_file() and "__pycache__" not in file.parts:
                    archive.write(file, file.relative_to(ROOT))
    return path


def submit(cluster: StandaloneCluster, profile: Path, as_of: str, work: Path) -> int:
    from cdp.spark import splink_similarity_jar

    jars = [*sorted(str(p) for p in (ROOT / "jars").glob("delta-*.jar")), splink_similarity_jar()]
    command = [
        "nice", "-n", str(cluster.niceness),  # the driver at the cluster's priority
        str(spark_home() / "bin" / "spark-submit"),
        "--master", cluster.url,
        "--driver-memory", "2g",
        "--executor-memory", "1g",
        "--total-executor-cores", str(cluster.workers * cluster.cores),
        "--jars", ",".join(jars),
        "--py-files", str(code_archive(work / "cdp-code.zip")),
        "--conf", f"spark.pyspark.python={sys.executable}",
        "--conf", f"spark.pyspark.driver.python={sys.executable}",
        str(ROOT / "jobs" / "pipeline.py"), "--conf", str(profile), "--as-of", as_of,
    ]
    print(f"cluster: spark-submit --master {cluster.url} jobs/pipeline.py (log {work / 'submit.log'})", file=sys.stderr, flush=True)
    return _logged(command, work / "submit.log", {**cluster.env, "CDP_CONF": str(profile)})


def _logged(command: list[str], log: Path, env: dict[str, str]) -> int:
    """Run `command` with its output in `log`; on failure print the log's last lines."""
    with log.open("w", encoding="utf-8") as out:
        status = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    if status:
        print("\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]), file=sys.stderr)
    return status


def run_local(profile: Path, as_of: str, work: Path) -> int:
    print(f"local: cdp run pipeline (log {work / 'local.log'})", file=sys.stderr, flush=True)
    command = [sys.executable, "-m", "app.cli", "run", "pipeline", "--conf", str(profile), "--as-of", as_of]
    return _logged(command, work / "local.log", {**os.environ, "CDP_CONF": str(profile)})


def run_local_in_process(spark: object, profile: Path, as_of: str) -> None:
    """The local run on an existing SparkSession (a test's): the same pipeline as `cdp run
    pipeline`, without starting a second JVM."""
    import datetime as dt

    from app.cli import _champion_exists
    from app.context import RunContext
    from app.runner import run_pipeline
    from cdp.config import load_config

    context = RunContext(load_config(str(profile)), as_of=dt.date.fromisoformat(as_of), _spark=spark)  # type: ignore[arg-type]
    run_pipeline(context, champion_exists=_champion_exists)


def _comparable(con: object, name: str, path: Path) -> str:
    """A DuckDB view of the Delta table at `path` without load timestamps and batch ids,
    doubles rounded to 9 places and maps as sorted entry lists."""
    from deltalake import DeltaTable

    dataset = DeltaTable(str(path)).to_pyarrow_dataset()
    con.register(f"{name}_raw", dataset)  # type: ignore[attr-defined]
    columns = []
    for field in dataset.schema:
        column = field.name
        if column.endswith("_at") or column in ("_batch_id", "_source_file"):
            continue
        kind = str(field.type)
        if kind == "double":
            columns.append(f'round("{column}", 9) AS "{column}"')
        elif kind.startswith("map<"):
            columns.append(f'CAST(list_sort(map_entries("{column}")) AS VARCHAR) AS "{column}"')
        else:
            columns.append(f'"{column}"')
    con.execute(f"CREATE VIEW {name} AS SELECT {', '.join(columns)} FROM {name}_raw")  # type: ignore[attr-defined]
    return name


def compare_lakes(local_lake: Path, cluster_lake: Path, as_of: str | None = None) -> dict[str, dict]:
    """Row-for-row differences per table (DuckDB over the Delta tables, no JVM). With `as_of`,
    features are compared on that date only (training adds the dates of its snapshots)."""
    import duckdb

    report: dict[str, dict] = {}
    for table in TABLES:
        con = duckdb.connect()
        try:
            a, b = _comparable(con, "a", local_lake / table), _comparable(con, "b", cluster_lake / table)
            if as_of and table == FEATURES_TABLE:
                for view in (a, b):
                    con.execute(f"CREATE VIEW {view}_day AS SELECT * FROM {view} WHERE as_of_date = DATE '{as_of}'")
                a, b = f"{a}_day", f"{b}_day"

            def count(sql: str, con: duckdb.DuckDBPyConnection = con) -> int:
                return int(con.execute(sql).fetchall()[0][0])

            report[table] = {
                "local_rows": count(f"SELECT count(*) FROM {a}"),
                "cluster_rows": count(f"SELECT count(*) FROM {b}"),
                "only_local": count(f"SELECT count(*) FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b})"),
                "only_cluster": count(f"SELECT count(*) FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a})"),
            }
        finally:
            con.close()
    return report


def prepare(work: Path, customers: int, seed: int, shared_models: bool = False, raw_from: Path | None = None) -> tuple[Path, Path]:
    """Fresh data (or a copy of the feeds under `raw_from`) and the two profiles (local,
    cluster) under `work`. With `shared_models` the cluster run reads the local run's MLflow
    store: the pipeline finds their champions and skips training, scoring with the same models."""
    from datagen import generate

    shutil.rmtree(work, ignore_errors=True)
    raw = work / "raw"
    if raw_from is None:
        generate(customers, seed, raw)
    else:
        shutil.copytree(raw_from, raw)
    local = write_profile(work / "local" / "conf", raw, str(ROOT / "jars"), "local[2]")
    return local, write_profile(work / "cluster" / "conf", raw, None, None, models_from=work / "local" if shared_models else None)


def run_on_cluster(
    work: Path, profile: Path, as_of: str, port: int, ui_port: int, worker_memory: str, niceness: int = 0
) -> tuple[int, int, float]:
    """(spark-submit's exit status, applications the master saw, seconds) of the pipeline on
    a standalone master with two one-core workers, stopped afterwards. With `niceness` (as
    `nice -n`), the cluster's processes yield the CPU to others on the machine."""
    cluster = StandaloneCluster(work / "standalone", port, ui_port, workers=2, cores=1, memory=worker_memory, niceness=niceness)
    started = time.perf_counter()
    with running(cluster):
        status = submit(cluster, profile, as_of, work / "cluster")
        apps = cluster.state().get("completedapps", []) + cluster.state().get("activeapps", [])
    return status, len(apps), time.perf_counter() - started


def summarise(report: dict[str, dict]) -> list[str]:
    """Problems found: tables that differ, and tables that must hold rows but are empty."""
    problems = [f"DIFFERENT: {t}" for t, r in report.items() if r["only_local"] or r["only_cluster"] or r["local_rows"] != r["cluster_rows"]]
    return problems + [f"EMPTY: {t}" for t in NOT_EMPTY if not report[t]["local_rows"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", default="2026-07-01")
    parser.add_argument("--work", required=True)
    parser.add_argument("--port", type=int, default=7077, help="master port")
    parser.add_argument("--ui-port", type=int, default=18080, help="master web UI port; workers take the next ones")
    parser.add_argument("--worker-memory", default="2g")
    parser.add_argument("--score-only", action="store_true", help="the cluster skips training and scores with the local run's models")
    args = parser.parse_args(argv)

    work = Path(args.work).resolve()
    local_profile, cluster_profile = prepare(work, args.customers, args.seed, shared_models=args.score_only)
    started = time.perf_counter()
    if run_local(local_profile, args.as_of, work / "local"):
        print("local: the pipeline failed", file=sys.stderr)
        return 1
    local_seconds = time.perf_counter() - started
    status, apps, cluster_seconds = run_on_cluster(work, cluster_profile, args.as_of, args.port, args.ui_port, args.worker_memory)
    if status:
        print(f"cluster: the pipeline failed on the cluster (exit {status})", file=sys.stderr)
        return 1
    if not apps:
        print("cluster: the master saw no application; the pipeline did not run on the cluster", file=sys.stderr)
        return 1

    report = compare_lakes(work / "local" / "lake", work / "cluster" / "lake", args.as_of if args.score_only else None)
    result = {
        "customers": args.customers,
        "cluster_seconds": round(cluster_seconds, 1),
        "local_seconds": round(local_seconds, 1),
        "cluster_applications": apps,
        "tables": report,
    }
    (work / "cluster_check.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    width = max(len(t) for t in report)
    for table, r in report.items():
        print(f"{table:<{width}}  local {r['local_rows']:>7}  cluster {r['cluster_rows']:>7}  only local {r['only_local']:>5}  only cluster {r['only_cluster']:>5}")
    print(f"cluster {cluster_seconds:.0f}s, local {local_seconds:.0f}s; {apps} application(s) on the master")
    problems = summarise(report)
    for line in problems:
        print(line, file=sys.stderr)
    if problems:
        return 1
    print("the cluster's outputs match the local run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
