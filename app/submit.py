"""Entry point of `spark-submit jobs/NAME.py [options]`: the same command as `cdp run NAME`."""

from __future__ import annotations

import sys

from app.cli import main

__all__ = ["submit"]


def submit(step: str) -> None:
    """Run step `step` (or `pipeline`) with the script's arguments and exit with its code."""
    sys.exit(main(["run", step, *sys.argv[1:]]))
