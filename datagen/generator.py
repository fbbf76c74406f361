"""`cdp generate`: a dealer group's six feeds plus consent, with the truth behind them.

One random stream drives everything (the dealer-operations patterns have one of their own,
see `dealer_patterns`), consumed in a fixed order, so a seed always gives
byte-identical files. Customers buy vehicles, come for maintenance at their own interval
until some of them stop, claim warranty, complain, answer surveys; their identities are
typed differently in every system.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

from datagen.identifiers import plate_number, vin
from datagen.population import Company, Person
from datagen.reference import (
    CITIES,
    COMPLAINT_TEXTS,
    FAILURE_CODES,
    LOST_REASONS,
    MODELS,
    SALES_CONSULTANTS,
    SERVICE_ADVISORS,
    Model,
)
from datagen.world import World, at

__all__ = ["GenerationSummary", "generate"]

log = logging.getLogger(__name__)

_PLATE_PREFIX = {"广州市": "粤A", "深圳市": "粤B", "北京市": "京", "上海市": "沪", "杭州市": "浙A", "南京市": "苏A", "成都市": "川A", "武汉市": "鄂A", "西安市": "陕A"}
_MODEL_WEIGHTS = [m.weight for m in MODELS]
_FIRST_SALE = dt.date(2017, 1, 1)


@dataclass(frozen=True)
class GenerationSummary:
    customers: int
    people: int
    records: dict[str, int]
    truth_rows: int
    seconds: float

    @property
    def total_records(self) -> int:
        return sum(self.records.values())


class _Journeys:
    """Customer journeys: leads, purchases, workshop visits, claims, complaints, surveys."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = world.rng

    def dealer_for(self, city_name: str) -> str:
        dealers = self.w.dealers[city_name]
        if self.rng.random() < 0.1:
            other = self.rng.choice(CITIES).city
            dealers = self.w.dealers[other]
        return self.rng.choice(dealers)

    def lead(self, person: Person, dealer: str, created: dt.datetime, status: str, model: Model, last: dt.datetime) -> str:
        rng = self.rng
        lead_id = self.w.next_id("L")
        record = {
            "lead_id": lead_id, "dealer_code": dealer, "created_at": created, "name": self.w.name_of(person),
            "mobile": self.w.mobile_of(person, created.date()),
            "channel": rng.choice(("hotline", "website", "auto_portal", "walk_in", "referral", "wechat")),
            "intended_model": model.name, "purchase_horizon": "hot" if status == "won" else rng.choice(("hot", "mid", "long")),
            "status": status, "last_contact_at": last,
            "lost_reason": rng.choice(LOST_REASONS) if status == "lost" else None,
        }
        self.w.emit("leads", record, "lead_id", [("prospect", person.pid)])
        return lead_id

    def prospect(self, person: Person) -> None:
        rng = self.rng
        for _ in range(rng.choice((1, 1, 1, 2))):
            created = at(self.w.as_of - dt.timedelta(days=rng.randint(5, 1500)), rng)
            status = rng.choices(("lost", "dormant", "open"), weights=(0.4, 0.3, 0.3))[0]
            last = created + dt.timedelta(days=rng.randint(0, 90))
            model = rng.choices(MODELS, weights=_MODEL_WEIGHTS)[0]
            self.lead(person, self.dealer_for(person.city.city), created, status, model, min(last, at(self.w.as_of, rng)))

    def purchase(self, buyer: Person | Company, order_day: dt.date) -> None:
        rng, w = self.rng, self.w
        model = rng.choices(MODELS, weights=_MODEL_WEIGHTS)[0]
        company = buyer if isinstance(buyer, Company) else None
        person = company.manager if company else buyer
        assert isinstance(person, Person)
        city = buyer.city
        dealer = self.dealer_for(city.city)
        lead_id = None
        if rng.random() < 0.7:
            created = at(order_day - dt.timedelta(days=rng.randint(3, 90)), rng)
            lead_id = self.lead(person, dealer, created, "won", model, at(order_day, rng))
        elif rng.random() < 0.2:
            created = at(order_day - dt.timedelta(days=rng.randint(30, 200)), rng)
            self.lead(person, self.dealer_for(city.city), created, "lost", model, created + dt.timedelta(days=20))
        w.vin_serial += 1
        model_year = min(order_day.year + (1 if order_day.month >= 10 else 0), 2030)
        vehicle_vin = vin(rng, model.code, model_year, w.vin_serial)
        delivery = order_day + dt.timedelta(days=rng.randint(0, 30))
        order_id = w.next_id("SO")
        record = {
            "order_id": order_id, "dealer_code": dealer, "order_date": order_day, "delivery_date": delivery,
            "customer_type": "company" if company else "individual",
            "customer_name": company.name if company else w.name_of(person, pinyin_rate=0.0),
            "gender": None if company else person.gender,
            "birth_date": None if company or rng.random() < 0.2 else person.birth_date,
            "id_number": company.uscc if company else w.id_of(person),
            "mobile": w.mobile_of(person, order_day),
            "phone_alt": w.mobile_of(person.family, order_day) if person.family and rng.random() < 0.3 else None,
            "email": None if company else person.email,
            "province": city.province, "city": city.city,
            "district": company.district if company else person.district,
            "address": company.address if company else person.address,
            "vin": vehicle_vin, "plate_no": plate_number(rng, _PLATE_PREFIX[city.city]),
            "brand": model.brand, "model": model.name, "model_year": model_year,
            "price": round(rng.uniform(model.price_low, model.price_high), -2),
            "payment_method": rng.choice(("full", "loan", "loan", "lease")),
            "sales_consultant": rng.choice(SALES_CONSULTANTS), "lead_id": lead_id,
        }
        w.emit("sales_orders", record, "order_id", [("buyer", buyer.pid)])
        drivers = company.drivers if company else [person]
        if rng.random() < 0.65:
            respondent = drivers[0]
            self.survey("ssi", dealer, at(delivery + dt.timedelta(days=rng.randint(1, 7)), rng), vehicle_vin, respondent, 88)
        self.ownership(buyer, drivers, vehicle_vin, record["plate_no"], dealer, delivery, model)

    def ownership(self, owner: Person | Company, drivers: list[Person], vehicle_vin: str, plate: str,
                  dealer: str, delivery: dt.date, model: Model) -> None:
        rng, w = self.rng, self.w
        end = w.as_of
        resale: dt.date | None = None
        if (w.as_of - delivery).days > 4 * 365 and rng.random() < 0.08:
            resale = delivery + dt.timedelta(days=rng.randint(3 * 365, (w.as_of - delivery).days - 30))
        km_per_day = max(8.0, rng.lognormvariate(math.log(35), 0.45))
        interval = rng.choice((150, 180, 180, 210, 240, 270, 300, 365))
        churn = delivery + dt.timedelta(days=rng.randint(200, 2600)) if rng.random() < 0.35 else None
        complaint_prone = rng.random() < 0.12
        day = delivery + dt.timedelta(days=rng.randint(60, 120))
        first, visits = True, 0
        recall_done = model.name != "X5"
        current_owner, current_drivers = owner, drivers
        while day < end:
            if resale and day >= resale:
                new_owner = w.population.new_person()
                current_owner, current_drivers, resale = new_owner, [new_owner], None
                dealer = self.dealer_for(new_owner.city.city)
                churn = None if rng.random() < 0.6 else day + dt.timedelta(days=rng.randint(100, 1500))
            if churn and day >= churn:
                gap = w.returns.gap_days(visits, complaint_prone, model.price_low)
                if gap is None:
                    break
                day = churn + dt.timedelta(days=gap)  # back after a lapse
                again = w.returns.lapses_again()
                churn = day + dt.timedelta(days=again) if again else None
                continue
            mileage = int((day - delivery).days * km_per_day * rng.uniform(0.9, 1.1))
            in_warranty = (day - delivery).days < 3 * 365 and mileage < 100_000
            if first:
                kind = "first_maintenance"
            elif not recall_done and day.year >= 2024:
                kind, recall_done = "recall", True
            else:
                roll = rng.random()
                kind = ("warranty" if in_warranty and roll < 0.07 else "repair" if roll < 0.17
                        else "accident" if roll < 0.2 else "maintenance")
            self.service_visit(current_owner, current_drivers, vehicle_vin, plate, dealer, day, mileage, kind)
            visits += 1
            if complaint_prone and rng.random() < 0.25:
                self.complaint(current_drivers[0], vehicle_vin, dealer, day + dt.timedelta(days=rng.randint(1, 20)))
            first = False
            day += dt.timedelta(days=int(interval * rng.uniform(0.85, 1.2)))

    def service_visit(self, owner: Person | Company, drivers: list[Person], vehicle_vin: str, plate: str,
                      dealer: str, day: dt.date, mileage: int, kind: str) -> None:
        rng, w = self.rng, self.w
        opened = at(day, rng, 8, 17)
        closed = opened + dt.timedelta(hours=rng.randint(1, 8) if kind != "accident" else rng.randint(48, 240))
        if isinstance(owner, Company):
            contact = rng.choice(drivers)
            owner_name, owner_pid = owner.name, owner.pid
        else:
            contact = owner.family if owner.family and rng.random() < 0.17 else owner
            owner_name, owner_pid = w.name_of(owner), owner.pid
        labour = {"first_maintenance": 0, "maintenance": rng.randint(200, 600), "repair": rng.randint(300, 3000),
                  "accident": rng.randint(1000, 12000), "warranty": rng.randint(200, 1500), "recall": rng.randint(100, 400)}[kind]
        parts = {"first_maintenance": 0, "maintenance": rng.randint(300, 1500), "repair": rng.randint(200, 8000),
                 "accident": rng.randint(2000, 30000), "warranty": rng.randint(500, 9000), "recall": rng.randint(0, 800)}[kind]
        paid_by = {"first_maintenance": "internal", "warranty": "warranty", "recall": "warranty", "accident": "insurance"}.get(kind, "customer")
        ro_id = w.next_id("RO")
        record = {
            "ro_id": ro_id, "dealer_code": dealer, "opened_at": opened, "closed_at": closed,
            "vin": w.vin_as_typed(vehicle_vin), "plate_no": plate, "mileage_km": mileage,
            "owner_name": owner_name, "contact_name": w.name_of(contact), "contact_mobile": w.mobile_of(contact, day),
            "service_type": kind, "labour_amount": float(labour), "parts_amount": float(parts),
            "total_amount": float(labour + parts), "paid_by": paid_by, "service_advisor": rng.choice(SERVICE_ADVISORS),
        }
        w.emit("service_orders", record, "ro_id", [("owner", owner_pid), ("contact", contact.pid)])
        if kind == "warranty":
            self.warranty_claim(owner, contact, vehicle_vin, dealer, ro_id, day, float(labour + parts))
        if rng.random() < 0.15:
            self.survey("csi", dealer, closed + dt.timedelta(days=rng.randint(1, 5)), vehicle_vin, contact, 85)

    def warranty_claim(self, owner: Person | Company, contact: Person, vehicle_vin: str, dealer: str,
                       ro_id: str, day: dt.date, amount: float) -> None:
        rng, w = self.rng, self.w
        person = contact if isinstance(owner, Company) else owner
        name = owner.name if isinstance(owner, Company) else w.name_of(person, pinyin_rate=0.3)
        record = {
            "claim_id": w.next_id("WC"), "dealer_code": dealer, "ro_id": ro_id, "vin": vehicle_vin,
            "claim_date": day + dt.timedelta(days=rng.randint(0, 10)), "failure_code": rng.choice(FAILURE_CODES),
            "part_no": f"P{rng.randint(10000, 99999)}", "claim_amount": amount,
            "status": rng.choices(("approved", "submitted", "rejected"), weights=(0.8, 0.1, 0.1))[0],
            "customer_name": name,
            "customer_mobile": w.mobile_of(person, day) if rng.random() < 0.3 else None,
        }
        if rng.random() < 0.1:
            # Filed from the repair order: only its number and the car say whose claim it is.
            record["customer_name"] = record["customer_mobile"] = None
        w.emit("warranty_claims", record, "claim_id", [("customer", owner.pid)])

    def complaint(self, caller: Person, vehicle_vin: str, dealer: str, day: dt.date) -> None:
        rng, w = self.rng, self.w
        if day >= w.as_of:
            return
        received = w.patterns.received_at(at(day, rng, 0, 24), w.as_of)
        response = received + dt.timedelta(hours=rng.expovariate(1 / 12))
        status = rng.choices(("closed", "in_progress", "open"), weights=(0.85, 0.1, 0.05))[0]
        closed = received + dt.timedelta(days=rng.uniform(1, 20)) if status == "closed" else None
        record = {
            "complaint_id": w.next_id("CP"),
            "channel": rng.choice(("hotline_400", "hotline_400", "dealer", "web", "wechat", "regulator")),
            "received_at": received, "first_response_at": response, "closed_at": closed,
            "caller_name": w.name_of(caller), "caller_mobile": w.mobile_of(caller, day),
            "vin": vehicle_vin if rng.random() < 0.8 else None, "dealer_code": dealer,
            "category": rng.choice(("product_quality", "service", "sales", "parts", "other")),
            "severity": rng.choices(("normal", "major", "media"), weights=(0.85, 0.13, 0.02))[0],
            "status": status, "description": rng.choice(COMPLAINT_TEXTS),
        }
        w.emit("complaints", record, "complaint_id", [("caller", caller.pid)])
        if closed and rng.random() < 0.6:
            self.survey("complaint_followup", dealer, closed + dt.timedelta(days=1), vehicle_vin, caller, 55)

    def survey(self, kind: str, dealer: str, when: dt.datetime, vehicle_vin: str, respondent: Person, mean: int) -> None:
        rng, w = self.rng, self.w
        if when.date() >= w.as_of:
            return
        drawn = max(0, min(100, int(rng.gauss(mean, 15))))
        score, items = w.patterns.survey_scores(dealer, drawn, {k: rng.gauss(drawn, 8) for k in ("process", "staff", "facility")})
        record = {
            "survey_id": w.next_id("SV"), "survey_type": kind, "dealer_code": dealer, "surveyed_at": when,
            "vin": vehicle_vin, "mobile": w.mobile_of(respondent, when.date()), "respondent_name": w.name_of(respondent),
            "overall_score": score, "item_scores": json.dumps(items, sort_keys=True),
            "would_return": score >= 60, "would_recommend": score >= 75,
        }
        w.emit("surveys", record, "survey_id", [("respondent", respondent.pid)])


