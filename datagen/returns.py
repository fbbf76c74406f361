"""Lapsed owners who come back, from a random stream of its own.

Without this an owner who stopped visiting never returned, and "days since the last visit"
told the win-back model everything. Here an owner whose visits stop may return after a gap
of months or years, more often when they were loyal (many visits before the lapse) or drive
a premium model, less often when they complained a lot; a returning owner may lapse again.
"""

from __future__ import annotations

import random

__all__ = ["LapsedReturns"]

_PREMIUM_FROM = 279_800  # the lowest list price of the premium models (A7, X5, M8)


class LapsedReturns:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"lapsed-returns:{seed}")

    @staticmethod
    def probability(visits: int, complaint_prone: bool, list_price: int) -> float:
        """How likely a lapsed owner is to come back at all."""
        p = 0.12 + min(visits, 6) * 0.05 + (0.15 if list_price >= _PREMIUM_FROM else 0.0) - (0.12 if complaint_prone else 0.0)
        return min(max(p, 0.02), 0.7)

    def gap_days(self, visits: int, complaint_prone: bool, list_price: int) -> int | None:
        """Days from the lapse to the return visit, or None when the owner never returns."""
        if self.rng.random() >= self.probability(visits, complaint_prone, list_price):
            return None
        return self.rng.randint(200, 1400)

    def lapses_again(self) -> int | None:
        """Days until a returned owner lapses again, or None when they stay."""
        return None if self.rng.random() < 0.5 else self.rng.randint(300, 1500)
