"""A campaign's evaluation as one SQL query, run by Spark for builds and by DuckDB for a
preview without a JVM: one definition of who qualifies, who is suppressed and why, and the
control group, whichever engine runs it.

The query reads eight named relations (see `INPUTS`) and returns every customer with
`eligible`, `reason`, `due_date`, one flag per suppression (`SUPPRESSIONS`), `member` and
`holdout`. Dates and times are literals computed here, so both engines agree on them.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from activation.campaigns import Campaign, CampaignBook, CampaignError, Condition, DueRule, competitors_before
from cdp.activation_config import CHANNELS

__all__ = ["DUCKDB", "INPUTS", "SPARK", "SUPPRESSIONS", "Dialect", "campaign_query", "summary_query"]

SUPPRESSIONS = ("opted_out", "unreachable", "open_complaint", "recently_contacted", "claimed_by_priority")
# Relations the query reads, with the columns it needs of each.
INPUTS = {
    "features": "customer_id and every feature of the as-of date",
    "profiles": "customer_id, mobile, email",
    "segments": "customer_id, segment_name of the as-of date",
    "home_dealers": "customer_id, dealer_code",
    "owned_models": "customer_id, model owned at the as-of date",
    "reminders": "customer_id, kind, due_date of the as-of date",
    "consent": "customer_id, channel, opted_out, opted_in",
    "contacts": "campaign, customer_id, built_at of earlier lists (control groups excluded)",
}
_HOLDOUT_BUCKETS = 10_000


@dataclass(frozen=True)
class Dialect:
    """What differs between Spark SQL and DuckDB in these queries."""

    name: str
    quote: str  # identifier quote

    def ident(self, name: str) -> str:
        return f"{self.quote}{name.replace(self.quote, self.quote * 2)}{self.quote}"

    def lit(self, value: object) -> str:
        return _literal(value, self)

    def sorted_distinct(self, column: str) -> str:
        """The distinct values of `column` in a group, sorted, joined with commas."""
        if self.name == "spark":
            return f"concat_ws(',', array_sort(collect_set({column})))"
        return f"string_agg(DISTINCT {column}, ',' ORDER BY {column})"


SPARK = Dialect("spark", "`")
DUCKDB = Dialect("duckdb", '"')


def _literal(value: object, d: Dialect | None = None) -> str:
    """A SQL literal. Strings: Spark escapes quotes and backslashes with a backslash, DuckDB
    doubles quotes and keeps backslashes."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value:%Y-%m-%d %H:%M:%S}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if d is not None and d.name == "spark":
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + str(value).replace("'", "''") + "'"


def _in_list(values: Sequence[object], d: Dialect) -> str:
    return "(" + ", ".join(d.lit(v) for v in values) + ")"


def _condition(c: Condition, d: Dialect) -> str:
    column = f"b.{d.ident(c.feature)}"
    tests = {
        "==": lambda: f"{column} = {d.lit(c.value)}",
        "!=": lambda: f"{column} <> {d.lit(c.value)}",
        "<": lambda: f"{column} < {d.lit(c.value)}",
        "<=": lambda: f"{column} <= {d.lit(c.value)}",
        ">": lambda: f"{column} > {d.lit(c.value)}",
        ">=": lambda: f"{column} >= {d.lit(c.value)}",
        "in": lambda: f"{column} IN {_in_list(c.value, d)}",  # type: ignore[arg-type]
        "not_in": lambda: f"NOT ({column} IN {_in_list(c.value, d)})",  # type: ignore[arg-type]
        "is_null": lambda: f"{column} IS NULL",
        "not_null": lambda: f"{column} IS NOT NULL",
    }
    return f"coalesce({tests[c.op]()}, FALSE)"


def _condition_text(c: Condition) -> str:
    if c.op in ("is_null", "not_null"):
        return f"{c.feature} {c.op.replace('_', ' ')}"
    value = ",".join(map(str, c.value)) if isinstance(c.value, list) else c.value
    return f"{c.feature} {c.op} {value}"


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def due_window(rule: DueRule, as_of: dt.date) -> tuple[dt.date, dt.date]:
    """[start, end) of the days a reminder must fall due in."""
    if rule.within_days is not None:
        return as_of, as_of + dt.timedelta(days=rule.within_days)
    first = as_of.replace(day=1)
    if rule.month == "this":
        return as_of, _add_months(first, 1)
    return _add_months(first, 1), _add_months(first, 2)


def _hex_bucket(text: str) -> str:
    """The first 8 hex digits of md5(`text`) as a number, mod the bucket count: the same in
    every engine (each has md5, substr and instr; not the same hash functions)."""
    digest = f"md5({text})"
    digits = [f"CAST(instr('0123456789abcdef', substr({digest}, {i + 1}, 1)) - 1 AS BIGINT) * {16 ** (7 - i)}" for i in range(8)]
    return f"(({' + '.join(digits)}) % {_HOLDOUT_BUCKETS})"


