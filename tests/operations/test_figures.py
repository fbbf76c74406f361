"""Reading the built figures without Spark: a table that is missing, empty or built."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from deltalake import write_deltalake

from cdp import catalog
from cdp.reader import LakeReader
from operations.figures import latest_built


def test_latest_built_is_none_until_a_step_found_something(tmp_path):
    reader = LakeReader(str(tmp_path / "lake"))
    assert latest_built(reader, catalog.CAMPAIGN_RESULTS) is None  # never run
    schema = pa.schema([("campaign", pa.string()), ("as_of_date", pa.date32())])
    write_deltalake(reader.path(catalog.CAMPAIGN_RESULTS), pa.table({"campaign": [], "as_of_date": []}, schema=schema))
    assert latest_built(reader, catalog.CAMPAIGN_RESULTS) is None  # run, but no window over yet
    write_deltalake(
        reader.path(catalog.CAMPAIGN_RESULTS),
        pa.table({"campaign": ["a", "a"], "as_of_date": [dt.date(2026, 8, 1), dt.date(2026, 9, 1)]}, schema=schema),
        mode="append",
    )
    assert latest_built(reader, catalog.CAMPAIGN_RESULTS) == dt.date(2026, 9, 1)
