"""Dealer-operations steps: `complaint_cases`."""

from __future__ import annotations

from typing import Any

from pyspark.sql import functions as F

from app.context import RunContext
from app.registry import Step, StepReport, register
from app.steps.activation import _AS_OF
from cdp import catalog
from cdp.errors import DataRejectedError
from cdp.lake import read_feed, read_or_empty, replace_partition
from expectations import validate_batch
from operations.complaints import build_complaint_cases, calendar_for

__all__: list[str] = []

def _complaint_cases(context: RunContext, options: dict[str, Any]) -> StepReport:
    spark, lake, config = context.spark, context.lake, context.config.operations
    as_of = options.get("as_of") or context.today()
    complaints = read_feed(spark, lake, "complaints")
    calendar = calendar_for(spark, as_of, config.calendar)
    xref = read_or_empty(spark, lake, catalog.CUSTOMER_XREF, "mention_id string, customer_id string, feed string, record_id string, role string")
    owners = xref.filter((F.col("feed") == "complaints") & (F.col("role") == "primary")).select("record_id", "customer_id")
    staging = lake.path(catalog.work(f"complaint_cases_{as_of.isoformat()}"))
    build_complaint_cases(complaints, owners, calendar, as_of, config.complaints).write.mode("overwrite").parquet(staging)
    cases = spark.read.parquet(staging)
    gate = validate_batch(cases, str(catalog.COMPLAINT_CASES.suite))
    if not gate.success:
        raise DataRejectedError(f"{catalog.COMPLAINT_CASES.label} as of {as_of} failed its expectations: {', '.join(gate.failed)}")
    replace_partition(spark, cases, lake.path(catalog.COMPLAINT_CASES), "as_of_date", as_of)
    summary = cases.agg(
        F.count("*").alias("cases"),
        F.sum(F.when(F.col("status") != "closed", 1).otherwise(0)).alias("open"),
        F.sum(F.col("response_breached").cast("int")).alias("response_breached"),
        F.sum(F.col("closure_breached").cast("int")).alias("closure_breached"),
        F.sum(F.col("valid_reason").isNotNull().cast("int")).alias("valid_by_repeat"),
        F.sum(F.col("report_to_region").cast("int")).alias("report_to_region"),
    ).first().asDict()  # type: ignore[union-attr]
    counts = {k: int(v or 0) for k, v in summary.items()}
    lines = [f"as of {as_of}: {counts['cases']} complaint cases, {counts['open']} not closed; "
             f"response late {counts['response_breached']}, closure late {counts['closure_breached']}, "
             f"valid by the repeat rule {counts['valid_by_repeat']}, reported to the region {counts['report_to_region']}"]
    return StepReport("complaint_cases", lines, {"as_of": as_of, **counts}, rows_written=counts["cases"])


register(Step(
    "complaint_cases", "Complaint cases with response and closure deadlines on China's working calendar, and the repeat rule.",
    _complaint_cases, params=(_AS_OF,), reads=(catalog.silver("complaints"), catalog.CUSTOMER_XREF), writes=(catalog.COMPLAINT_CASES,),
))
