"""Every table of the lake, declared once: layer, name, keys, partitioning, personal-data
columns and expectation suite.

Code reads and writes tables by reference (`catalog.CUSTOMERS`, `catalog.silver(feed)`),
never by a literal name or path; `Lake.path(table)` turns a reference into a location.
A table's personal-data columns keep no Delta min/max statistics (they would survive
erasure and VACUUM in `_delta_log`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdp.config import FEED_NAMES
from cdp.delta_stats import is_personal

__all__ = [
    "AUDIENCES",
    "AUDIENCE_VERSIONS",
    "CUSTOMERS",
    "CUSTOMER_CONSENT",
    "CUSTOMER_FEATURES",
    "CUSTOMER_ID_HISTORY",
    "CUSTOMER_SEGMENTS",
    "CUSTOMER_VEHICLES",
    "HOME_DEALERS",
    "CUSTOMER_XREF",
    "ERASURE_LOG",
    "EXPORT_AUDIT",
    "CAMPAIGN_RESULTS",
    "COMPLAINT_CASES",
    "DEALER_KPIS_MONTHLY",
    "SATISFACTION_CALLBACKS",
    "SATISFACTION_MONTHLY",
    "GOLD_TABLES",
    "INGEST_FILES",
    "MATCH_PAIRS",
    "OPS_TABLES",
    "PERSON_MENTIONS",
    "REMINDERS",
    "REMINDER_FOLLOWTHROUGH",
    "RESOLUTION_MODEL",
    "RESOLUTION_REVIEW",
    "RUNS",
    "VEHICLE_OWNERS",
    "TableRef",
    "VALIDATION_RESULTS",
    "WINBACK",
    "all_tables",
    "bronze",
    "by_label",
    "quarantine",
    "silver",
    "validation_folder",
    "work",
]


@dataclass(frozen=True)
class TableRef:
    """One Delta table of the lake (or, with `delta=False`, a folder the platform owns)."""

    layer: str
    name: str
    keys: tuple[str, ...] = ()
    partition_by: str | None = None
    pii: tuple[str, ...] = ()
    suite: str | None = None
    produced_by: str | None = None
    description: str = ""
    delta: bool = True

    @property
    def label(self) -> str:
        """`layer/name`, as messages and the run ledger name the table."""
        return f"{self.layer}/{self.name}"

    def no_stats_columns(self, columns: list[str]) -> list[str]:
        """The columns among `columns` that must keep no Delta statistics."""
        return [c for c in columns if is_personal(c, self.pii)]


def _gold(name: str, keys: tuple[str, ...], produced_by: str, description: str, **kwargs: object) -> TableRef:
    return TableRef("gold", name, keys, produced_by=produced_by, description=description, **kwargs)  # type: ignore[arg-type]


PERSON_MENTIONS = _gold(
    "person_mentions", ("mention_id",), "resolve", "one row per person in a source record",
    pii=("name", "mobile", "mobile_alt", "id_number", "id_unchecked", "birth_date", "email", "name_key", "vin", "plate_no"),
)
MATCH_PAIRS = _gold("match_pairs", ("mention_id_l", "mention_id_r"), "resolve", "scored pairs of mentions")
CUSTOMER_XREF = _gold("customer_xref", ("mention_id",), "resolve", "every source record of a customer -> customer_id")
UNIDENTIFIED_RECORDS = _gold(
    "unidentified_records", ("mention_id",), "resolve",
    "records that name nobody and joined no owner: kept, not customers (with the crosswalk, every person mention)",
)
CUSTOMERS = _gold(
    "customers", ("customer_id",), "resolve", "golden profiles",
    pii=("name", "mobile", "mobiles", "id_number", "birth_date", "email", "address"),
)
CUSTOMER_VEHICLES = _gold(
    "customer_vehicles", ("customer_id", "vin", "role"), "resolve", "customer <-> VIN, role, from/to", pii=("vin",)
)
VEHICLE_OWNERS = _gold(
    "vehicle_owners", ("as_of_date", "vin"), "ownership",
    "the owner of each VIN at D, with the vehicle's first delivery, brand, model and selling dealer",
    partition_by="as_of_date", pii=("vin",),
)
HOME_DEALERS = _gold(
    "home_dealers", ("as_of_date", "customer_id"), "ownership", "the dealer of each customer's latest purchase or visit before D",
    partition_by="as_of_date",
)
CUSTOMER_ID_HISTORY = _gold(
    "customer_id_history", ("event", "customer_id", "related_customer_id", "based_on_version"), "resolve",
    "merges and splits of customer IDs between runs",
)
RESOLUTION_REVIEW = _gold(
    "resolution_review", ("kind", "mention_id_l", "mention_id_r"), "resolve", "near misses and weak joins for review"
)
CUSTOMER_CONSENT = _gold(
    "customer_consent", ("customer_id", "channel"), "consent", "customer x channel: opted out, opted in"
)
CUSTOMER_FEATURES = _gold(
    "customer_features", ("customer_id", "as_of_date"), "features", "per customer per as-of date",
    partition_by="as_of_date", suite="customer_features",
)
CUSTOMER_SEGMENTS = _gold(
    "customer_segments", ("customer_id", "as_of_date"), "segment", "segment of each customer", partition_by="as_of_date"
)
REMINDERS = _gold(
    "reminders", ("customer_id", "kind", "vin", "as_of_date"), "reminders", "service and other reminders with due dates",
    partition_by="as_of_date", pii=("vin",),
)
AUDIENCES = _gold(
    "audiences", ("campaign", "version", "customer_id"), "audiences", "versioned campaign lists", partition_by="campaign"
)
AUDIENCE_VERSIONS = _gold("audience_versions", ("campaign", "version"), "audiences", "one row per list version")
WINBACK = _gold("winback", ("customer_id", "as_of_date"), "winback", "ranked dormant and lost owners", partition_by="as_of_date")
EXPORT_AUDIT = _gold("export_audit", ("export_id",), "export", "who exported what, when, why")
COMPLAINT_CASES = _gold(
    "complaint_cases", ("complaint_id", "as_of_date"), "complaint_cases", "each complaint's deadlines and status on a date",
    partition_by="as_of_date", suite="complaint_cases",
)
SATISFACTION_MONTHLY = _gold(
    "satisfaction_monthly", ("as_of_date", "month", "dealer_code", "survey_type"), "satisfaction",
    "satisfaction per dealer, month and survey type: weighted score, items, bands, ranks", partition_by="as_of_date",
    suite="satisfaction_monthly",
)
DEALER_KPIS_MONTHLY = _gold(
    "dealer_kpis_monthly", ("as_of_date", "level", "dealer_code", "month"), "dealer_kpis",
    "per dealer (and region, group) and month: owners by stage, first visits, won back, leads, first-time fix",
    partition_by="as_of_date", suite="dealer_kpis_monthly",
)
CAMPAIGN_RESULTS = _gold(
    "campaign_results", ("as_of_date", "campaign", "version"), "campaign_results",
    "response of each audience version's list against its control group, with the lift's confidence interval",
    partition_by="as_of_date",
)
REMINDER_FOLLOWTHROUGH = _gold(
    "reminder_followthrough", ("as_of_date", "kind", "dealer_code", "due_month"), "campaign_results",
    "share of reminded owners who came near the due date", partition_by="as_of_date",
)
SATISFACTION_CALLBACKS = _gold(
    "satisfaction_callbacks", ("survey_id", "as_of_date"), "satisfaction",
    "recent low satisfaction scores to call back, consent applied", partition_by="as_of_date",
)

GOLD_TABLES = (
    PERSON_MENTIONS, MATCH_PAIRS, CUSTOMER_XREF, UNIDENTIFIED_RECORDS, CUSTOMERS, CUSTOMER_VEHICLES, CUSTOMER_ID_HISTORY, RESOLUTION_REVIEW,
    CUSTOMER_CONSENT, VEHICLE_OWNERS, HOME_DEALERS, CUSTOMER_FEATURES, CUSTOMER_SEGMENTS, REMINDERS, AUDIENCES, AUDIENCE_VERSIONS, WINBACK, EXPORT_AUDIT,
    COMPLAINT_CASES, SATISFACTION_MONTHLY, SATISFACTION_CALLBACKS, DEALER_KPIS_MONTHLY, CAMPAIGN_RESULTS,
    REMINDER_FOLLOWTHROUGH,
)

INGEST_FILES = TableRef("_ops", "ingest_files", ("feed", "file_hash"), produced_by="ingest", description="files loaded, by content hash")
VALIDATION_RESULTS = TableRef(
    "_ops", "validation_results", ("feed", "batch_id"), produced_by="ingest", description="GX results per batch"
)
ERASURE_LOG = TableRef("_ops", "erasure_log", ("erasure_id",), produced_by="privacy erase", description="erasures, keyed tokens only")
RUNS = TableRef(
    "_ops", "runs", ("run_id", "step"), produced_by="every step", description="the run ledger: one row per step of every run"
)
OPS_TABLES = (INGEST_FILES, VALIDATION_RESULTS, ERASURE_LOG, RUNS)

RESOLUTION_MODEL = TableRef("_models", "resolution", produced_by="resolve", description="trained Splink model JSON", delta=False)


def bronze(feed: str) -> TableRef:
    """Raw values of a feed with source file, line, hash and batch."""
    return TableRef("bronze", _feed(feed), ("_file_hash", "_source_row"), produced_by="ingest", description=f"raw {feed}")


def silver(feed: str) -> TableRef:
    """A feed typed and standardised, one row per record."""
    return TableRef("silver", _feed(feed), ("record_id",), produced_by="ingest", suite=feed, description=f"clean {feed}")


def quarantine(feed: str) -> TableRef:
    """Rows of a feed that broke a row rule, with every rule and a reason."""
    return TableRef("quarantine", _feed(feed), ("_file_hash", "_source_row"), produced_by="ingest", description=f"rejected {feed} rows")


def work(name: str) -> TableRef:
    """A scratch folder of one step (Parquet checkpoints), safe to delete between runs."""
    return TableRef("_work", name, delta=False, description="scratch")


def validation_folder(feed: str) -> TableRef:
    """GX result documents of a feed, one JSON per batch."""
    return TableRef("_validation", _feed(feed), delta=False, description=f"GX results of {feed}")


def _feed(feed: str) -> str:
    if feed not in FEED_NAMES:
        raise ValueError(f"unknown feed {feed!r}; feeds are {', '.join(FEED_NAMES)}")
    return feed


def all_tables() -> list[TableRef]:
    """Every Delta table the platform writes."""
    feeds = [t for feed in FEED_NAMES for t in (bronze(feed), silver(feed), quarantine(feed))]
    return [*feeds, *GOLD_TABLES, *OPS_TABLES]


def by_label(label: str) -> TableRef:
    """The table named `layer/name` (e.g. `gold/customers`)."""
    for table in all_tables():
        if table.label == label:
            return table
    raise KeyError(label)
