"""`cdp generate`, `cdp evaluate`, `cdp link`, `cdp runs`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from app.options import common_options, context_from
from cdp import catalog
from cdp.errors import UsageError
from cdp.reader import LakeReader

__all__ = ["COMMANDS"]


@click.group(invoke_without_command=True)
@click.option("--customers", type=int, help="how many people to generate")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--out", help="folder for the feeds and truth/mentions.csv")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), default="2026-06-30", show_default=True, help="last day of history")
@click.option("--error-rate", type=float, default=0.002, show_default=True, help="share of records with an export fault")
@click.option("--rows-per-file", type=int, default=250_000, show_default=True)
@click.pass_context
def generate(ctx: click.Context, customers: int | None, seed: int, out: str | None, as_of: dt.datetime, error_rate: float, rows_per_file: int) -> None:
    """Write synthetic dealer feeds with ground truth (same seed, same bytes)."""
    if ctx.invoked_subcommand is not None:
        return
    if customers is None or out is None:
        raise click.UsageError("--customers and --out are required (or name a subcommand: responses)")
    from cdp.logs import configure_logging
    from datagen import generate as generate_feeds

    configure_logging("INFO")
    summary = generate_feeds(customers, seed, out, as_of=as_of.date(), error_rate=error_rate, rows_per_file=rows_per_file)
    for feed, rows in summary.records.items():
        click.echo(f"{feed:<20} {rows:>10}")
    click.echo(f"{'total':<20} {summary.total_records:>10}  ({summary.people} people, {summary.truth_rows} truth rows, {summary.seconds:.1f}s)")


@generate.command("responses")
@click.option("--campaign", required=True, help="a campaign with a built audience")
@click.option("--version", "list_version", type=int, help="the audience version (default: the latest)")
@click.option("--base-rate", type=float, default=0.2, show_default=True, help="the control group's response rate")
@click.option("--effect", type=float, default=0.1, show_default=True, help="added to the base rate for listed customers")
@click.option("--seed", type=int, default=42, show_default=True)
@common_options
def generate_responses_command(campaign: str, list_version: int | None, base_rate: float, effect: float, seed: int, **options: Any) -> None:
    """Repair orders after a built audience, with a planted lift over its control group (no JVM)."""
    from activation.versions import load_campaigns
    from datagen.responses import generate_responses

    context = context_from(options)
    config = context.config
    book = load_campaigns(config)
    defined = book.campaigns.get(campaign)
    window = defined.response.window_days if defined is not None else 60
    planted = generate_responses(
        config.resolve(config.lake.root), config.resolve(config.lake.raw_root), campaign,
        window_days=window, version=list_version, base_rate=base_rate, effect=effect, seed=seed,
    )
    if options["as_json"]:
        click.echo(json.dumps({**planted.__dict__, "drawn_lift": planted.drawn_lift}, indent=2))
        return
    click.echo(
        f"{planted.campaign} v{planted.version} (listed {planted.list_as_of}, window {planted.window_days} days): "
        f"listed {planted.listed_responders}/{planted.listed}, control {planted.control_responders}/{planted.control}, "
        f"drawn lift {planted.drawn_lift:+.3f} (planted {planted.effect:+.3f}); {planted.repair_orders} repair orders in {planted.file or '-'}"
    )


@click.group()
def evaluate() -> None:
    """Score the platform's results against ground truth."""


@evaluate.command("resolution")
@click.option("--truth", required=True, type=click.Path(exists=True, dir_okay=False), help="CSV with feed, record_id, role, person_id")
@click.option("--out", "out_json", help="also write the scores to this JSON file")
@common_options
def evaluate_resolution(truth: str, out_json: str | None, **options: Any) -> None:
    """Pairwise precision, recall and F1 of the crosswalk against a truth file."""

    from cdp.lake import read_table, require_tables, table_exists
    from entity_resolution.evaluation import crosswalk_clusters, pairwise_scores, truth_mentions

    context = context_from(options)
    spark = context.spark
    truth_raw = spark.read.option("header", True).csv(truth)
    missing = {"feed", "record_id", "role", "person_id"} - set(truth_raw.columns)
    if missing:
        raise UsageError(f"{truth}: missing column(s) {', '.join(sorted(missing))}")
    require_tables(spark, context.lake, catalog.CUSTOMER_XREF)
    unidentified = context.lake.path(catalog.UNIDENTIFIED_RECORDS)
    clusters = crosswalk_clusters(
        read_table(spark, context.lake.path(catalog.CUSTOMER_XREF)),
        read_table(spark, unidentified) if table_exists(spark, unidentified) else None,
    )
    scores = pairwise_scores(clusters, truth_mentions(truth_raw))
    if options["as_json"]:
        click.echo(json.dumps(scores, indent=2))
    else:
        for key, value in scores.items():
            click.echo(f"{key:<22} {value:.4f}" if value < 10 else f"{key:<22} {value:.0f}")
    if out_json:
        Path(out_json).write_text(json.dumps(scores, indent=2), encoding="utf-8")


