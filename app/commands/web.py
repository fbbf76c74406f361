"""`cdp serve` (the web app) and `cdp user` (who may sign in to it)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from app.options import common_options, context_from
from app.registry import closest
from cdp.errors import UsageError

__all__ = ["COMMANDS"]


@click.command("serve")
@click.option("--host", help="address to listen on (default: the profile's web.host, 127.0.0.1)")
@click.option("--port", type=int, help="port (default: the profile's web.port, 8080)")
@common_options
def serve(host: str | None, port: int | None, **options: Any) -> None:
    """The web app for marketers, dealer managers and reviewers (reads gold without Spark)."""
    from werkzeug.serving import make_server

    from web.app import create_app

    context = context_from(options)
    config = context.config
    web = config.web.model_copy(update={k: v for k, v in {"host": host, "port": port}.items() if v is not None})
    config = config.model_copy(update={"web": web})
    users_file = config.conf_path(config.web.users_file)
    app = create_app(config)
    if not app.extensions["cdp"]["users"].book().users:
        click.echo(f"warning: nobody can sign in yet: add a user with `cdp user add NAME --role ROLE` ({users_file})", err=True)
    server = make_server(web.host, web.port, app, threaded=True)
    click.echo(f"serving {config.resolve(config.lake.root)} on http://{web.host}:{web.port} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        app.extensions["cdp"]["runner"].close()


@click.group()
def user() -> None:
    """Users of the web app: role, dealers and password (kept as an argon2id hash)."""


def _users_path(options: dict[str, Any]) -> tuple[Any, str]:
    context = context_from(options)
    return context, context.config.conf_path(context.config.web.users_file)


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["marketer", "manager", "reviewer", "privileged", "admin"]))
@click.option("--dealer", "dealers", multiple=True, help="a dealer a manager sees; repeatable")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input instead of a prompt")
@common_options
def user_add(name: str, role: str, dealers: tuple[str, ...], password_stdin: bool, **options: Any) -> None:
    """Add a user or replace one's role, dealers and password."""
    from cdp.reader import LakeReader
    from web.pages import known_dealers
    from web.users import UserBook, WebUser, hash_password, load_users, save_users

    context, path = _users_path(options)
    if role == "manager" and not dealers:
        raise UsageError("a manager needs --dealer (one or more)")
    if dealers and role != "manager":
        raise UsageError("--dealer scopes a manager only")
    known = known_dealers(LakeReader(context.lake.root))
    unknown = [d for d in dealers if known and d not in known]
    if unknown:
        raise UsageError(f"no dealer {unknown[0]!r} in the lake: {closest(unknown[0], known)}")
    password = sys.stdin.readline().rstrip("\n") if password_stdin else click.prompt("password", hide_input=True, confirmation_prompt=True)
    book = load_users(path)
    entry = WebUser.model_validate({"role": role, "password_hash": hash_password(password), "dealers": list(dealers)})
    save_users(path, UserBook(users={**book.users, name: entry}))
    click.echo(f"user {name} ({role}{': ' + ', '.join(dealers) if dealers else ''}) saved in {path}")


@user.command("list")
@common_options
def user_list(**options: Any) -> None:
    """Every user with role and dealers (never a hash)."""
    from web.users import load_users

    _, path = _users_path(options)
    rows = {n: {"role": u.role, "dealers": u.dealers} for n, u in sorted(load_users(path).users.items())}
    if options["as_json"]:
        click.echo(json.dumps(rows, indent=2))
        return
    for name, row in rows.items():
        click.echo(f"{name:<20} {row['role']:<11} {', '.join(row['dealers'])}")


@user.command("remove")
@click.argument("name")
@common_options
def user_remove(name: str, **options: Any) -> None:
    """Remove a user; their session ends at their next request."""
    from web.users import UserBook, load_users, save_users

    _, path = _users_path(options)
    book = load_users(path)
    if name not in book.users:
        raise UsageError(f"no user {name!r}: {closest(name, sorted(book.users))}")
    save_users(path, UserBook(users={n: u for n, u in book.users.items() if n != name}))
    click.echo(f"user {name} removed")


COMMANDS: tuple[click.Command, ...] = (serve, user)