def holdout_test(campaign_name: str, holdout_percent: float, d: Dialect, customer: str = "b.customer_id") -> str:
    """True for the campaign's stable control group: a hash of campaign and customer."""
    threshold = int(round(holdout_percent * _HOLDOUT_BUCKETS / 100))
    return f"({_hex_bucket(f'concat({d.lit(campaign_name)}, {d.lit(chr(124))}, {customer})')} < {threshold})"


def _reachable(channel: str, prefix: str = "b.") -> str:
    """The golden profile has an address for the channel (WeChat goes through the mobile)."""
    return f"{prefix}email IS NOT NULL" if channel == "email" else f"{prefix}mobile IS NOT NULL"


def _contactable(channel: str, consent: str, require_opt_in: Sequence[str]) -> str:
    allowed = f"NOT coalesce({consent}.opted_out, FALSE)"
    if channel in require_opt_in:
        allowed += f" AND coalesce({consent}.opted_in, FALSE)"
    return f"({allowed})"


def _evaluated(
    campaign: Campaign,
    name: str,
    claimed: str | None,
    *,
    as_of: dt.date,
    now: dt.datetime,
    require_opt_in: Sequence[str],
    d: Dialect,
    r: dict[str, str],
) -> str:
    """SELECT of one campaign over `base` (with `claimed` customers, if any, taken)."""
    rules = campaign.audience
    joins, tests = [], []
    due_column = "CAST(NULL AS DATE)"
    if rules.due is not None:
        start, end = due_window(rules.due, as_of)
        joins.append(
            f"LEFT JOIN (SELECT customer_id, min(due_date) AS due_date FROM {r['reminders']} "
            f"WHERE kind = {d.lit(rules.due.kind)} AND due_date >= {d.lit(start)} AND due_date < {d.lit(end)} "
            "GROUP BY customer_id) due ON due.customer_id = b.customer_id"
        )
        due_column = "due.due_date"
        label = rules.due.kind.replace("_", " ")
        tests.append(("due.due_date IS NOT NULL", f"concat({d.lit(label + ' due ')}, CAST(due.due_date AS STRING))"))

    def listed(column: str, values: list[str], label: str) -> None:
        if values:
            tests.append((f"coalesce(b.{d.ident(column)} IN {_in_list(values, d)}, FALSE)", f"concat({d.lit(label + ' ')}, b.{d.ident(column)})"))

    listed("lifecycle_stage", rules.lifecycle_stage, "lifecycle")
    listed("segment_name", rules.segment, "segment")
    listed("city", rules.city, "city")
    listed("province", rules.province, "province")
    listed("dealer_code", rules.dealer, "dealer")
    if rules.vehicle_model:
        joins.append(
            f"LEFT JOIN (SELECT customer_id, {d.sorted_distinct('model')} AS models FROM {r['owned_models']} "
            f"WHERE model IN {_in_list(rules.vehicle_model, d)} GROUP BY customer_id) own ON own.customer_id = b.customer_id"
        )
        tests.append(("own.models IS NOT NULL", "concat('owns ', own.models)"))
    for condition in rules.where:
        tests.append((_condition(condition, d), d.lit(_condition_text(condition))))
    if tests:
        eligible = " AND ".join(f"({t})" for t, _ in tests)
        reason = "concat_ws('; ', " + ", ".join(f"CASE WHEN {t} THEN {text} END" for t, text in tests) + ")"
    else:
        eligible, reason = "TRUE", "'all customers'"
    joins.append(
        f"LEFT JOIN (SELECT customer_id, opted_out, opted_in FROM {r['consent']} WHERE channel = {d.lit(campaign.channel)}) c "
        "ON c.customer_id = b.customer_id"
    )
    contacted = "FALSE"
    if campaign.suppress.contacted_within_days:
        since = now - dt.timedelta(days=campaign.suppress.contacted_within_days)
        joins.append(
            f"LEFT JOIN (SELECT DISTINCT customer_id FROM {r['contacts']} "
            f"WHERE campaign <> {d.lit(name)} AND built_at >= {d.lit(since)}) rc ON rc.customer_id = b.customer_id"
        )
        contacted = "rc.customer_id IS NOT NULL"
    taken = "FALSE"
    if claimed is not None:
        joins.append(f"LEFT JOIN (SELECT DISTINCT customer_id FROM {claimed}) cl ON cl.customer_id = b.customer_id")
        taken = "cl.customer_id IS NOT NULL"
    open_complaint = f"({d.lit(campaign.suppress.open_complaint)} AND coalesce(b.complaints_open, 0) > 0)"
    flags = {
        "opted_out": f"NOT {_contactable(campaign.channel, 'c', require_opt_in)}",
        "unreachable": f"NOT ({_reachable(campaign.channel)})",
        "open_complaint": open_complaint,
        "recently_contacted": contacted,
        "claimed_by_priority": taken,
    }
    flag_columns = ", ".join(f"coalesce({expr}, FALSE) AS {flag}" for flag, expr in flags.items())
    suppressed = " OR ".join(f"coalesce({expr}, FALSE)" for expr in flags.values())
    return (
        f"SELECT b.*, {due_column} AS due_date, coalesce({eligible}, FALSE) AS eligible, {reason} AS reason, {flag_columns}, "
        f"coalesce({eligible}, FALSE) AND NOT ({suppressed}) AS member, {holdout_test(name, campaign.holdout_percent, d)} AS holdout "
        f"FROM base b {' '.join(joins)}"
    )