@evaluate.command("consent")
@click.option("--truth", required=True, type=click.Path(exists=True, file_okay=False),
              help="folder with mentions.csv and contact_preferences.csv (whose each record and preference is)")
@click.option("--out", "out_json", help="also write the figures to this JSON file")
@common_options
def evaluate_consent(truth: str, out_json: str | None, **options: Any) -> None:
    """Opt-outs that miss one of the person's customers: reachable rows per channel that
    belong to a person who opted out of it (no JVM)."""
    from activation.consent_truth import opt_out_leaks

    context = context_from(options)
    figures = opt_out_leaks(LakeReader(context.lake.root), truth)
    if options["as_json"]:
        click.echo(json.dumps(figures, indent=2))
    else:
        click.echo(f"{'channel':<8} {'reachable':>9} {'leaked':>6} {'opted out':>9} {'split':>5} {'missed':>6} "
                   f"{'unattributable':>14} {'held back in doubt':>18} {'list rows':>9} {'leaked':>6}")
        for row in [*figures["channels"], {**figures, "channel": "all"}]:
            click.echo(f"{row['channel']:<8} {row['reachable']:>9} {row['leaked_rows']:>6} {row['opted_out_people']:>9} "
                       f"{row['leaked_split']:>5} {row['leaked_missed']:>6} {row['unattributable_rows']:>14} "
                       f"{row['held_back_in_doubt']:>18} {row['audience_rows']:>9} {row['audience_rows_leaked']:>6}")
    if out_json:
        Path(out_json).write_text(json.dumps(figures, indent=2), encoding="utf-8")


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--mapping", required=True, type=click.Path(exists=True, dir_okay=False), help="YAML mapping of columns to roles")
@click.option("--out", required=True, help="output .csv or .parquet")
@common_options
def link(inputs: tuple[str, ...], mapping: str, out: str, **options: Any) -> None:
    """Dedupe one, or link two, CSV/Parquet files of any person records."""
    from entity_resolution.link import load_mapping
    from entity_resolution.link_local import link_files_locally, links_locally

    context = context_from(options)
    rules = load_mapping(mapping)
    if links_locally(context.config, context.master, list(inputs)):
        counts = link_files_locally(context.config, rules, list(inputs), out)  # DuckDB in this process: no JVM
    else:
        from entity_resolution.link_files import link_files

        counts = link_files(context.spark, context.config, rules, list(inputs), out)
    if options["as_json"]:
        click.echo(json.dumps(counts))
    else:
        click.echo(f"{counts['records']} records -> {counts['clusters']} clusters, written to {out}")


@click.command()
@click.option("--last", type=int, default=20, show_default=True, help="how many steps to show")
@common_options
def runs(last: int, **options: Any) -> None:
    """The run ledger: the latest steps run, with status, time, rows and versions written."""
    context = context_from(options)
    reader = LakeReader(context.lake.root)
    if not reader.exists(catalog.RUNS):
        click.echo("no runs recorded yet")
        return
    rows = reader.query(
        "SELECT run_id, step, started_at, status, seconds, rows_read, rows_written, versions_written FROM runs "
        "ORDER BY started_at DESC LIMIT ?", {"runs": catalog.RUNS}, [last],
    )
    if options["as_json"]:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    click.echo(f"{'run':<22} {'step':<15} {'started (UTC)':<19} {'status':<8} {'seconds':>8} {'read':>9} {'written':>9}")
    for r in rows:
        click.echo(f"{r['run_id']:<22} {r['step']:<15} {r['started_at']:%Y-%m-%d %H:%M:%S} {r['status']:<8} {r['seconds']:>8.1f} "
                   f"{r['rows_read'] if r['rows_read'] is not None else '-':>9} {r['rows_written'] if r['rows_written'] is not None else '-':>9}")


@click.group()
def feeds() -> None:
    """Landing files against the feed contracts, before anything loads."""


@feeds.command("check")
@click.option("--feed", "chosen", multiple=True, help="only this feed; repeatable")
@common_options
def feeds_check(chosen: tuple[str, ...], **options: Any) -> None:
    """Each file's header mapped onto its contract: missing, extra, drift, encoding (no JVM)."""
    from app.registry import closest
    from cdp.errors import DataRejectedError
    from ingestion.check import check_feeds, report_lines, to_json

    context = context_from(options)
    known = list(context.config.ingest.feeds)
    for name in chosen:
        if name not in known:
            raise UsageError(f"no feed {name!r} in the feeds file: {closest(name, known)}")
    checks = check_feeds(context.config, list(chosen) or None)
    click.echo(to_json(checks) if options["as_json"] else "\n".join(report_lines(checks)) or "no files")
    rejected = [c for c in checks if not c.loads]
    if rejected:
        raise DataRejectedError(f"{len(rejected)} of {len(checks)} file(s) would not load: {', '.join(c.path for c in rejected[:3])}")


COMMANDS = (generate, evaluate, link, runs, feeds)
