"""`cdp kpi show` and `cdp report dealer`: the monthly dealer figures, read from the gold
tables without a JVM."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from app.options import common_options, context_from
from cdp.errors import UsageError, closest
from cdp.reader import LakeReader
from operations.figures import load_month

__all__ = ["COMMANDS"]

_MONTH = click.DateTime(["%Y-%m"])


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@click.group()
def kpi() -> None:
    """Monthly dealer figures: retention, leads, first-time fix, satisfaction, complaints, campaigns."""


@kpi.command("show")
@click.option("--dealer", help="one dealer (default: every dealer, region and the group)")
@click.option("--month", type=_MONTH, help="YYYY-MM (default: the latest complete month)")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="the build to read (default: the latest)")
@common_options
def kpi_show(dealer: str | None, month: dt.datetime | None, as_of: dt.datetime | None, **options: Any) -> None:
    """The figures of one month, per dealer, region and the group (`cdp run dealer_kpis`)."""
    context = context_from(options)
    figures = load_month(LakeReader(context.lake.root), dealer, month.date() if month else None, as_of.date() if as_of else None)
    if options["as_json"]:
        click.echo(json.dumps(figures.as_dict(), default=str, ensure_ascii=False, indent=2))
        return
    click.echo(f"dealer figures for {figures.month:%Y-%m} (as of {figures.as_of}{'' if figures.complete else ', month not complete'})")
    click.echo(f"{'level':<7} {'dealer':<12} {'owners':>7} {'active':>7} {'dormant':>8} {'lost':>7} {'new':>5} {'served':>7} "
               f"{'1st visit':>9} {'won back':>8} {'leads':>6} {'conv':>6} {'战败':>6} {'FTF':>6} {'CSI':>6} {'SSI':>6} {'cases':>6} {'late':>5}")
    for row in figures.rows:
        click.echo(
            f"{row.level:<7} {row.dealer_code:<12} {row.kpi['owners']:>7} {_pct(row.kpi['active_rate']):>7} {_pct(row.kpi['dormant_rate']):>8} "
            f"{_pct(row.kpi['lost_rate']):>7} {row.kpi['new_owners']:>5} {row.kpi['owners_served']:>7} {row.kpi['first_visits']:>9} "
            f"{row.kpi['won_back']:>8} {row.kpi['leads']:>6} {_pct(row.kpi['lead_conversion_rate']):>6} {_pct(row.kpi['defeated_rate']):>6} "
            f"{_pct(row.kpi['first_time_fix_rate']):>6} {_num(row.satisfaction('csi')):>6} {_num(row.satisfaction('ssi')):>6} "
            f"{row.complaints['cases']:>6} {row.complaints['late']:>5}"
        )


@click.group()
def report() -> None:
    """Reports for people: the monthly customer-care report of a dealer."""


@report.command("dealer")
@click.option("--dealer", help="the dealer (or --all)")
@click.option("--all", "every", is_flag=True, help="one report per dealer")
@click.option("--month", type=_MONTH, help="YYYY-MM (default: the latest complete month)")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="the build to read (default: the latest)")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="folder for the HTML files")
@common_options
def report_dealer(dealer: str | None, every: bool, month: dt.datetime | None, as_of: dt.datetime | None, out: str, **options: Any) -> None:
    """客服月度分析报告: one HTML file per dealer with its charts, readable offline."""
    from operations.report import write_dealer_report

    if bool(dealer) == every:
        raise UsageError("give --dealer D or --all")
    context = context_from(options)
    reader = LakeReader(context.lake.root)
    figures = load_month(reader, None, month.date() if month else None, as_of.date() if as_of else None)
    dealers = [r.dealer_code for r in figures.rows if r.level == "dealer"]
    if dealer and dealer not in dealers:
        raise UsageError(f"no dealer {dealer!r} in the figures for {figures.month:%Y-%m}: {closest(dealer, dealers)}")
    labels = context.config.operations.satisfaction.item_labels
    written = [write_dealer_report(reader, figures, d, Path(out), labels) for d in ([dealer] if dealer else dealers)]
    if options["as_json"]:
        click.echo(json.dumps({"month": f"{figures.month:%Y-%m}", "files": [str(p) for p in written]}, ensure_ascii=False, indent=2))
        return
    for path in written:
        click.echo(f"wrote {path}")


COMMANDS: tuple[click.Command, ...] = (kpi, report)