def _repeat_complaint(world: World, received: dt.datetime, dealer: str, category: str, caller: Person) -> None:
    """One complaint of a repeat burst (see `DealerPatterns.repeat_bursts`)."""
    rng = world.patterns.rng
    closed = received + dt.timedelta(days=rng.uniform(1, 12))
    record = {
        "complaint_id": world.next_id("CP"), "channel": rng.choice(("hotline_400", "dealer", "wechat")),
        "received_at": received, "first_response_at": received + dt.timedelta(hours=rng.expovariate(1 / 10)),
        "closed_at": closed if closed.date() < world.as_of else None, "caller_name": world.name_of(caller),
        "caller_mobile": world.mobile_of(caller, received.date()), "vin": None, "dealer_code": dealer, "category": category,
        "severity": "normal", "status": "closed" if closed.date() < world.as_of else "in_progress", "description": rng.choice(COMPLAINT_TEXTS),
    }
    world.emit("complaints", record, "complaint_id", [("caller", caller.pid)])


def _contact_preferences(world: World) -> None:
    rng = world.rng
    for person in world.population.people:
        if rng.random() >= 0.5:
            continue
        for channel in ("sms", "phone", "wechat", "email"):
            if rng.random() >= 0.6:
                continue
            by_id = rng.random() < 0.15
            record = {
                "mobile": None if by_id else person.mobiles[-1][0],
                "id_number": person.id_number if by_id else None,
                "channel": channel, "opt_in": rng.random() < 0.85,
                "updated_at": at(world.as_of - dt.timedelta(days=rng.randint(1, 1500)), rng),
            }
            world.writers["contact_preferences"].write(record)
            world.truth.preference(person.pid, record)


