"""The features step's passes over several dates, with the Spark work replaced (no JVM)."""

from __future__ import annotations

import datetime as dt
import time
from contextlib import contextmanager
from types import SimpleNamespace

import pytest

from app.steps import features

_CONTEXT = SimpleNamespace(config=None)


_RECORDS = object()  # the records kept for a build's passes
_KEEPING = 0.05  # seconds keeping them takes


@pytest.fixture
def kept(monkeypatch):
    """Records the dates records were asked for, and whether to keep them."""
    asked: list[tuple[list[dt.date], bool]] = []

    @contextmanager
    def records_for(_context, dates, keep=False):
        asked.append((list(dates), keep))
        time.sleep(_KEEPING)
        yield _RECORDS

    monkeypatch.setattr(features, "records_for", records_for)
    return asked


@pytest.fixture
def passes(monkeypatch, kept):
    """Records the dates of each pass; each date reports its month as its active count. The
    lake is small (its feed files under the small-data limit)."""
    log: list[list[dt.date]] = []

    def build(_context, dates, records=None):
        assert records is _RECORDS
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
    assert first == second >= _KEEPING


def test_every_pass_reads_records_kept_once_whose_time_counts_for_the_latest_date(passes, kept, monkeypatch):
    """The records tied to customers are kept once for all dates (not once per pass); the
    latest date, the one a daily run builds alone, carries the time keeping them took."""
    monkeypatch.setattr(features, "small_lake_bytes", lambda _config: None)
    dates = _dates(3)
    built = features.build_features_on(_CONTEXT, list(reversed(dates)))
    assert kept == [(dates, True)] and passes == [[d] for d in dates]
    seconds = [s for _, s in built.values()]
    assert seconds[-1] >= _KEEPING > max(seconds[:-1])


@pytest.mark.parametrize("small", [True, False])
def test_a_build_of_one_pass_keeps_no_records(passes, kept, monkeypatch, small):
    """One pass (one date, or a small lake's few dates) joins the records in its own plan:
    writing them out first only added time to a daily run's one date."""
    monkeypatch.setattr(features, "small_lake_bytes", lambda _config: 1024 if small else None)
    dates = _dates(4 if small else 1)
    features.build_features_on(_CONTEXT, dates)
    assert kept == [(dates, False)] and passes == [dates]


def test_no_dates_ask_for_no_records(passes, kept):
    assert features.build_features_on(_CONTEXT, []) == {} and kept == []


def test_a_larger_lake_builds_one_date_at_a_time(passes, monkeypatch):
    """Past the small-data limit a pass of several dates is one plan too large for the driver's
    broadcast tables (seen at 100,000 customers): one date per pass."""
    monkeypatch.setattr(features, "small_lake_bytes", lambda _config: None)
    dates = _dates(4)
    built = features.build_features_on(_CONTEXT, dates)
    assert list(built) == dates and passes == [[d] for d in dates]
