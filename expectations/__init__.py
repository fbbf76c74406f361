"""Great Expectations suites (one per feed, in `suites/`) and the gate that runs them."""

from __future__ import annotations

from expectations.gate import GateResult, load_suite_spec, validate_batch

__all__ = ["GateResult", "load_suite_spec", "validate_batch"]
