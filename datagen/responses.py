"""What happened after a campaign: repair orders from its listed customers and its control
group, with a known, planted difference between the two.

`generate_responses` reads one built audience version from the lake (without Spark), and for
every member draws whether they come to the workshop within the campaign's response window:
control-group members with the base rate, listed members with the base rate plus the planted
effect. Each responder gets one repair order on their current vehicle, under the name and
mobile of their golden profile, dated inside the window, in a service-orders file of its own
(`service_orders/responses_<campaign>_v<version>.csv`) that the next ingest loads. The planted
rates and the counts drawn go to `truth/responses_<campaign>_v<version>.json`, so the lift
`cdp run campaign_results` measures can be checked against them.

The draws are seeded per customer: the same seed and audience give the same file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from cdp import catalog
from cdp.errors import UsageError, closest
from cdp.reader import LakeReader
from datagen.writer import FeedWriter

__all__ = ["PlantedResponses", "generate_responses"]

SERVICE_TYPES = ("maintenance", "repair")


@dataclass(frozen=True)
class PlantedResponses:
    """The planted rates and what was drawn (the truth the measured lift is checked against)."""

    campaign: str
    version: int
    list_as_of: str
    window_days: int
    base_rate: float
    effect: float
    seed: int
    listed: int
    listed_responders: int
    control: int
    control_responders: int
    repair_orders: int
    file: str

    @property
    def drawn_lift(self) -> float:
        listed = self.listed_responders / self.listed if self.listed else 0.0
        control = self.control_responders / self.control if self.control else 0.0
        return listed - control


def _draw(seed: int, campaign: str, version: int, customer_id: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{campaign}:{version}:{customer_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _version(reader: LakeReader, campaign: str, version: int | None) -> dict:
    tables = {"v": catalog.AUDIENCE_VERSIONS}
    reader.require(catalog.AUDIENCE_VERSIONS, catalog.AUDIENCES, catalog.CUSTOMERS, catalog.CUSTOMER_VEHICLES)
    built = reader.query("SELECT campaign, version, as_of_date FROM v ORDER BY campaign, version", tables)
    campaigns = sorted({r["campaign"] for r in built})
    if campaign not in campaigns:
        raise UsageError(f"no audience has been built for campaign {campaign!r}: {closest(campaign, campaigns)}")
    versions = [r for r in built if r["campaign"] == campaign]
    if version is None:
        return versions[-1]
    chosen = [r for r in versions if r["version"] == version]
    if not chosen:
        raise UsageError(f"campaign {campaign!r} has no version {version} (built: {', '.join(str(r['version']) for r in versions)})")
    return chosen[0]


def generate_responses(
    lake_root: str,
    raw_root: str | Path,
    campaign: str,
    *,
    window_days: int,
    version: int | None = None,
    base_rate: float = 0.2,
    effect: float = 0.1,
    seed: int = 42,
) -> PlantedResponses:
    """Write the responders' repair orders and the truth file for one audience version
    (default: the campaign's latest) and return what was planted and drawn."""
    if not 0 <= base_rate <= 1 or not 0 <= base_rate + effect <= 1:
        raise UsageError(f"rates must lie in [0, 1]: base rate {base_rate}, listed rate {base_rate + effect}")
    if window_days < 1:
        raise UsageError(f"the response window must be at least one day, not {window_days}")
    reader = LakeReader(lake_root)
    chosen = _version(reader, campaign, version)
    number, list_as_of = int(chosen["version"]), chosen["as_of_date"]
    members = reader.query(
        """
        SELECT a.customer_id, a.holdout, c.name, c.mobile, c.dealers[1] AS dealer_code, v.vin
        FROM a
        JOIN c USING (customer_id)
        LEFT JOIN (
            SELECT customer_id, arg_max(vin, to_date) AS vin FROM v WHERE role = 'owner' GROUP BY customer_id
        ) v USING (customer_id)
        WHERE a.campaign = ? AND a.version = ?
        ORDER BY a.customer_id
        """,
        {"a": catalog.AUDIENCES, "c": catalog.CUSTOMERS, "v": catalog.CUSTOMER_VEHICLES},
        [campaign, number],
    )
    raw = Path(raw_root)
    stem = f"responses_{campaign}_v{number}"
    writer = FeedWriter(raw, "service_orders", rows_per_file=len(members) + 1, stem=f"{stem}_part")
    tag = hashlib.sha256(campaign.encode()).hexdigest()[:4].upper()  # keeps two campaigns' order ids apart
    counts = {"listed": 0, "listed_responders": 0, "control": 0, "control_responders": 0}
    written = 0
    for member in members:
        group = "control" if member["holdout"] else "listed"
        rate = base_rate if member["holdout"] else base_rate + effect
        rng = _draw(seed, campaign, number, member["customer_id"])
        counts[group] += 1
        if rng.random() >= rate:
            continue
        if not member["vin"]:
            continue  # no vehicle to bring in: cannot respond with a repair order
        counts[f"{group}_responders"] += 1
        opened = dt.datetime.combine(list_as_of + dt.timedelta(days=rng.randint(1, window_days - 1)), dt.time(rng.randint(8, 16), rng.choice((0, 30))))
        written += 1
        labour, parts = float(rng.randint(200, 600)), float(rng.randint(300, 1500))
        writer.write({
            "ro_id": f"RR{number:02d}{written:08d}{tag}",
            "dealer_code": member["dealer_code"], "opened_at": opened, "closed_at": opened + dt.timedelta(hours=rng.randint(1, 6)),
            "vin": member["vin"], "owner_name": member["name"], "contact_name": member["name"], "contact_mobile": member["mobile"],
            "service_type": rng.choice(SERVICE_TYPES), "labour_amount": labour, "parts_amount": parts, "total_amount": labour + parts,
            "paid_by": "customer",
        })
    writer.close()
    planted = PlantedResponses(
        campaign, number, list_as_of.isoformat(), window_days, base_rate, effect, seed, repair_orders=written,
        file=str(writer.paths[0]) if writer.paths else "", **counts,
    )
    truth = raw / "truth"
    truth.mkdir(parents=True, exist_ok=True)
    (truth / f"{stem}.json").write_text(json.dumps({**asdict(planted), "drawn_lift": planted.drawn_lift}, indent=1), encoding="utf-8")
    return planted
