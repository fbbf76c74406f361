"""A hand-built history of a few customers, as silver feeds plus crosswalk, for feature tests.

As of 2026-01-01 (a Thursday):
- CA: active owner, bought 2024-03 (200k), four visits before the date and one at 00:00 on it;
- CB: lost owner (last visit 2023-05), 550k car, complaints and surveys around the date;
- CC: prospect whose latest lead was marked lost only after the date;
- CD: defeated lead; CE: new owner (delivered 2025-12-01); CF: dormant owner (visit 2025-04);
- CH: seen only as a survey respondent; CG: first seen after the date (no row).
"""

from __future__ import annotations

import datetime as dt

import pytest

from cdp.operations_config import CalendarConfig
from features.sources import FeatureSources
from operations.complaints import calendar_for

AS_OF = dt.date(2026, 1, 1)

SALES = "record_id string, order_id string, order_date date, delivery_date date, price string, model string, vin string"
VISITS = (
    "record_id string, ro_id string, vin string, opened_at timestamp, mileage_km string, service_type string, "
    "total_amount string, paid_by string"
)
CLAIMS = "record_id string, claim_id string, claim_date date"
COMPLAINTS = (
    "record_id string, complaint_id string, received_at timestamp, first_response_at timestamp, closed_at timestamp, status string"
)
SURVEYS = "record_id string, survey_id string, surveyed_at timestamp, overall_score int"
LEADS = "record_id string, lead_id string, created_at timestamp, last_contact_at timestamp, status string, purchase_horizon string"
CUSTOMERS = "customer_id string, birth_date date, gender string, province string, city string, customer_type string"


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


_SALES = [
    ("O1", d("2024-03-01"), d("2024-03-10"), "200000", "A6", "V1", "CA"),
    ("O2", d("2023-01-05"), d("2023-01-15"), "550000", "Q7", "V2", "CB"),
    ("O3", d("2025-11-20"), d("2025-12-01"), "120000", "A3", "V3", "CE"),
    ("O4", d("2022-01-01"), d("2022-01-10"), "180000", "A4", "V4", "CF"),
]
_VISITS = [
    ("R1", "V1", ts("2024-06-10 09:00"), "3000", "first_maintenance", "0", "internal", "CA"),
    ("R2", "V1", ts("2024-12-10 09:00"), "9000", "maintenance", "800", "customer", "CA"),
    ("R3", "V1", ts("2025-06-10 09:00"), "15000", "maintenance", "1000", "customer", "CA"),
    ("R4", "V1", ts("2025-09-01 09:00"), "17000", "repair", "0", "warranty", "CA"),
    ("R5", "V1", ts("2026-01-01 00:00"), "18000", "maintenance", "5000", "customer", "CA"),
    ("R6", "V2", ts("2023-05-01 10:00"), "4000", "maintenance", "1200", "customer", "CB"),
    ("R7", "V4", ts("2025-04-15 10:00"), "40000", "maintenance", "900", "customer", "CF"),
]
_CLAIMS = [("W1", d("2025-08-30"), "CA"), ("W2", d("2026-01-01"), "CA")]
_COMPLAINTS = [
    # responded after 26 h; closed on the 14th working day after receipt (due by the 10th)
    ("C1", ts("2025-12-01 10:00"), ts("2025-12-02 12:00"), ts("2025-12-19 17:00"), "closed", "CB"),
    # no response yet at the date (63 h waiting); open two working days
    ("C2", ts("2025-12-29 09:00"), None, None, "open", "CB"),
    # received after the date
    ("C3", ts("2026-01-02 09:00"), None, None, "open", "CB"),
    # closed only after the date: open at it, 42 working days since receipt
    ("C4", ts("2025-11-03 09:00"), ts("2025-11-03 10:00"), ts("2026-01-05 09:00"), "closed", "CB"),
]
_SURVEYS = [
    ("S1", ts("2025-12-05 10:00"), 60, "CB"),
    ("S2", ts("2025-12-25 10:00"), 80, "CB"),
    ("S3", ts("2026-01-01 00:00"), 10, "CB"),
    ("S4", ts("2025-07-01 10:00"), 100, "CH"),
    ("S5", ts("2026-02-01 10:00"), 90, "CG"),
]
_LEADS = [
    ("L1", ts("2025-10-01 10:00"), ts("2025-11-01 10:00"), "lost", "mid", "CC"),
    ("L2", ts("2025-12-01 10:00"), ts("2026-01-15 10:00"), "lost", "hot", "CC"),
    ("L3", ts("2026-02-01 10:00"), None, "open", "hot", "CC"),
    ("L4", ts("2025-05-01 10:00"), ts("2025-06-01 10:00"), "lost", "long", "CD"),
]
_CUSTOMERS = [
    ("CA", d("1990-06-15"), "M", "广东省", "广州市", "individual"),
    ("CB", d("1975-01-01"), "F", "广东省", "深圳市", "individual"),
    ("CC", None, None, None, "广州市", "individual"),
    ("CD", None, None, None, None, "individual"),
    ("CE", d("2000-12-31"), "M", "广东省", "广州市", "individual"),
    ("CF", d("1960-01-01"), "M", "广东省", "佛山市", "company"),
    ("CG", None, None, None, None, "individual"),
    ("CH", None, None, None, None, "individual"),
]


def _feed(spark, feed: str, schema: str, rows: list[tuple], seen: int):
    """(silver table, xref rows, mention rows) of one feed: the last element of each row is
    its customer; `seen` is the index of the event time."""
    table = spark.createDataFrame([(r[0], *r[:-1]) for r in rows], schema)
    xref = [(feed, r[0], "primary", f"{feed}:{r[0]}:x", r[-1]) for r in rows]
    mentions = []
    for r in rows:
        when = r[seen]
        mentions.append((f"{feed}:{r[0]}:x", when if isinstance(when, dt.datetime) else dt.datetime.combine(when, dt.time())))
    return table, xref, mentions


@pytest.fixture(scope="module")
def history(spark) -> FeatureSources:
    parts = {
        "sales_orders": _feed(spark, "sales_orders", SALES, _SALES, 1),
        "service_orders": _feed(spark, "service_orders", VISITS, _VISITS, 2),
        "warranty_claims": _feed(spark, "warranty_claims", CLAIMS, _CLAIMS, 1),
        "complaints": _feed(spark, "complaints", COMPLAINTS, _COMPLAINTS, 1),
        "surveys": _feed(spark, "surveys", SURVEYS, _SURVEYS, 1),
        "leads": _feed(spark, "leads", LEADS, _LEADS, 1),
    }
    xref = spark.createDataFrame(
        [row for part in parts.values() for row in part[1]],
        "feed string, record_id string, role string, mention_id string, customer_id string",
    )
    mentions = spark.createDataFrame([row for part in parts.values() for row in part[2]], "mention_id string, seen_at timestamp")
    return FeatureSources(
        calendar=calendar_for(spark, AS_OF + dt.timedelta(days=1), CalendarConfig()),
        customers=spark.createDataFrame(_CUSTOMERS, CUSTOMERS),
        xref=xref,
        mentions=mentions,
        **{feed: part[0] for feed, part in parts.items()},
    )
