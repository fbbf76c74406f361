"""`cdp segments` (what the segments are, for marketers) and `cdp model` (registered
models, for model owners). `segments list` and `model ...` start no JVM."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from app.options import common_options, context_from
from app.registry import closest
from cdp import catalog
from cdp.errors import MissingInputError, NotFoundError, UsageError
from cdp.reader import LakeReader
from cdp.tracking import ModelVersionInfo, get_model_version, list_model_versions, promote_model_version

__all__ = ["COMMANDS"]

_KEY_METRICS = (
    "k", "silhouette", "davies_bouldin", "stability", "auc", "test_auc", "lift_top_decile", "test_lift_top_decile",
    "recency_auc", "auc_gain_over_recency", "calibration_error",
    "customers", "pairwise_precision", "pairwise_recall", "pairwise_f1",
)
_DATE = click.DateTime(["%Y-%m-%d"])


def _scored_date(reader: LakeReader, as_of: dt.datetime | None) -> dt.date:
    if not reader.exists(catalog.CUSTOMER_SEGMENTS):
        raise MissingInputError("no segments yet: run `cdp run segment`")
    if as_of is None:
        return reader.latest(catalog.CUSTOMER_SEGMENTS)
    dates = [r["d"] for r in reader.query("SELECT DISTINCT as_of_date AS d FROM s ORDER BY d", {"s": catalog.CUSTOMER_SEGMENTS})]
    if as_of.date() not in dates:
        raise UsageError(f"nothing scored as of {as_of:%Y-%m-%d}; scored dates: {', '.join(map(str, dates)) or 'none'}")
    return as_of.date()


@click.group()
def segments() -> None:
    """Segment sizes and traits; one segment against everyone."""


@segments.command("list")
@click.option("--as-of", type=_DATE, help="default: the latest scored")
@common_options
def segments_list(as_of: dt.datetime | None, **options: Any) -> None:
    """Every segment with its size, share and what defines it."""
    import mlflow

    context = context_from(options)
    reader = LakeReader(context.lake.root)
    day = _scored_date(reader, as_of)
    tables = {"s": catalog.CUSTOMER_SEGMENTS}
    first = reader.query("SELECT model_name, model_version FROM s WHERE as_of_date = ? LIMIT 1", tables, [day])[0]
    sizes = reader.query(
        "SELECT segment_name, count(*) AS customers, count(*) / sum(count(*)) OVER () AS share FROM s WHERE as_of_date = ? "
        "GROUP BY segment_name ORDER BY customers DESC, segment_name", tables, [day],
    )
    context.tracker("segmentation")
    metadata = mlflow.models.get_model_info(f"models:/{first['model_name']}/{first['model_version']}").metadata or {}
    traits = {s["name"]: s for s in metadata.get("segments", [])}
    for row in sizes:
        row.update({k: traits.get(row["segment_name"], {}).get(k) for k in ("traits", "rule", "lapsed_share", "mean_value", "play")})
    if options["as_json"]:
        click.echo(json.dumps({"as_of": str(day), **first, "segments": sizes}, default=str, ensure_ascii=False, indent=2))
        return
    click.echo(f"as of {day}, {first['model_name']} version {first['model_version']}")
    click.echo(f"{'segment':<28} {'customers':>9} {'share':>6} {'lapsed':>6} {'value':>10}  key traits / what defines it")
    for row in sizes:
        lapsed = "-" if row["lapsed_share"] is None else f"{row['lapsed_share']:.0%}"
        value = "-" if row["mean_value"] is None else f"{row['mean_value']:,.0f}"
        click.echo(f"{row['segment_name']:<28} {row['customers']:>9} {row['share']:6.1%} {lapsed:>6} {value:>10}  "
                   f"{', '.join(row['traits'] or []) or '-'}")
        if row["play"]:
            click.echo(f"{'':<46}what to do: {row['play']}")
        if row["rule"]:
            click.echo(f"{'':<46}{row['rule']}")


@segments.command("show")
@click.argument("name")
@click.option("--as-of", type=_DATE, help="default: the latest scored")
@click.option("--chart", help="also write a chart: .png or .html")
@common_options
def segments_show(name: str, as_of: dt.datetime | None, chart: str | None, **options: Any) -> None:
    """One segment's profile against everyone: features, top cities and models, lifecycle."""
    from features.catalog import segmentation_features
    from segmentation.views import build_segment_view, write_segment_chart

    context = context_from(options)
    reader = LakeReader(context.lake.root)
    day = _scored_date(reader, as_of)
    names = [r["n"] for r in reader.query("SELECT DISTINCT segment_name AS n FROM s WHERE as_of_date = ? ORDER BY n",
                                          {"s": catalog.CUSTOMER_SEGMENTS}, [day])]
    if name not in names:
        raise UsageError(f"no segment {name!r} as of {day}: {closest(name, names)}")
    view = build_segment_view(reader, day, name, segmentation_features()[0])
    click.echo(f"{view.name}: {view.size} customers ({view.share:.1%}) as of {day}")
    click.echo(f"{'feature':<32} {'segment':>12} {'all':>12} {'ratio':>7}")

    def cell(v: float | None) -> str:
        return f"{v:12,.1f}" if v is not None else f"{'-':>12}"

    for feature, mine, everyone in view.profile:
        ratio = f"{mine / everyone:7.2f}" if mine is not None and everyone else f"{'-':>7}"
        click.echo(f"{feature:<32} {cell(mine)} {cell(everyone)} {ratio}")
    click.echo("top cities:  " + ", ".join(f"{c} {n}" for c, n in view.top_cities))
    click.echo("top models:  " + ", ".join(f"{m} {n}" for m, n in view.top_models))
    click.echo("lifecycle:   " + ", ".join(f"{s} {share:.0%}" for s, share in view.lifecycle))
    if chart:
        click.echo(f"chart written to {write_segment_chart(view, chart)}")


