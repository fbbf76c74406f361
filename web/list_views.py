"""The pages that act on lists: campaigns (preview, build, versions, download), the win-back
list and reminders due (with download), dealer KPIs, the export audit, and background jobs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, abort, g, jsonify, redirect, render_template, request, url_for

from cdp import catalog
from cdp.errors import CdpError
from web import pages as data
from web.i18n import translate

__all__ = ["lists"]

lists = Blueprint("lists", __name__)
_FORMATS = ("csv", "xlsx")
_MIME = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _requires(permission: str) -> Any:
    from web.app import requires

    return requires(permission)


def _book() -> Any:
    from activation.versions import load_campaigns

    return load_campaigns(g.cdp["config"])


def _format() -> str:
    fmt = request.form.get("format", "csv")
    if fmt not in _FORMATS:
        abort(400, description=f"format must be one of {', '.join(_FORMATS)}")
    return fmt


def _dealer_arg(value: str | None) -> str | None:
    """A dealer the viewer names: one the lake knows and the viewer may see, else 404/403."""
    if not value:
        return None
    if value not in data.known_dealers(g.cdp["reader"]):
        abort(404)
    if not g.user.sees_dealer(value):
        abort(403)
    return value


@lists.get("/campaigns")
@_requires("lists")
def campaigns() -> Any:
    book = _book()
    reader = g.cdp["reader"]
    latest = {}
    if reader.exists(catalog.AUDIENCE_VERSIONS):
        latest = {r["campaign"]: r for r in reader.query(
            "SELECT campaign, max(version) AS version, arg_max(listed, version) AS listed, max(built_at) AS built_at FROM v GROUP BY campaign",
            {"v": catalog.AUDIENCE_VERSIONS})}
    return render_template("campaigns.html", book=book, latest=latest)


@lists.get("/campaigns/<name>")
@_requires("lists")
def campaign(name: str) -> Any:
    from activation.preview import preview_from_lake
    from activation.versions import utc_now

    book = _book()
    if name not in book.campaigns:
        abort(404)
    reader = g.cdp["reader"]
    problem, preview = None, None
    try:
        preview = preview_from_lake(reader, book, name, None, utc_now(), tuple(g.cdp["config"].activation.consent.require_opt_in))
    except CdpError as exc:
        problem = str(exc)
    versions = reader.query("SELECT * EXCLUDE (definition) FROM v WHERE campaign = ? ORDER BY version DESC",
                            {"v": catalog.AUDIENCE_VERSIONS}, [name]) if reader.exists(catalog.AUDIENCE_VERSIONS) else []
    reach_bars = [(translate(c, g.lang), n) for c, n in preview.reachable_by_channel.items()] if preview else []
    return render_template("campaign.html", name=name, campaign=book.campaigns[name], preview=preview, problem=problem,
                           versions=versions, reach_bars=reach_bars, jobs=[j.public() for j in g.cdp["runner"].of_user(g.user_name)][:5])


@lists.post("/campaigns/<name>/build")
@_requires("lists")
def build(name: str) -> Any:
    if name not in _book().campaigns:
        abort(404)
    job = g.cdp["runner"].build_audience(g.user_name, name)
    return redirect(url_for("lists.job_page", job_id=job.job_id))


@lists.post("/campaigns/<name>/download")
@_requires("lists")
def download_audience(name: str) -> Any:
    if name not in _book().campaigns:
        abort(404)
    version = request.form.get("version", "")
    job = g.cdp["runner"].export_audience(g.user_name, name, int(version) if version.isdigit() else None, _format())
    return redirect(url_for("lists.job_page", job_id=job.job_id))


@lists.get("/lists")
@_requires("lists")
def winback_and_reminders() -> Any:
    dealer = _dealer_arg(request.args.get("dealer"))
    scope = list(g.user.dealers) if g.user.scoped else None
    reader = g.cdp["reader"]
    dealers = [d for d in data.known_dealers(reader) if g.user.sees_dealer(d)]
    return render_template("lists.html", dealer=dealer, dealers=dealers, winback=data.winback_rows(reader, scope, dealer),
                           reminders=data.reminders_due(reader, scope, dealer))


@lists.post("/lists/<kind>/download")
@_requires("lists")
def download_list(kind: str) -> Any:
    from activation.exports import REMINDER_FIELDS, WINBACK_FIELDS
    from activation.reminders import REMINDER_KINDS

    if kind not in ("winback", "reminders"):
        abort(404)
    dealer = _dealer_arg(request.form.get("dealer"))
    if g.user.scoped and dealer is None:
        abort(403)  # a manager downloads one of their dealers' lists, never the group's
    fmt, reader, config = _format(), g.cdp["reader"], g.cdp["config"]
    runner = g.cdp["runner"]
    if kind == "winback":
        day = reader.latest(catalog.WINBACK)
        job = runner.export_table(g.user_name, "winback", catalog.WINBACK, day, dealer, fmt, list_kind="winback",
                                  list_name=f"winback{'_' + dealer if dealer else ''}", channel=config.activation.winback.channel,
                                  fields=WINBACK_FIELDS, order_by=("dealer_rank" if dealer else "rank",))
    else:
        reminder_kind = request.form.get("kind", "")
        if reminder_kind not in REMINDER_KINDS:
            abort(400, description=f"kind must be one of {', '.join(REMINDER_KINDS)}")
        day = reader.latest(catalog.REMINDERS)

        def due(rows: Any) -> Any:
            from pyspark.sql import functions as F

            return rows.filter((F.col("kind") == reminder_kind) & F.col("days_until_due").between(0, 29))

        job = runner.export_table(g.user_name, f"reminders_{reminder_kind}", catalog.REMINDERS, day, dealer, fmt, where=due,
                                  list_kind="reminders", list_name=f"{reminder_kind}_30d", channel="sms", fields=REMINDER_FIELDS,
                                  order_by=("due_date", "customer_id"))
    return redirect(url_for("lists.job_page", job_id=job.job_id))


@lists.get("/kpis")
@_requires("kpis")
def kpis() -> Any:
    from operations.figures import load_month

    reader = g.cdp["reader"]
    month_arg = request.args.get("month", "")
    try:
        month = dt.datetime.strptime(month_arg, "%Y-%m").date() if month_arg else None
    except ValueError:
        abort(400, description="month is YYYY-MM")
    problem, figures = None, None
    try:
        figures = load_month(reader, None, month, None)
    except CdpError as exc:
        problem = str(exc)
    rows = [r for r in figures.rows if r.level != "dealer" or g.user.sees_dealer(r.dealer_code)] if figures else []
    return render_template("kpis.html", figures=figures, rows=rows, problem=problem)


@lists.get("/audit")
@_requires("audit")
def audit() -> Any:
    return render_template("audit.html", rows=data.audit_rows(g.cdp["reader"]))


@lists.get("/jobs/<job_id>")
@_requires("view")
def job_page(job_id: str) -> Any:
    job = g.cdp["runner"].get(job_id, g.user_name)
    if job is None:
        abort(404)
    if request.args.get("format") == "json":
        return jsonify(job.public())
    return render_template("job.html", job=job.public())


@lists.get("/jobs/<job_id>/download")
@_requires("lists")
def job_download(job_id: str) -> Any:
    taken = g.cdp["runner"].take_download(job_id, g.user_name)
    if taken is None:
        abort(404)
    body, filename = taken
    fmt = filename.rsplit(".", 1)[-1]
    if fmt == "csv":
        body = b"\xef\xbb\xbf" + body  # a BOM, so Excel opens Chinese text as UTF-8
    return Response(body, mimetype=_MIME[fmt], headers={"Content-Disposition": f'attachment; filename="{filename}"'})
