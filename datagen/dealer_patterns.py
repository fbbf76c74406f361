"""Dealer-operations patterns in the generated data, from a random stream of their own (so
the rest of the data stays what the seed always gave):

- each dealer has its own satisfaction level and its own strong and weak survey items;
- complaints cluster where the rules bite: some arrive on Friday evening, some just before or
  during the October (National Day) holidays;
- repeat bursts: at a few dealers one category draws 4 to 7 complaints in a month, which the
  repeat rule (more than 3 a month, or 5 a quarter) must make valid.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["DealerPatterns"]

SURVEY_ITEMS = ("process", "staff", "facility")
CATEGORIES = ("product_quality", "service", "sales", "parts", "other")


class DealerPatterns:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"dealer-patterns:{seed}")
        self._seed = seed
        self._bias: dict[str, tuple[float, dict[str, float]]] = {}

    def bias(self, dealer: str) -> tuple[float, dict[str, float]]:
        """(overall, per item) satisfaction offsets of a dealer, fixed for the seed."""
        if dealer not in self._bias:
            own = random.Random(f"dealer-bias:{self._seed}:{dealer}")
            self._bias[dealer] = (own.gauss(0, 6), {item: own.gauss(0, 5) for item in SURVEY_ITEMS})
        return self._bias[dealer]

    def survey_scores(self, dealer: str, score: int, item_draws: dict[str, float]) -> tuple[int, dict[str, int]]:
        """A survey's overall score and item scores with the dealer's offsets applied to the
        draws the main stream made."""
        overall, items = self.bias(dealer)
        shifted = max(0, min(100, round(score + overall)))
        return shifted, {k: max(0, min(100, round(v + overall + items.get(k, 0.0)))) for k, v in item_draws.items()}

    def received_at(self, received: dt.datetime, as_of: dt.date) -> dt.datetime:
        """Sometimes moved to the Friday evening of its week, or around National Day."""
        draw = self.rng.random()
        if draw < 0.08:
            friday = received.date() - dt.timedelta(days=(received.weekday() - 4) % 7)
            moved = dt.datetime.combine(friday, dt.time(self.rng.randint(18, 22), self.rng.randint(0, 59)))
        elif draw < 0.12 and received.month in (9, 10):
            day = dt.date(received.year, 9, 28) + dt.timedelta(days=self.rng.randint(0, 9))  # Sep 28 to Oct 7
            moved = dt.datetime.combine(day, dt.time(self.rng.randint(8, 21), self.rng.randint(0, 59)))
        else:
            return received
        return moved if moved.date() < as_of else received

    def repeat_bursts(self, dealers: Sequence[str], callers: Sequence[Any], as_of: dt.date, bursts: int,
                      emit: Callable[[dt.datetime, str, str, Any], None]) -> None:
        """`bursts` runs of 4 to 7 complaints of one category at one dealer within one month
        of the last two years, from different callers; `emit(received_at, dealer, category,
        caller)` writes each."""
        for _ in range(bursts):
            dealer, category = self.rng.choice(list(dealers)), self.rng.choice(CATEGORIES)
            first = as_of - dt.timedelta(days=self.rng.randint(45, 730))
            month = first.replace(day=1)
            for caller in self.rng.sample(list(callers), min(len(callers), self.rng.randint(4, 7))):
                day = month + dt.timedelta(days=self.rng.randint(0, 27))
                if day < as_of:
                    emit(dt.datetime.combine(day, dt.time(self.rng.randint(8, 20), self.rng.randint(0, 59))), dealer, category, caller)
