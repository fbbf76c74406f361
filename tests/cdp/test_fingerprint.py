"""Lake fingerprints compare results, not history (no JVM)."""

from __future__ import annotations

import pyarrow as pa
from deltalake import write_deltalake

from cdp.reliability import lake_fingerprint


def _lake(root, run_id: str, loaded_at: str, customers: list[str]):
    write_deltalake(str(root / "_ops" / "runs"), pa.table({"run_id": [run_id], "step": ["ingest"], "seconds": [float(len(run_id))]}))
    write_deltalake(str(root / "gold" / "customers"), pa.table({"customer_id": customers, "loaded_at": [loaded_at] * len(customers)}))


def test_two_runs_with_the_same_result_have_the_same_fingerprint(tmp_path):
    _lake(tmp_path / "a", "20261201T1-aaaaaa", "10:00", ["C1", "C2"])
    _lake(tmp_path / "b", "20261201T2-bbbbbbb", "11:00", ["C2", "C1"])  # another run, another time, other order
    _lake(tmp_path / "c", "20261201T1-aaaaaa", "10:00", ["C1", "C1"])  # a duplicated customer
    a, b, c = (lake_fingerprint(tmp_path / x) for x in "abc")
    assert "_ops/runs" not in a and a == b
    assert c["gold/customers"]["hash"] != a["gold/customers"]["hash"] and c["gold/customers"]["duplicate_keys"] == 1
