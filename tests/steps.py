"""Running one registered step in a test, on the test's SparkSession and config."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

from app.context import RunContext
from app.registry import get_step


def run_step(spark: Any, config: Any, name: str, **options: Any) -> SimpleNamespace:
    """Run step `name` (without the ledger) and return its report's data as attributes."""
    step = get_step(name)
    report = step.run(RunContext(config, _spark=spark), {**step.defaults(), **options})
    return SimpleNamespace(**report.data, report=report)


def build_features(spark: Any, config: Any, as_of: dt.date) -> SimpleNamespace:
    """Features of one date: `customers` and `stages` (customers by lifecycle stage)."""
    from app.steps.features import build_features as build

    stages = build(RunContext(config, _spark=spark), [as_of])[as_of]
    return SimpleNamespace(customers=sum(stages.values()), stages=stages)
