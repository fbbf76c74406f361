"""Consent scored against ground truth: does an opt-out reach every customer of the person
who made it?

The truth is the generator's (or a dealer's hand-checked sample): `mentions.csv` (feed,
record_id, role, person_id) says whose each record is, `contact_preferences.csv` (person_id,
channel, opt_in, updated_at) whose each preference row is. A person has opted out of a channel
when their latest statement for it says so (opt-out wins a tie). The platform's reachable list
for a channel is every customer with an address for it (a mobile; an e-mail for e-mail) whom
`gold/customer_consent` does not mark opted out: the gate every list and export goes through.

A reachable customer leaks when any of its records belongs to a person who opted out of that
channel. Counted by person and channel, a leaked opt-out is `split` when the opt-out reached
another of the person's customers and missed this one, `missed` when it reached none. The
cost of suppressing when in doubt is given too: customers held back on a channel though no
person in them opted out of it. Every built list version (`gold/audiences`, control groups
left out) is checked the same way: its rows that belong to a person who opted out of the
list's channel. Read with DuckDB over the gold tables: no SparkSession.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cdp import catalog
from cdp.activation_config import CHANNELS
from cdp.errors import UsageError
from cdp.reader import LakeReader

__all__ = ["TRUTH_FILES", "opt_out_leaks"]

TRUTH_FILES = {
    "mentions.csv": ("feed", "record_id", "role", "person_id"),
    "contact_preferences.csv": ("person_id", "channel", "opt_in", "updated_at"),
}


def _truth_file(folder: Path, name: str) -> str:
    path = folder / name
    if not path.is_file():
        raise UsageError(f"{folder}: no {name} (the truth folder holds {' and '.join(TRUTH_FILES)})")
    with path.open(encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    missing = [c for c in TRUTH_FILES[name] if c not in header]
    if missing:
        raise UsageError(f"{path}: missing column(s) {', '.join(missing)}")
    return str(path)


def opt_out_leaks(reader: LakeReader, truth: str | Path) -> dict[str, Any]:
    """Leaked opt-outs per channel and in all (see the module's doc), from the truth folder."""
    folder = Path(truth)
    mentions = _truth_file(folder, "mentions.csv")
    preferences = _truth_file(folder, "contact_preferences.csv")
    reader.require(catalog.CUSTOMER_XREF, catalog.CUSTOMERS, catalog.CUSTOMER_CONSENT)
    tables = {"x": catalog.CUSTOMER_XREF, "c": catalog.CUSTOMERS, "k": catalog.CUSTOMER_CONSENT}
    channels = ", ".join(f"('{c}')" for c in CHANNELS)
    with reader.connect(tables) as con:
        con.execute(
            "CREATE TEMP TABLE people AS SELECT DISTINCT x.customer_id, t.person_id FROM x "
            "JOIN read_csv(?, header = true, all_varchar = true) t ON x.mention_id = t.feed || ':' || t.record_id || ':' || t.role",
            [mentions],
        )
        con.execute(
            "CREATE TEMP TABLE opted_out AS SELECT person_id, channel FROM ("
            " SELECT person_id, channel, opt_in, row_number() OVER (PARTITION BY person_id, channel"
            "  ORDER BY updated_at DESC, opt_in ASC) AS n FROM read_csv(?, header = true, all_varchar = true)"
            ") WHERE n = 1 AND lower(opt_in) = 'false'",
            [preferences],
        )
        con.execute(
            f"CREATE TEMP TABLE listed AS SELECT c.customer_id, ch.channel, coalesce(k.opted_out, false) AS held_back "
            f"FROM c CROSS JOIN (VALUES {channels}) ch(channel) "
            f"LEFT JOIN k ON k.customer_id = c.customer_id AND k.channel = ch.channel "
            f"WHERE CASE WHEN ch.channel = 'email' THEN c.email IS NOT NULL ELSE c.mobile IS NOT NULL END"
        )
        # Every (customer, channel) with an address, and whether a person in it opted out.
        con.execute(
            "CREATE TEMP TABLE judged AS SELECT l.customer_id, l.channel, l.held_back, o.person_id AS opted_person "
            "FROM listed l LEFT JOIN people p ON p.customer_id = l.customer_id "
            "LEFT JOIN opted_out o ON o.person_id = p.person_id AND o.channel = l.channel"
        )
        rows = con.execute(
            "WITH per_customer AS ("
            " SELECT customer_id, channel, any_value(held_back) AS held_back, count(opted_person) > 0 AS owed"
            " FROM judged GROUP BY 1, 2),"
            " per_person AS ("
            " SELECT channel, opted_person, bool_or(NOT held_back) AS leaked, bool_or(held_back) AS reached"
            " FROM judged WHERE opted_person IS NOT NULL GROUP BY 1, 2)"
            " SELECT ch.channel,"
            "  (SELECT count(*) FROM per_customer WHERE channel = ch.channel AND NOT held_back) AS reachable,"
            "  (SELECT count(*) FROM per_customer WHERE channel = ch.channel AND NOT held_back AND owed) AS leaked_rows,"
            "  (SELECT count(*) FROM per_customer WHERE channel = ch.channel AND held_back AND NOT owed) AS held_back_in_doubt,"
            "  (SELECT count(*) FROM opted_out WHERE channel = ch.channel) AS opted_out_people,"
            "  (SELECT count(*) FROM per_person WHERE channel = ch.channel AND leaked AND reached) AS leaked_split,"
            "  (SELECT count(*) FROM per_person WHERE channel = ch.channel AND leaked AND NOT reached) AS leaked_missed"
            f" FROM (VALUES {channels}) ch(channel) ORDER BY ch.channel"
        ).fetchall()
        listed = _listed_leaks(reader, con) if reader.exists(catalog.AUDIENCES) else {}
    names = ("channel", "reachable", "leaked_rows", "held_back_in_doubt", "opted_out_people", "leaked_split", "leaked_missed")
    per_channel = [{**dict(zip(names, row)), "audience_rows": listed.get(row[0], (0, 0))[0],
                    "audience_rows_leaked": listed.get(row[0], (0, 0))[1]} for row in rows]
    totals = {k: sum(int(r[k]) for r in per_channel) for k in [*names[1:], "audience_rows", "audience_rows_leaked"]}
    return {"channels": per_channel, **totals}


def _listed_leaks(reader: LakeReader, con: Any) -> dict[str, tuple[int, int]]:
    """Per channel: (rows of every built list version that would be contacted, those that
    belong to a person who opted out of the list's channel). Control-group rows are not
    contacted and do not count."""
    con.register("a", reader.dataset(catalog.AUDIENCES))
    rows = con.execute(
        "WITH listed AS (SELECT campaign, version, customer_id, channel FROM a WHERE NOT coalesce(holdout, false)),"
        " owed AS (SELECT DISTINCT p.customer_id, o.channel FROM people p JOIN opted_out o USING (person_id))"
        " SELECT l.channel, count(*), count(w.customer_id) FROM listed l"
        " LEFT JOIN owed w ON w.customer_id = l.customer_id AND w.channel = l.channel GROUP BY 1"
    ).fetchall()
    return {channel: (int(n), int(leaked)) for channel, n, leaked in rows}
