"""The Flask app: sign-in with argon2 password hashes, signed session cookies, CSRF tokens on
every form, per-role permissions, security headers that let a page load nothing from outside
the app, and the Chinese/English switch. The pages live in `web.views`."""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, abort, g, redirect, render_template, request, session, url_for

from cdp.config import AppConfig
from cdp.reader import LakeReader
from web.i18n import LANGUAGES, format_date, format_money, format_number, format_percent, translate
from web.jobs import JobRunner
from web.users import UserBook, WebUser, load_users

__all__ = ["create_app", "requires"]

# After this many failed sign-ins for one name within the window, that name waits.
_MAX_FAILURES = 5
_FAILURE_WINDOW_SECONDS = 600
_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _UserFile:
    """The users file, read again when it changes (a removed user is signed out at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: float | None = -1.0
        self._book = UserBook()
        self._lock = threading.Lock()

    def book(self) -> UserBook:
        stamp = self.path.stat().st_mtime if self.path.exists() else None
        with self._lock:
            if stamp != self._stamp:
                self._book, self._stamp = load_users(self.path), stamp
            return self._book


def _secret_key(path: Path) -> bytes:
    """The session-signing key, made once and kept beside the users file (mode 0600)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(handle, "wb") as out:
            out.write(secrets.token_bytes(32))
    return path.read_bytes()


def requires(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view only for signed-in users whose role has `permission` (else sign-in or 403)."""
    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if g.user is None:
                return redirect(url_for("auth.login", next=request.path))
            if not g.user.may(permission):
                abort(403)
            return view(*args, **kwargs)
        return guarded
    return wrap


def create_app(
    config: AppConfig, *, users_path: str | Path | None = None, runner: JobRunner | None = None,
    spark_factory: Callable[[AppConfig], Any] | None = None,
) -> Flask:
    """The app over the profile's lake; `runner` (or one made here) works the background actions."""
    from web.list_views import lists
    from web.views import auth, pages

    users = _UserFile(Path(users_path or config.conf_path(config.web.users_file)))
    app = Flask(__name__)
    secure = config.web.secure_cookies if config.web.secure_cookies is not None else config.web.host not in _LOOPBACK
    app.config.update(
        SECRET_KEY=_secret_key(users.path.with_name(f".{users.path.stem}.secret")),
        SESSION_COOKIE_NAME="cdp_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=secure,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=config.web.session_minutes),
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions["cdp"] = {
        "config": config,
        "reader": LakeReader(config.resolve(config.lake.root)),
        "users": users,
        "runner": runner or JobRunner(config, spark_factory),
        "failures": {},
        "warmed": threading.Event(),
    }

    @app.before_request
    def _load_user() -> Any:
        g.cdp = app.extensions["cdp"]
        g.lang = session.get("lang") or config.web.language
        name = session.get("user")
        user: WebUser | None = g.cdp["users"].book().users.get(name) if name else None
        if name and user is None:
            session.clear()
        g.user, g.user_name = user, name if user else None
        if request.method == "POST":
            sent = request.form.get("csrf_token", "")
            expected = session.get("csrf", "")
            if not expected or not hmac.compare_digest(sent, expected):
                abort(400, description="CSRF token missing or wrong")
        return None

    @app.after_request
    def _headers(response: Any) -> Any:
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.context_processor
    def _helpers() -> dict[str, Any]:
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        lang = g.get("lang", "zh")
        return {
            "t": lambda key: translate(key, lang), "lang": lang, "user": g.get("user"), "user_name": g.get("user_name"),
            "csrf_token": session["csrf"], "num": format_number, "money": format_money, "pct": format_percent,
            "date": lambda v: format_date(v, lang),
        }

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    def _error(error: Any) -> Any:
        key = {400: "bad_request", 403: "forbidden", 404: "not_found"}[error.code]
        return render_template("error.html", code=error.code, key=key, detail=error.description), error.code

    @app.get("/lang/<code>")
    def switch_language(code: str) -> Any:
        if code not in LANGUAGES:
            abort(404)
        session["lang"] = code
        back = request.referrer or ""
        return redirect(back if back.startswith(request.host_url) else url_for("pages.overview"))

    app.register_blueprint(auth)
    app.register_blueprint(pages)
    app.register_blueprint(lists)
    threading.Thread(target=_warm_up, args=(config, app.extensions["cdp"]["reader"], app.extensions["cdp"]["warmed"]),
                     name="cdp-web-warm-up", daemon=True).start()
    return app


def _warm_up(config: AppConfig, reader: LakeReader, warmed: threading.Event) -> None:
    """Import the heavy libraries and read the registered segment model's traits once, in the
    background, so that the first visitor of those pages does not wait for them; `warmed` is
    set when that is over, whether it worked or not."""
    try:
        import splink  # noqa: F401 - imported for its side effect: warm

        import segmentation.views  # noqa: F401 - the segment page's (scikit-learn comes with the package)
        from features.catalog import segmentation_features  # noqa: F401 - the segment page's
        from web.pages import segment_sizes
        from web.views import _registered_traits

        sizes = segment_sizes(reader)
        if sizes:
            _registered_traits(config.mlflow_tracking_uri(), sizes["model_name"], sizes["model_version"])
    except Exception:  # a warm-up only: the page reports whatever is wrong when asked
        logging.getLogger(__name__).debug("warm-up failed", exc_info=True)
    finally:
        warmed.set()


def note_failure(failures: dict[str, list[float]], name: str) -> None:
    now = time.time()
    failures[name] = [t for t in failures.get(name, []) if now - t < _FAILURE_WINDOW_SECONDS] + [now]


def locked_out(failures: dict[str, list[float]], name: str) -> bool:
    now = time.time()
    return len([t for t in failures.get(name, []) if now - t < _FAILURE_WINDOW_SECONDS]) >= _MAX_FAILURES
