"""Audience builds and previews called without a fixed time take the clock's (no JVM)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from activation import versions


@pytest.mark.parametrize("call", ["build", "preview"])
def test_without_a_time_the_clock_is_read(monkeypatch, call):
    seen = {}

    def inputs(_spark, _config, _as_of, now, **_kwargs):
        seen["now"] = now
        raise RuntimeError("stop here")

    monkeypatch.setattr(versions, "campaign_inputs" if call == "build" else "audience_inputs", inputs)
    monkeypatch.setattr(versions, "load_campaigns", lambda _config: SimpleNamespace(get=lambda _name: None))
    config = SimpleNamespace(resolve=lambda path: path, lake=SimpleNamespace(root="lake"))
    with pytest.raises(RuntimeError, match="stop here"):
        getattr(versions, call)(None, config, "maintenance_due_sms", None)
    assert isinstance(seen["now"], dt.datetime) and abs(seen["now"] - versions.utc_now()) < dt.timedelta(minutes=1)
