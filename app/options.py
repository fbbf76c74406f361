"""What every `cdp` command shares: the profile, Spark and output options, the run context
built from them, and a command group that suggests the closest name for a typo."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable
from typing import Any

import click

from app.context import RunContext
from app.registry import StepReport

__all__ = ["COMMON_PARAMS", "SuggestingGroup", "as_of_option", "common_options", "context_from", "emit"]


class SuggestingGroup(click.Group):
    """A group that names an unknown command and suggests the closest one."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if args and self.get_command(ctx, name) is None and not name.startswith("-"):
            near = difflib.get_close_matches(name, self.list_commands(ctx), n=1, cutoff=0.5)
            hint = f" Did you mean {near[0]!r}?" if near else f" Commands: {', '.join(self.list_commands(ctx))}."
            raise click.UsageError(f"No such command {name!r}.{hint}", ctx)
        return super().resolve_command(ctx, args)


def _spark_conf(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    overrides = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    return overrides


COMMON_PARAMS: tuple[click.Parameter, ...] = (
    click.Option(["--conf"], envvar="CDP_CONF", help="profile YAML (default $CDP_CONF or conf/local.yaml)"),
    click.Option(["--master"], help="Spark master, overriding the profile (e.g. local[2], spark://host:7077)"),
    click.Option(["--spark-conf"], multiple=True, metavar="KEY=VALUE", callback=_spark_conf, help="extra Spark setting; repeatable"),
    click.Option(["--log-level"], help="log level (default: INFO for `cdp run`, WARNING for lookups)"),
    click.Option(["--json", "as_json"], is_flag=True, help="print the report as JSON"),
)


def as_of_option(help_text: str = "YYYY-MM-DD (default: the run's date)") -> click.Option:
    """A step's `--as-of` option: a date, or None when not given."""
    return click.Option(["--as-of"], type=click.DateTime(["%Y-%m-%d"]), callback=lambda _c, _p, v: v.date() if v else None, help=help_text)


def common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the profile, Spark and output options every command shares."""
    for param in reversed(COMMON_PARAMS):
        click.decorators._param_memo(func, param)  # type: ignore[attr-defined]
    return func


def context_from(options: dict[str, Any], as_of: dt.date | None = None, log_level: str = "WARNING") -> RunContext:
    """The run context of a command: config validated before anything starts."""
    from cdp.logs import configure_logging

    configure_logging(options.get("log_level") or log_level)
    return RunContext.from_profile(
        options.get("conf"), as_of=as_of, master=options.get("master"), spark_overrides=options.get("spark_conf") or {}
    )


def emit(report: StepReport, as_json: bool) -> None:
    click.echo(report.to_json() if as_json else report.text())
