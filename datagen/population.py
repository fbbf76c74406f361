"""The people, companies and vehicles behind the feeds: who they really are."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from datagen.identifiers import new_mobile, resident_id, uscc_code
from datagen.names import new_given_name, new_surname
from datagen.reference import CITIES, COMPANY_TRADES, COMPANY_WORDS, City

__all__ = ["Company", "Person", "Population"]

_CITY_WEIGHTS = [c.weight for c in CITIES]
_EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "sina.com", "gmail.com", "outlook.com")


@dataclass
class Person:
    """A real individual. `mobiles` are (number, in use from) in time order."""

    pid: str
    name: str
    surname_len: int
    gender: str
    birth_date: dt.date
    id_number: str
    mobiles: list[tuple[str, dt.date]]
    email: str | None
    city: City
    district: str
    address: str
    family: Person | None = None
    shares_family_phone: bool = False

    def mobile_at(self, when: dt.date) -> str:
        current = self.mobiles[0][0]
        for number, since in self.mobiles:
            if since <= when:
                current = number
        return current


@dataclass
class Company:
    """A company customer; its cars are driven by `drivers` and managed by `manager`."""

    pid: str
    name: str
    uscc: str
    city: City
    district: str
    address: str
    manager: Person
    drivers: list[Person] = field(default_factory=list)


class Population:
    """Creates people and companies; ids are sequential, so the same seed gives the same world."""

    def __init__(self, rng: random.Random, as_of: dt.date, streets: list[str]) -> None:
        self._rng = rng
        self._as_of = as_of
        self._streets = streets
        self._next_person = 0
        self._next_company = 0
        self.people: list[Person] = []

    def _address(self, city: City) -> tuple[str, str]:
        district = self._rng.choice(city.districts)
        street = self._rng.choice(self._streets)
        return district, f"{city.city}{district}{street}{self._rng.randint(1, 999)}号"

    def new_person(self, city: City | None = None, surname: str | None = None, min_age: int = 20) -> Person:
        rng = self._rng
        self._next_person += 1
        city = city or rng.choices(CITIES, weights=_CITY_WEIGHTS)[0]
        gender = "M" if rng.random() < 0.62 else "F"
        surname = surname or new_surname(rng)
        given = new_given_name(rng, gender)
        age_days = rng.randint(min_age * 365, 68 * 365)
        birth = self._as_of - dt.timedelta(days=age_days)
        first_mobile = new_mobile(rng)
        mobiles = [(first_mobile, dt.date(2000, 1, 1))]
        if rng.random() < 0.12:  # changed number at some point
            mobiles.append((new_mobile(rng), self._as_of - dt.timedelta(days=rng.randint(30, 2500))))
        email = None
        if rng.random() < 0.4:
            email = f"{first_mobile[-6:]}{rng.randint(1, 99)}@{rng.choice(_EMAIL_DOMAINS)}"
        district, address = self._address(city)
        person = Person(
            pid=f"P{self._next_person:07d}",
            name=surname + given,
            surname_len=len(surname),
            gender=gender,
            birth_date=birth,
            id_number=resident_id(rng, city.region_code, birth, gender),
            mobiles=mobiles,
            email=email,
            city=city,
            district=district,
            address=address,
        )
        self.people.append(person)
        return person

    def add_family_member(self, person: Person) -> Person:
        """A spouse or adult child in the same city; often uses the owner's phone."""
        same_surname = self._rng.random() < 0.5
        member = self.new_person(city=person.city, surname=person.name[: person.surname_len] if same_surname else None, min_age=18)
        member.address = person.address
        member.district = person.district
        person.family = member
        member.family = person
        person.shares_family_phone = self._rng.random() < 0.5
        return member

    def new_company(self) -> Company:
        rng = self._rng
        self._next_company += 1
        city = rng.choices(CITIES, weights=_CITY_WEIGHTS)[0]
        name = f"{city.city}{rng.choice(COMPANY_WORDS)}{rng.choice(COMPANY_TRADES)}有限公司"
        district, address = self._address(city)
        manager = self.new_person(city=city)
        company = Company(
            pid=f"C{self._next_company:06d}",
            name=name,
            uscc=uscc_code(rng, city.region_code),
            city=city,
            district=district,
            address=address,
            manager=manager,
        )
        company.drivers = [self.new_person(city=city) for _ in range(rng.choice((1, 1, 2)))]
        return company
