"""Sign-in, and the pages that look at customers: overview, segments, customer 360 with the
reveal and why its records were joined, and the linkage review queue."""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
from typing import Any

from flask import Blueprint, abort, g, redirect, render_template, request, session, url_for

from cdp.errors import CdpError
from entity_resolution.customer_360 import customer_dealers, customer_details, find_customers
from web import pages as data
from web.app import locked_out, note_failure, requires
from web.audit import record_reveal
from web.i18n import translate
from web.users import verify_password

__all__ = ["auth", "pages"]

auth = Blueprint("auth", __name__)
pages = Blueprint("pages", __name__)

_CUSTOMER_ID = re.compile(r"^CU[0-9a-f]{16}$")
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$", re.IGNORECASE)
_MOBILE = re.compile(r"^\+?[\d\s\-()]{11,20}$")


def _dealers() -> list[str] | None:
    """The dealers the viewer may see; None for every dealer."""
    return list(g.user.dealers) if g.user.scoped else None


@auth.route("/login", methods=["GET", "POST"])
def login() -> Any:
    error = None
    if request.method == "POST":
        name = request.form.get("user", "").strip()
        failures = g.cdp["failures"]
        if locked_out(failures, name):
            error = "locked"
        else:
            user = verify_password(g.cdp["users"].book(), name, request.form.get("password", ""))
            if user is None:
                note_failure(failures, name)
                error = "bad_login"
            else:
                lang = session.get("lang")
                session.clear()  # a new session on sign-in: no fixation
                session.update(user=name, csrf=secrets.token_urlsafe(32), lang=lang or g.cdp["config"].web.language)
                session.permanent = True
                target = request.args.get("next", "")
                local = target.startswith("/") and not target.startswith(("//", "/\\"))  # never to another site
                return redirect(target if local else url_for("pages.overview"))
    return render_template("login.html", error=error), 401 if error else 200


@auth.post("/logout")
def logout() -> Any:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("auth.login"))


@pages.get("/")
@requires("view")
def overview() -> Any:
    figures = data.overview(g.cdp["reader"], _dealers())
    stages = {r["stage"]: r["customers"] for r in figures["stages"]}
    stage_bars = [(translate(stage, g.lang), n) for stage, n in stages.items()]
    return render_template("overview.html", data=figures, stages=stages, stage_bars=stage_bars)


@pages.get("/segments")
@requires("view")
def segments() -> Any:
    sizes = data.segment_sizes(g.cdp["reader"])
    traits: dict[str, Any] = {}
    if sizes:
        traits = _segment_traits(sizes["model_name"], sizes["model_version"])
    segment_bars = [(s["segment_name"], s["customers"]) for s in sizes["segments"]] if sizes else []
    return render_template("segments.html", sizes=sizes, traits=traits, segment_bars=segment_bars)


def _segment_traits(model_name: str, version: str) -> dict[str, Any]:
    return _registered_traits(g.cdp["config"].mlflow_tracking_uri(), model_name, version)


