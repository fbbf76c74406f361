"""Chinese names and the ways they get mangled between systems."""

from __future__ import annotations

import random
from collections import defaultdict
from functools import lru_cache

from datagen.reference import GIVEN_CHARS_FEMALE, GIVEN_CHARS_MALE, SURNAMES

__all__ = ["NameVariants", "new_given_name", "new_surname"]

_SURNAME_CHOICES = [s for s, _ in SURNAMES]
_SURNAME_WEIGHTS = [w for _, w in SURNAMES]


def new_surname(rng: random.Random) -> str:
    return rng.choices(_SURNAME_CHOICES, weights=_SURNAME_WEIGHTS)[0]


def new_given_name(rng: random.Random, gender: str) -> str:
    pool = GIVEN_CHARS_MALE if gender == "M" else GIVEN_CHARS_FEMALE
    # Single-character given names are common (王伟, 李娜), so popular full names repeat.
    if rng.random() < 0.45:
        return rng.choice(pool[:12])
    return rng.choice(pool) + rng.choice(pool)


class NameVariants:
    """Traditional characters, homophone typos and pinyin spellings of a name."""

    def __init__(self) -> None:
        import opencc
        from pypinyin import lazy_pinyin

        self._s2t = opencc.OpenCC("s2t")
        self._pinyin = lazy_pinyin
        by_sound: dict[str, set[str]] = defaultdict(set)
        for char in set(GIVEN_CHARS_MALE + GIVEN_CHARS_FEMALE):
            by_sound[lazy_pinyin(char)[0]].add(char)
        self._homophones = {
            c: sorted(chars - {c}) for chars in by_sound.values() for c in chars if len(chars) > 1
        }

    @lru_cache(maxsize=100_000)  # noqa: B019 - one instance per generation run
    def traditional(self, name: str) -> str:
        return str(self._s2t.convert(name))

    def homophone(self, rng: random.Random, name: str) -> str:
        positions = [i for i, c in enumerate(name) if i > 0 and c in self._homophones]
        if not positions:
            return name
        i = rng.choice(positions)
        return name[:i] + rng.choice(self._homophones[name[i]]) + name[i + 1 :]

    def pinyin(self, rng: random.Random, name: str, surname_len: int) -> str:
        """WANG WEI, Wang Wei, Wei Wang or WANG XIAOMING, as romanised systems write it."""
        surname = "".join(self._pinyin(name[:surname_len]))
        given = "".join(self._pinyin(name[surname_len:]))
        roll = rng.random()
        if roll < 0.5:
            return f"{surname} {given}".upper()
        if roll < 0.8:
            return f"{surname.title()} {given.title()}"
        return f"{given.title()} {surname.title()}"
