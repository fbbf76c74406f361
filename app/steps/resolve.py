"""Step `resolve`: person mentions, linkage, golden customers, stable IDs, crosswalk."""

from __future__ import annotations

from typing import Any

import click

from app.context import RunContext
from app.registry import Step, StepReport, register
from cdp import catalog
from cdp.config import FEED_NAMES
from entity_resolution.resolve import resolve_identities


def _run(context: RunContext, options: dict[str, Any]) -> StepReport:
    config = context.config
    if options.get("engine"):
        config = config.model_copy(update={"resolution": config.resolution.model_copy(update={"engine": options["engine"]})})
    report = resolve_identities(
        context.spark, config, incremental=bool(options.get("incremental")), truth=options.get("truth"),
        track=not options.get("no_track"), retrain=bool(options.get("retrain")),
    )
    lines = [
        f"mode {report.mode}, engine {report.engine}: {report.mentions} mentions ({report.new_mentions} new), "
        f"{report.customers} customers, {report.pairs} scored pairs",
        f"{report.unidentified} record(s) name nobody and joined no owner: kept in gold/unidentified_records, not customers",
        *(f"  {event:<10} {n:>8}" for event, n in sorted(report.events.items())),
        *(f"{stage:<16} {seconds:8.1f}s" for stage, seconds in report.timings.items()),
        *(f"{key:<22} {value:.4f}" for key, value in report.scores.items()),
    ]
    if report.mlflow_run_id:
        lines.append(f"MLflow run {report.mlflow_run_id}")
    if report.model_version:
        how = "trained by this run, now champion" if report.model_source == "trained" else "the champion"
        lines.append(f"linkage model {config.resolution.model_name} version {report.model_version} ({how})")
    return StepReport("resolve", lines, {"report": report}, rows_read=report.mentions, rows_written=report.customers)


register(Step(
    "resolve", "Resolve identities: train (or reuse) the linkage model, cluster, write golden customers.", _run,
    params=(
        click.Option(["--engine"], type=click.Choice(["auto", "duckdb", "spark"]), help="override resolution.engine"),
        click.Option(["--incremental"], is_flag=True, help="link only new records, with the saved model"),
        click.Option(["--truth"], type=click.Path(exists=True, dir_okay=False), help="ground-truth CSV to score the run with"),
        click.Option(["--no-track"], is_flag=True, help="do not log the run to MLflow"),
        click.Option(["--retrain"], is_flag=True, help="train a new linkage model instead of scoring with the registered champion"),
    ),
    reads=tuple(catalog.silver(f) for f in FEED_NAMES),
    writes=(
        catalog.PERSON_MENTIONS, catalog.MATCH_PAIRS, catalog.CUSTOMER_XREF, catalog.UNIDENTIFIED_RECORDS, catalog.CUSTOMERS,
        catalog.CUSTOMER_VEHICLES,
        catalog.CUSTOMER_ID_HISTORY, catalog.RESOLUTION_REVIEW, catalog.RESOLUTION_MODEL,
    ),
    tracks=True, preload=("mlflow.pyfunc",),
))
