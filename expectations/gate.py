"""Run a feed's expectation suite on the clean rows of a batch, before anything is written.

Results are kept at SUMMARY level with no sample values (`partial_unexpected_count: 0`), so
no personal data lands in them.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from pyspark.sql import DataFrame

__all__ = ["GateResult", "load_suite_spec", "validate_batch"]

log = logging.getLogger(__name__)

_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0, "include_unexpected_rows": False}
_VALUE_KEYS = ("partial_unexpected_list", "partial_unexpected_counts", "partial_unexpected_index_list", "unexpected_list", "unexpected_index_list", "observed_value_list")


@dataclass(frozen=True)
class GateResult:
    suite: str
    success: bool
    failed: list[str]
    statistics: dict[str, Any]
    results: list[dict[str, Any]]

    def to_json(self) -> str:
        return json.dumps(
            {"suite": self.suite, "success": self.success, "failed": self.failed, "statistics": self.statistics, "results": self.results},
            ensure_ascii=False,
            indent=1,
            default=str,
        )


def load_suite_spec(feed: str) -> list[dict[str, Any]]:
    """The expectation list of `expectations/suites/<feed>.yaml`."""
    text = resources.files("expectations").joinpath("suites", f"{feed}.yaml").read_text(encoding="utf-8")
    spec = yaml.safe_load(text) or {}
    return list(spec.get("expectations", []))


def _describe(config: dict[str, Any]) -> str:
    kwargs = {k: v for k, v in config.get("kwargs", {}).items() if k != "batch_id"}
    column = kwargs.pop("column", None) or ",".join(kwargs.pop("column_list", None) or [])
    return f"{config.get('type')}({column})" if column else str(config.get("type"))


def _strip_values(result: dict[str, Any]) -> dict[str, Any]:
    inner = {k: v for k, v in (result.get("result") or {}).items() if k not in _VALUE_KEYS}
    return {
        "expectation": _describe(result["expectation_config"]),
        "success": result["success"],
        "result": inner,
        "exception": (result.get("exception_info") or {}).get("exception_message"),
    }


def validate_batch(df: DataFrame, feed: str, expectations: list[dict[str, Any]] | None = None, *, on_driver: bool = False) -> GateResult:
    """Validate `df` against the feed's suite (or the given expectation list).

    With `on_driver`, for a batch the caller knows to be small (a small local lake, see
    `cdp.spark.small_lake_bytes`), the rows are brought to the driver and validated as pandas:
    the same suite and verdict, without one Spark job per metric (several seconds a suite)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    sources = context.data_sources
    source = sources.add_pandas(f"{feed}_source") if on_driver else sources.add_spark(f"{feed}_source")
    batch_definition = source.add_dataframe_asset(feed).add_batch_definition_whole_dataframe("batch")
    suite = context.suites.add(gx.ExpectationSuite(name=feed))
    for spec in expectations if expectations is not None else load_suite_spec(feed):
        suite.add_expectation_configuration(ExpectationConfiguration(type=spec["type"], kwargs=spec.get("kwargs", {})))
    batch = batch_definition.get_batch(batch_parameters={"dataframe": df.toPandas() if on_driver else df})
    outcome = batch.validate(suite, result_format=_RESULT_FORMAT).to_json_dict()
    results = [_strip_values(r) for r in outcome["results"]]
    failed = [r["expectation"] for r in results if not r["success"]]
    log.info("suite %s: %s", feed, "passed" if outcome["success"] else f"failed {failed}")
    return GateResult(feed, bool(outcome["success"]), failed, dict(outcome.get("statistics", {})), results)
