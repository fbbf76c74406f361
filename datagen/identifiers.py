"""Identifiers with real check digits, and the messy ways dealers type them."""

from __future__ import annotations

import datetime as dt
import random

from stdnum.cn import ric, uscc

__all__ = [
    "format_mobile",
    "mistype_digits",
    "new_mobile",
    "plate_number",
    "resident_id",
    "uscc_code",
    "vin",
    "vin_check_digit",
]

_MOBILE_PREFIXES = ("138", "139", "135", "136", "137", "150", "151", "158", "159", "186", "187", "188", "130", "131", "133", "153", "177", "180", "189", "199")
_VIN_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
_VIN_VALUES = "12345678123457923456789"
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_YEAR_CODES = {y: c for y, c in zip(range(2010, 2031), "ABCDEFGHJKLMNPRSTVWXY")}
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def new_mobile(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def format_mobile(rng: random.Random, mobile: str) -> str:
    """The number as someone might have typed it into a DMS or CRM."""
    roll = rng.random()
    if roll < 0.6:
        return mobile
    if roll < 0.7:
        return f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"
    if roll < 0.8:
        return "86" + mobile
    if roll < 0.9:
        return f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}"
    return f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"


def mistype_digits(rng: random.Random, value: str) -> str:
    """One typo: swap two neighbouring digits or change one digit."""
    positions = [i for i, c in enumerate(value) if c.isdigit()]
    if len(positions) < 2:
        return value
    chars = list(value)
    if rng.random() < 0.5:
        i = rng.choice(positions[:-1])
        j = positions[positions.index(i) + 1]
        if chars[i] == chars[j]:
            chars[i] = str((int(chars[i]) + 1) % 10)
        else:
            chars[i], chars[j] = chars[j], chars[i]
    else:
        i = rng.choice(positions[3:] or positions)
        chars[i] = str((int(chars[i]) + rng.randint(1, 9)) % 10)
    return "".join(chars)


def resident_id(rng: random.Random, region_code: str, birth_date: dt.date, gender: str) -> str:
    """18-digit resident ID with a valid check character; the 17th digit is odd for men."""
    sequence = rng.randrange(0, 100) * 10 + rng.choice((1, 3, 5, 7, 9) if gender == "M" else (0, 2, 4, 6, 8))
    body = f"{region_code}{birth_date:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum expects a placeholder check character


def uscc_code(rng: random.Random, region_code: str) -> str:
    """Company Unified Social Credit Code with a valid check character."""
    body = "91" + region_code + "".join(rng.choice(_USCC_ALPHABET) for _ in range(9))
    return body + uscc.calc_check_digit(body)


def vin_check_digit(vin17: str) -> str:
    digits = vin17.translate(str.maketrans(_VIN_LETTERS, _VIN_VALUES))
    total = sum(int(c) * w for c, w in zip(digits, _VIN_WEIGHTS))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


# The first million serials come from plants A-D; each further million from a plant of its own,
# so a VIN stays 17 characters and unique at any population the generator makes.
_LATER_PLANTS = "EFGHJKLMNPRSTUVWXYZ"


def vin(rng: random.Random, model_code: str, model_year: int, serial: int) -> str:
    """A Chinese-built VIN (WMI `LAU`) with a valid check digit at position 9."""
    plant = rng.choice("ABCD")
    million, serial = divmod(serial, 1_000_000)
    if million:
        plant = _LATER_PLANTS[million - 1]
    partial = f"LAU{model_code}0{_YEAR_CODES[model_year]}{plant}{serial:06d}"
    return partial[:8] + vin_check_digit(partial) + partial[9:]


def plate_number(rng: random.Random, province_prefix: str) -> str:
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    return province_prefix + rng.choice("ABCDE") + "".join(rng.choice(letters + "0123456789") for _ in range(5))