def campaign_query(
    book: CampaignBook,
    name: str,
    *,
    as_of: dt.date,
    now: dt.datetime,
    feature_columns: Sequence[str],
    require_opt_in: Sequence[str] = (),
    dialect: Dialect = SPARK,
    relations: dict[str, str] | None = None,
) -> str:
    """The query evaluating campaign `name` over the relations of `INPUTS`. Competing
    campaigns of higher priority are evaluated first and claim their members (control
    groups included, so a control group stays untouched)."""
    d = dialect
    r = {**{n: n for n in INPUTS}, **(relations or {})}
    campaign = book.get(name)
    known = {*feature_columns, "mobile", "email", "segment_name", "dealer_code"}
    for i, condition in enumerate(campaign.audience.where):
        if condition.feature not in known:
            raise CampaignError(f"campaigns.{name}.audience.where.{i}.feature: unknown feature {condition.feature!r}")
    drop = {"mobile", "email", "segment_name", "dealer_code"}
    features = ", ".join(f"f.{d.ident(c)}" for c in feature_columns if c not in drop)
    ctes = [
        "base AS (SELECT " + features + f", p.mobile, p.email, s.segment_name, h.dealer_code FROM {r['features']} f "
        f"LEFT JOIN {r['profiles']} p ON p.customer_id = f.customer_id LEFT JOIN {r['segments']} s ON s.customer_id = f.customer_id "
        f"LEFT JOIN {r['home_dealers']} h ON h.customer_id = f.customer_id)"
    ]
    claimed: str | None = None
    options = {"as_of": as_of, "now": now, "require_opt_in": require_opt_in, "d": d, "r": r}
    for i, rival in enumerate(competitors_before(book, name)):
        ctes.append(f"rival_{i} AS ({_evaluated(book.get(rival), rival, claimed, **options)})")  # type: ignore[arg-type]
        members = f"SELECT customer_id FROM rival_{i} WHERE member"
        ctes.append(f"claimed_{i} AS ({members}" + (f" UNION ALL SELECT customer_id FROM {claimed}" if claimed else "") + ")")
        claimed = f"claimed_{i}"
    ctes.append(f"evaluated AS ({_evaluated(campaign, name, claimed, **options)})")  # type: ignore[arg-type]
    return "WITH " + ", ".join(ctes) + " SELECT * FROM evaluated"


def summary_query(evaluated: str, require_opt_in: Sequence[str] = (), d: Dialect = SPARK, consent: str = "consent") -> str:
    """Counts of an evaluated campaign's qualifying customers: what each suppression removes
    alone and after the ones before it, members, control group, and how many each channel
    would reach."""
    parts = ["count(*) AS qualifying"]
    earlier = "FALSE"
    for flag in SUPPRESSIONS:
        parts.append(f"sum(CASE WHEN e.{flag} THEN 1 ELSE 0 END) AS alone_{flag}")
        parts.append(f"sum(CASE WHEN e.{flag} AND NOT ({earlier}) THEN 1 ELSE 0 END) AS order_{flag}")
        earlier = f"{earlier} OR e.{flag}"
    parts.append("sum(CASE WHEN e.member THEN 1 ELSE 0 END) AS members")
    parts.append("sum(CASE WHEN e.member AND e.holdout THEN 1 ELSE 0 END) AS holdout")
    joins = []
    for channel in CHANNELS:
        alias = f"c_{channel}"
        joins.append(
            f"LEFT JOIN (SELECT customer_id, opted_out, opted_in FROM {consent} WHERE channel = {d.lit(channel)}) {alias} "
            f"ON {alias}.customer_id = e.customer_id"
        )
        parts.append(
            f"sum(CASE WHEN {_contactable(channel, alias, require_opt_in)} AND {_reachable(channel, 'e.')} THEN 1 ELSE 0 END) AS reach_{channel}"
        )
    return f"SELECT {', '.join(parts)} FROM {evaluated} e {' '.join(joins)} WHERE e.eligible"
