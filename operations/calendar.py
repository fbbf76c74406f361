"""China's working-day calendar: statutory holidays, the weekend days worked in their place
(调休), and local overrides. Plain Python: the Spark side joins its rows as a small table."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass

from cdp.operations_config import CalendarConfig

__all__ = ["CALENDAR_SCHEMA", "Day", "WorkCalendar", "build_calendar"]

log = logging.getLogger(__name__)

CALENDAR_SCHEMA = "day date, workday boolean, statutory_holiday boolean, workday_no int, next_workday date, published boolean"


@dataclass(frozen=True)
class Day:
    day: dt.date
    workday: bool
    statutory_holiday: bool
    published: bool  # False: the year's official schedule is not known; weekends only


@dataclass(frozen=True)
class WorkCalendar:
    """Every day from `first` to `last`; `workday_no` counts working days up to and including
    a day, so working days between two dates are a difference of two numbers."""

    days: tuple[Day, ...]

    @property
    def first(self) -> dt.date:
        return self.days[0].day

    def _at(self, day: dt.date) -> Day:
        index = (day - self.first).days
        if not 0 <= index < len(self.days):
            raise ValueError(f"{day} is outside the calendar ({self.first} to {self.days[-1].day})")
        return self.days[index]

    def is_workday(self, day: dt.date) -> bool:
        return self._at(day).workday

    def rows(self) -> list[tuple[dt.date, bool, bool, int, dt.date | None, bool]]:
        """(day, workday, statutory_holiday, workday_no, next working day after it, published)."""
        numbers, count = [], 0
        for d in self.days:
            count += d.workday
            numbers.append(count)
        following: list[dt.date | None] = [None] * len(self.days)
        upcoming = None
        for i in range(len(self.days) - 1, -1, -1):
            following[i] = upcoming
            if self.days[i].workday:
                upcoming = self.days[i].day
        return [(d.day, d.workday, d.statutory_holiday, n, f, d.published) for d, n, f in zip(self.days, numbers, following)]


def _official(day: dt.date) -> tuple[bool, bool] | None:
    """(working day, statutory holiday) from the official schedule, or None for a year it lacks."""
    import chinese_calendar

    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
        return chinese_calendar.is_workday(day), bool(on_holiday and name)
    except NotImplementedError:
        return None


def build_calendar(first: dt.date, last: dt.date, config: CalendarConfig) -> WorkCalendar:
    """The calendar from `first` to `last`; overrides win over the official schedule. Built
    once per process for the same span and overrides (every feature date asks for it)."""
    if last < first:
        raise ValueError(f"calendar from {first} to {last}: the end is before the start")
    return _calendar(first, last, tuple(sorted(config.holidays)), tuple(sorted(config.workdays)))


@functools.lru_cache(maxsize=32)
def _calendar(first: dt.date, last: dt.date, holidays: tuple[dt.date, ...], workdays: tuple[dt.date, ...]) -> WorkCalendar:
    extra_off, extra_on = set(holidays), set(workdays)
    if clash := sorted(extra_off & extra_on):
        raise ValueError(f"operations.calendar: {clash[0]} is both a holiday and a working day")
    days, unpublished = [], set()
    for offset in range((last - first).days + 1):
        day = first + dt.timedelta(days=offset)
        official = _official(day)
        known = official is not None
        if official is None:
            unpublished.add(day.year)
            official = (day.weekday() < 5, False)
        workday, holiday = official
        if day in extra_off:
            workday, holiday = False, True
        elif day in extra_on:
            workday, holiday = True, False
        days.append(Day(day, workday, holiday, known))
    for year in sorted(unpublished):
        log.warning("no official holiday schedule for %d: weekends only, plus operations.calendar overrides", year)
    return WorkCalendar(tuple(days))
