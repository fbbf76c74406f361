"""The features step's scheduling of several dates, with the Spark work replaced (no JVM)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from types import SimpleNamespace

import pytest

from app.steps import features

D1, D2, D3 = dt.date(2025, 1, 1), dt.date(2025, 7, 1), dt.date(2026, 1, 1)


@pytest.fixture
def calls(monkeypatch):
    """Records each date's build (start, end, thread); the table exists once one finished."""
    log: list[tuple[dt.date, float, float, str]] = []
    done = threading.Event()

    def build(_context, as_of):
        started = time.perf_counter()
        time.sleep(0.05)
        log.append((as_of, started, time.perf_counter(), threading.current_thread().name))
        done.set()
        return {"active": as_of.month}

    monkeypatch.setattr(features, "build_features", build)
    monkeypatch.setattr(features, "table_exists", lambda _spark, _path: done.is_set())
    return log


def _context():
    return SimpleNamespace(spark=None, lake=SimpleNamespace(path=lambda table: table.name))


@pytest.mark.parametrize("dates", [[D1], [D1, D2], [D1, D2, D3]])
def test_every_date_is_built_once(calls, dates):
    built = features.build_features_on(_context(), dates)
    assert list(built) == dates and [stages for stages, _ in built.values()] == [{"active": d.month} for d in dates]
    assert sorted(c[0] for c in calls) == dates


def test_the_first_date_creates_the_table_alone_then_two_at_a_time(calls):
    features.build_features_on(_context(), [D1, D2, D3])
    first = next(c for c in calls if c[0] == D1)
    assert all(c[1] >= first[2] for c in calls if c[0] != D1)  # nothing started before the table existed
    later = [c for c in calls if c[0] != D1]
    assert later[0][1] < later[1][2] and later[1][1] < later[0][2]  # the other two overlapped