def generate(
    customers: int,
    seed: int,
    out: str | Path,
    *,
    as_of: dt.date = dt.date(2026, 6, 30),
    error_rate: float = 0.002,
    rows_per_file: int = 250_000,
) -> GenerationSummary:
    """Write the feeds for `customers` buyers (plus prospects, family members, drivers, second
    owners) under `out/<feed>/`, `out/truth/mentions.csv` mapping each mention to its person
    and `out/truth/contact_preferences.csv` each preference row's person."""

    started = time.perf_counter()
    out = Path(out)
    world = World(out, seed, as_of, error_rate, rows_per_file)
    journeys = _Journeys(world)
    rng = world.rng
    span = (as_of - dt.timedelta(days=14) - _FIRST_SALE).days
    for _ in range(customers):
        if rng.random() < 0.06:
            buyer: Person | Company = world.population.new_company()
        else:
            buyer = world.population.new_person()
            if rng.random() < 0.3:
                world.population.add_family_member(buyer)
        purchases = rng.choices((1, 2, 3), weights=(0.85, 0.13, 0.02))[0]
        day = _FIRST_SALE + dt.timedelta(days=rng.randint(0, span))
        for _ in range(purchases):
            if day >= as_of:
                break
            journeys.purchase(buyer, day)
            day += dt.timedelta(days=rng.randint(200, 1800))
    for _ in range(int(customers * 0.35)):
        journeys.prospect(world.population.new_person())
    _contact_preferences(world)
    world.patterns.repeat_bursts([d for ds in world.dealers.values() for d in ds], world.population.people, as_of,
                                 max(1, customers // 150), lambda received, dealer, category, caller: _repeat_complaint(world, received, dealer, category, caller))
    records = world.close()
    summary = GenerationSummary(
        customers=customers,
        people=len(world.population.people),
        records=records,
        truth_rows=world.truth.rows,
        seconds=time.perf_counter() - started,
    )
    log.info("generated %d records for %d customers in %.1fs", summary.total_records, customers, summary.seconds)
    return summary
