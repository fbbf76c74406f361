"""China's working calendar: statutory holidays, make-up working weekends, overrides (no JVM)."""

from __future__ import annotations

import datetime as dt

import pytest

from cdp.operations_config import CalendarConfig
from operations.calendar import build_calendar

D = dt.date


def test_official_holidays_and_make_up_working_weekends():
    cal = build_calendar(D(2026, 9, 20), D(2026, 10, 12), CalendarConfig())
    assert cal.is_workday(D(2026, 9, 20))  # a Sunday worked for National Day
    assert cal.is_workday(D(2026, 10, 10))  # a Saturday worked for National Day
    assert not cal.is_workday(D(2026, 10, 1)) and not cal.is_workday(D(2026, 10, 7))
    assert cal.is_workday(D(2026, 10, 8))
    assert not cal.is_workday(D(2026, 10, 11))  # an ordinary Sunday
    rows = {r[0]: r for r in cal.rows()}
    assert rows[D(2026, 10, 1)][2] and not rows[D(2026, 10, 11)][2]  # statutory holiday vs weekend
    assert rows[D(2026, 9, 30)][4] == D(2026, 10, 8)  # next working day after
    # Working days between two dates are a difference of their numbers.
    assert rows[D(2026, 10, 12)][3] - rows[D(2026, 9, 30)][3] == 4  # Oct 8, 9, 10 and 12


def test_overrides_win_and_a_year_without_a_schedule_is_flagged():
    config = CalendarConfig(holidays=[D(2026, 6, 8)], workdays=[D(2027, 1, 9)])
    cal = build_calendar(D(2026, 6, 8), D(2027, 1, 11), config)
    rows = {r[0]: r for r in cal.rows()}
    assert not cal.is_workday(D(2026, 6, 8)) and rows[D(2026, 6, 8)][2]
    assert cal.is_workday(D(2027, 1, 9))  # a Saturday declared a working day
    assert cal.is_workday(D(2027, 1, 8)) and not cal.is_workday(D(2027, 1, 10))
    assert rows[D(2026, 6, 8)][5] and not rows[D(2027, 1, 8)][5]  # published schedule or not


def test_a_day_both_off_and_on_is_refused():
    with pytest.raises(ValueError, match="2026-06-08 is both a holiday and a working day"):
        build_calendar(D(2026, 6, 1), D(2026, 6, 30), CalendarConfig(holidays=[D(2026, 6, 8)], workdays=[D(2026, 6, 8)]))
