"""The state `cdp generate` works on: the population, the feed writers, and the helpers that
type a person's identity differently in every system (see `generator`)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

from datagen.dealer_patterns import DealerPatterns
from datagen.identifiers import format_mobile, mistype_digits
from datagen.names import NameVariants
from datagen.population import Person, Population
from datagen.reference import CITIES
from datagen.returns import LapsedReturns
from datagen.writer import FeedWriter, TruthWriter

__all__ = ["World", "at"]


def at(day: dt.date, rng: random.Random, start_hour: int = 9, end_hour: int = 18) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, rng.randint(start_hour, end_hour - 1), rng.randint(0, 59), rng.randint(0, 59))


class World:
    """Generation state: population, writers and the identity-noise helpers."""

    def __init__(self, out: Path, seed: int, as_of: dt.date, error_rate: float, rows_per_file: int) -> None:
        from faker import Faker

        self.rng = random.Random(seed)
        faker = Faker("zh_CN")
        faker.seed_instance(seed)
        streets = sorted({faker.street_name() for _ in range(600)})
        self.as_of = as_of
        self.error_rate = error_rate
        self.population = Population(self.rng, as_of, streets)
        self.variants = NameVariants()
        self.writers = {f: FeedWriter(out, f, rows_per_file) for f in (
            "sales_orders", "leads", "service_orders", "warranty_claims", "complaints", "surveys", "contact_preferences"
        )}
        self.truth = TruthWriter(out)
        self.dealers = {c.city: [f"{c.dealer_prefix}{n:03d}" for n in (1, 2, 3)] for c in CITIES}
        self.counters: dict[str, int] = {}
        self.vin_serial = 0
        self.patterns = DealerPatterns(seed)
        self.returns = LapsedReturns(seed)

    # -- identity noise -------------------------------------------------------------
    def name_of(self, person: Person, pinyin_rate: float = 0.03) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.07:
            return self.variants.traditional(person.name)
        if roll < 0.12:
            return self.variants.homophone(rng, person.name)
        if roll < 0.12 + pinyin_rate:
            return self.variants.pinyin(rng, person.name, person.surname_len)
        if roll < 0.15 + pinyin_rate:
            # 王先生 / 李女士: the advisor only noted the surname
            return person.name[: person.surname_len] + ("先生" if person.gender == "M" else "女士")
        if roll < 0.17 + pinyin_rate:
            return person.name[: person.surname_len] + " " + person.name[person.surname_len :]
        if roll < 0.19 + pinyin_rate:
            # 高秀强先生: the full name with the form of address after it
            return person.name + ("先生" if person.gender == "M" else "女士")
        return person.name

    def mobile_of(self, person: Person, when: dt.date) -> str:
        rng = self.rng
        number = person.mobile_at(when)
        if len(person.mobiles) > 1 and number != person.mobiles[0][0] and rng.random() < 0.1:
            number = person.mobiles[0][0]  # still gives the old number after the change
        if person.shares_family_phone and person.family is not None and rng.random() < 0.3:
            number = person.family.mobile_at(when)
        if rng.random() < 0.015:
            number = mistype_digits(rng, number)
        return format_mobile(rng, number)

    def id_of(self, person: Person) -> str | None:
        roll = self.rng.random()
        if roll < 0.12:
            return None
        if roll < 0.15:
            return mistype_digits(self.rng, person.id_number)
        return person.id_number

    def vin_as_typed(self, value: str) -> str:
        if self.rng.random() < 0.01:
            chars = list(value)
            i = self.rng.randrange(9, 17)
            chars[i] = self.rng.choice("0123456789")
            return "".join(chars)
        return value

    def next_id(self, prefix: str) -> str:
        self.counters[prefix] = self.counters.get(prefix, 0) + 1
        return f"{prefix}{self.counters[prefix]:08d}"

    # -- output -----------------------------------------------------------------------
    def emit(self, feed: str, record: dict[str, Any], key: str, mentions: list[tuple[str, str]]) -> None:
        if self.error_rate and self.rng.random() < self.error_rate:
            self._break(feed, record)
        self.writers[feed].write(record)
        for role, pid in mentions:
            self.truth.write(feed, str(record[key]), role, pid)

    def _break(self, feed: str, record: dict[str, Any]) -> None:
        """Typical export faults, so the ingest's quarantine has real work."""
        rng = self.rng
        fault = rng.choice(("date", "number", "enum", "required"))
        if fault == "date":
            column = {"sales_orders": "order_date", "leads": "created_at", "service_orders": "opened_at",
                      "warranty_claims": "claim_date", "complaints": "received_at", "surveys": "surveyed_at",
                      "contact_preferences": "updated_at"}[feed]
            record[column] = rng.choice(("2023-02-30", "31/12/2022", "unknown"))
        elif fault == "number":
            column = {"sales_orders": "price", "service_orders": "total_amount", "warranty_claims": "claim_amount",
                      "surveys": "overall_score"}.get(feed)
            if column:
                record[column] = rng.choice(("-1200", "abc", "1,200.00x"))
        elif fault == "enum":
            column = {"sales_orders": "customer_type", "leads": "status", "service_orders": "service_type",
                      "warranty_claims": "status", "complaints": "category", "surveys": "survey_type",
                      "contact_preferences": "channel"}[feed]
            record[column] = "UNKNOWN"
        else:
            column = {"sales_orders": "dealer_code", "leads": "dealer_code", "service_orders": "vin",
                      "warranty_claims": "vin", "complaints": "received_at", "surveys": "dealer_code",
                      "contact_preferences": "channel"}[feed]
            record[column] = None

    def close(self) -> dict[str, int]:
        for w in self.writers.values():
            w.close()
        self.truth.close()
        return {f: w.rows for f, w in self.writers.items()}