@functools.lru_cache(maxsize=32)
def _registered_traits(tracking_uri: str, model_name: str, version: str) -> dict[str, Any]:
    """Each segment's traits and rule from the registered model's metadata (empty if
    unreadable). A registered version never changes, so it is read once."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    try:
        info = mlflow.models.get_model_info(f"models:/{model_name}/{version}")
    except Exception:  # a model not in this registry: the sizes still show
        return {}
    return {s["name"]: s for s in (info.metadata or {}).get("segments", [])}


@pages.get("/segments/<name>")
@requires("view")
def segment(name: str) -> Any:
    from features.catalog import segmentation_features
    from segmentation.views import build_segment_view

    sizes = data.segment_sizes(g.cdp["reader"])
    if not sizes or name not in {s["segment_name"] for s in sizes["segments"]}:
        abort(404)
    view = build_segment_view(g.cdp["reader"], sizes["as_of"], name, segmentation_features()[0])
    traits = _segment_traits(sizes["model_name"], sizes["model_version"]).get(name, {})
    lifecycle_bars = [(translate(stage, g.lang), round(share * 100, 1)) for stage, share in view.lifecycle]
    return render_template("segment.html", view=view, sizes=sizes, traits=traits, lifecycle_bars=lifecycle_bars)


@pages.get("/customers")
@requires("view")
def customers() -> Any:
    query = request.args.get("q", "").strip()
    found: list[dict[str, Any]] = []
    if query:
        reader = g.cdp["reader"]
        if _CUSTOMER_ID.match(query):
            found = find_customers(reader, customer_id=query)
        elif _VIN.match(query):
            found = find_customers(reader, vin=query)
        elif _MOBILE.match(query):
            found = find_customers(reader, mobile=query)
        else:
            found = find_customers(reader, plate=query)
        found = [p for p in found if _may_see(p)]
        if len(found) == 1:
            return redirect(url_for("pages.customer", customer_id=found[0]["customer_id"]))
    listed = [customer_details(g.cdp["reader"], p, reveal=False)["profile"] for p in found]
    return render_template("customers.html", query=query, found=listed)


def _may_see(profile: dict[str, Any]) -> bool:
    return not g.user.scoped or bool(customer_dealers(profile) & set(g.user.dealers))


def _profile_or_abort(customer_id: str) -> dict[str, Any]:
    if not _CUSTOMER_ID.match(customer_id):
        abort(404)
    found = find_customers(g.cdp["reader"], customer_id=customer_id)
    if not found:
        abort(404)
    if not _may_see(found[0]):
        abort(403)
    return found[0]


@pages.get("/customers/<customer_id>")
@requires("view")
def customer(customer_id: str) -> Any:
    profile = _profile_or_abort(customer_id)
    view = customer_details(g.cdp["reader"], profile, reveal=False, extended=True)
    return render_template("customer.html", view=view, revealed=False)


@pages.post("/customers/<customer_id>/reveal")
@requires("reveal")
def reveal(customer_id: str) -> Any:
    profile = _profile_or_abort(customer_id)
    purpose = request.form.get("purpose", "").strip()
    if len(purpose) < 4:
        abort(400, description="state the purpose of the reveal")
    record_reveal(g.cdp["reader"], g.user_name, customer_id, purpose[:500])
    view = customer_details(g.cdp["reader"], profile, reveal=True, extended=True)
    return render_template("customer.html", view=view, revealed=True)


@pages.get("/customers/<customer_id>/why")
@requires("view")
def why(customer_id: str) -> Any:
    from cdp import catalog
    from entity_resolution.customer_view import explain_customer
    from entity_resolution.model import read_model

    _profile_or_abort(customer_id)
    reader = g.cdp["reader"]
    try:
        reader.require(catalog.CUSTOMER_XREF, catalog.PERSON_MENTIONS, catalog.MATCH_PAIRS)
        count, links = explain_customer(reader, customer_id, read_model(reader), g.cdp["config"].resolution.match_threshold)
    except CdpError as exc:
        return render_template("why.html", customer_id=customer_id, count=0, links=[], problem=str(exc))
    # The weakest links first: they are the ones a reviewer doubts.
    links.sort(key=lambda link: (link.get("match_probability") or 2.0))
    for link in links:
        link["waterfall"] = _waterfall(link.get("comparisons") or [])
    return render_template("why.html", customer_id=customer_id, count=count, links=links[:10], problem=None)


def _waterfall(comparisons: list[dict[str, Any]], half_width: float = 170.0, origin: float = 470.0) -> list[dict[str, Any]]:
    """Bars of a match-weight waterfall: each comparison moves the running total; drawn to
    fit `half_width` pixels either side of the origin."""
    totals, total = [], 0.0
    for c in comparisons:
        start, total = total, total + (c.get("match_weight") or 0.0)
        totals.append((start, total))
    reach = max([abs(v) for pair in totals for v in pair] + [1.0])
    scale = half_width / reach
    return [
        {"label": f"{c['comparison']}: {c['level']}", "weight": c.get("match_weight") or 0.0,
         "x": origin + min(start, end) * scale, "width": max(abs(end - start) * scale, 1.0), "up": end >= start}
        for c, (start, end) in zip(comparisons, totals)
    ]


@pages.get("/review")
@requires("review")
def review() -> Any:
    pairs = data.review_queue(g.cdp["reader"], threshold=g.cdp["config"].resolution.match_threshold)
    return render_template("review.html", pairs=pairs, decided=request.args.get("decided"))


@pages.post("/review")
@requires("review")
def decide() -> Any:
    from entity_resolution.overrides import record_decision

    left, right, decision = (request.form.get(k, "") for k in ("left", "right", "decision"))
    if decision not in ("confirm", "split"):
        abort(400, description="decision must be confirm or split")
    config = g.cdp["config"]
    try:
        record_decision(config.conf_path(config.resolution.overrides_file), left, right, decision == "confirm",
                        g.user_name, dt.datetime.now(dt.UTC))
    except ValueError as exc:
        abort(400, description=str(exc))
    return redirect(url_for("pages.review", decided=f"{left} {right}"))
