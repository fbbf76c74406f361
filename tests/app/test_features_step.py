"""The features step's passes over several dates, with the Spark work replaced (no JVM)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from app.steps import features

_CONTEXT = SimpleNamespace(config=None)


@pytest.fixture
def passes(monkeypatch):
    """Records the dates of each pass; each date reports its month as its active count. The
    lake is small (its feed files under the small-data limit)."""
    log: list[list[dt.date]] = []

    def build(_context, dates):
        log.append(list(dates))
        return {d: {"active": d.month} for d in dates}

    monkeypatch.setattr(features, "build_features", build)
    monkeypatch.setattr(features, "small_lake_bytes", lambda _config: 1024)
    return log


def _dates(n: int) -> list[dt.date]:
    return [dt.date(2020 + i // 12, i % 12 + 1, 1) for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 4, features.DATES_PER_PASS, features.DATES_PER_PASS + 1, 3 * features.DATES_PER_PASS + 2])
def test_every_date_is_built_once_in_bounded_passes_oldest_first(passes, n):
    dates = _dates(n)
    built = features.build_features_on(_CONTEXT, list(reversed(dates)) + dates[:2])  # unsorted, with repeats
    assert list(built) == dates
    assert [stages for stages, _ in built.values()] == [{"active": d.month} for d in dates]
    assert [d for one in passes for d in one] == dates
    assert all(0 < len(one) <= features.DATES_PER_PASS for one in passes)
    assert len(passes) == -(-n // features.DATES_PER_PASS)


def test_dates_of_one_pass_share_its_time(passes):
    built = features.build_features_on(_CONTEXT, _dates(2))
    (_, first), (_, second) = built.values()
    assert first == second >= 0


def test_a_larger_lake_builds_one_date_at_a_time(passes, monkeypatch):
    """Past the small-data limit a pass of several dates is one plan too large for the driver's
    broadcast tables (seen at 100,000 customers): one date per pass."""
    monkeypatch.setattr(features, "small_lake_bytes", lambda _config: None)
    dates = _dates(4)
    built = features.build_features_on(_CONTEXT, dates)
    assert list(built) == dates and passes == [[d] for d in dates]
