"""The `cdp` command line, built on click from the step registry.

Every expected failure is a `CdpError`: one line on stderr, the exit code of its class (see
`cdp.errors`), no traceback. `main(argv)` returns the exit code, for tests and wrappers.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click

from app.context import RunContext
from app.options import COMMON_PARAMS, SuggestingGroup, common_options, context_from, emit
from app.registry import PIPELINE, Step, get_step, select_steps, steps
from cdp.errors import CdpError, UsageError

__all__ = ["cli", "main"]

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return version("dealer-cdp")
    except PackageNotFoundError:
        return "unknown"


@click.group(cls=SuggestingGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(_version(), prog_name="cdp")
def cli() -> None:
    """Customer data platform for car dealer groups: ingest, resolve, segment, activate."""


@cli.group(cls=SuggestingGroup)
def run() -> None:
    """Run a step of the pipeline, or the whole pipeline, in one Spark application."""


def _step_command(step: Step) -> click.Command:
    def callback(**options: Any) -> None:
        context = context_from(options, log_level="INFO")
        from app.runner import run_step

        report = run_step(context, step, {p.name: options.get(p.name) for p in step.params if p.name})
        emit(report, options["as_json"])
        if report.status == "partial":
            sys.exit(1)

    return click.Command(step.name, callback=callback, params=[*step.params, *COMMON_PARAMS], help=step.help,
                         short_help=step.help.split(". ")[0])


def _champion_exists(context: RunContext, step: str) -> bool:
    from cdp.tracking import ModelRegistryError, get_model_version

    name = context.config.segmentation.model_name if step == "train_segments" else context.config.activation.winback.model_name
    try:
        get_model_version(context.config, name, "champion")
    except ModelRegistryError:
        return False
    return True


@run.command("pipeline")
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="features, segments and lists as of this date (default: today)")
@click.option("--from", "start", help="first step to run")
@click.option("--to", "stop", help="last step to run")
@click.option("--only", multiple=True, help="run only this step; repeatable")
@click.option("--incremental", is_flag=True, help="resolve links only the records new since the last run, with the saved model")
@common_options
def run_pipeline_command(
    as_of: dt.datetime | None, start: str | None, stop: str | None, only: tuple[str, ...], incremental: bool, **options: Any
) -> None:
    """Every step in order: ingest, resolve, consent, ownership, features, segments, reminders, audiences, win-back."""
    from app.runner import run_pipeline

    selected = select_steps(PIPELINE, start, stop, only)
    if incremental and "resolve" not in selected:
        raise UsageError("--incremental changes how resolve runs, and the steps selected leave resolve out")
    context = context_from(options, as_of.date() if as_of else None, log_level="INFO")
    explicit = selected if (start or stop or only) else None
    step_options = {"resolve": {"incremental": True}} if incremental else None
    run_pipeline(context, explicit, champion_exists=_champion_exists, emit=lambda r: emit(r, options["as_json"]), options=step_options)


def _register_steps() -> None:
    for name in PIPELINE:
        run.add_command(_step_command(get_step(name)))
    for name, step in steps().items():
        if name not in PIPELINE:
            run.add_command(_step_command(step))


def _register_commands() -> None:
    from app.commands import kpis, lists, lookups, models, operations, privacy, tools, web

    for group in (*tools.COMMANDS, *lookups.COMMANDS, *models.COMMANDS, *lists.COMMANDS, *operations.COMMANDS, *kpis.COMMANDS, *privacy.COMMANDS, *web.COMMANDS):
        cli.add_command(group)


_register_steps()
_register_commands()


def main(argv: list[str] | None = None) -> int:
    """Run `cdp` with `argv`; returns the exit code (see `cdp.errors`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cli.main(args=args, prog_name="cdp", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    except CdpError as exc:
        click.echo(f"cdp: {exc}", err=True)
        return exc.exit_code
    except SystemExit as exc:
        return int(exc.code or 0) if isinstance(exc.code, int | None) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