@click.group()
def model() -> None:
    """Registered model versions, their metrics, and promotion."""


def _model_name(context: Any, name: str | None) -> str:
    known = [context.config.segmentation.model_name, context.config.activation.winback.model_name, context.config.resolution.model_name]
    chosen = name or known[0]
    if chosen not in known:
        raise UsageError(f"no model {chosen!r}: {closest(chosen, known)}")
    return chosen


def _row(v: ModelVersionInfo) -> str:
    metrics = "  ".join(f"{m.removeprefix('test_')} {v.metrics[m]:.3f}" for m in _KEY_METRICS if m in v.metrics)
    return f"{v.version:>7}  {','.join(v.aliases) or '-':<12} {v.created:<17} {v.tags.get('chosen', ''):<12} {metrics}"


@model.command("list")
@click.option("--name", help="registered model (default: segmentation.model_name)")
@common_options
def model_list(name: str | None, **options: Any) -> None:
    """Versions with aliases and key metrics."""
    context = context_from(options)
    chosen = _model_name(context, name)
    versions = list_model_versions(context.config, chosen)
    if not versions:
        raise NotFoundError(f"no versions of {chosen} registered")
    if options["as_json"]:
        click.echo(json.dumps([v.__dict__ for v in versions], default=str, indent=2))
        return
    click.echo(f"{'version':>7}  {'aliases':<12} {'created (UTC)':<17} {'chosen':<12} metrics")
    for v in versions:
        click.echo(_row(v))


@model.command("compare")
@click.argument("left")
@click.argument("right")
@click.option("--name", help="registered model (default: segmentation.model_name)")
@common_options
def model_compare(left: str, right: str, name: str | None, **options: Any) -> None:
    """Every metric of two versions side by side."""
    context = context_from(options)
    chosen = _model_name(context, name)
    a, b = (get_model_version(context.config, chosen, v) for v in (left, right))
    click.echo(f"{'metric':<28} {'v' + a.version:>12} {'v' + b.version:>12}")
    for metric in sorted(set(a.metrics) | set(b.metrics)):
        cells = [f"{m[metric]:12.4f}" if metric in m else f"{'-':>12}" for m in (a.metrics, b.metrics)]
        click.echo(f"{metric:<28} {cells[0]} {cells[1]}")


@model.command("promote")
@click.argument("version")
@click.option("--name", help="registered model (default: segmentation.model_name)")
@click.option("--alias", default="champion", show_default=True)
@common_options
def model_promote(version: str, name: str | None, alias: str, **options: Any) -> None:
    """Point an alias (default champion) at a version."""
    context = context_from(options)
    chosen = _model_name(context, name)
    promoted = promote_model_version(context.config, chosen, version, alias)
    click.echo(f"{chosen} version {promoted.version} is now {alias}")


COMMANDS: tuple[click.Command, ...] = (segments, model)
