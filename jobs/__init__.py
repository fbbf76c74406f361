"""Thin job entry points: `cdp run NAME` or `spark-submit jobs/NAME.py`."""

from __future__ import annotations

JOBS = ("ingest", "resolve", "pipeline")

__all__ = ["JOBS"]
