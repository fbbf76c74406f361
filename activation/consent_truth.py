"""Consent scored against ground truth: does an opt-out reach every customer of the person
who made it?

The truth is the generator's (or a dealer's hand-checked sample): `mentions.csv` (feed,
record_id, role, person_id) says whose each record is, `contact_preferences.csv` (person_id,
channel, opt_in, updated_at, and the row's mobile and id_number when known) whose each
preference row is. A person has opted out of a channel when their latest statement for it says
so (opt-out wins a tie). The platform's reachable list for a channel is every customer with an
address for it (a mobile; an e-mail for e-mail) whom `gold/customer_consent` does not mark
opted out: the gate every list and export goes through.

A reachable customer leaks when one of its records belongs to a person who opted out of that
channel. An opt-out is `unattributable` when none of the person's records in the lake carries
the mobile or ID number it was made with (a prospect who opted out by an ID that no lead
carries, a mobile taken after the person's last visit): no system can tie it to the person's
customers, so it is counted apart.
Counted by person and channel, an attributable opt-out that leaked is `split` when it reached
another of the person's customers and missed this one, `missed` when it reached none. The cost
of suppressing when in doubt is given too: customers held back on a channel though no person
in them opted out of it. Every built list version (`gold/audiences`, control groups left out)
is checked the same way. Read with DuckDB over the gold tables: no SparkSession.
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
FIGURES = (
    "reachable", "leaked_rows", "unattributable_rows", "held_back_in_doubt", "opted_out_people", "unattributable_people",
    "leaked_split", "leaked_missed", "audience_rows", "audience_rows_leaked", "audience_rows_unattributable",
)


def _truth_file(folder: Path, name: str) -> tuple[str, list[str]]:
    path = folder / name
    if not path.is_file():
        raise UsageError(f"{folder}: no {name} (the truth folder holds {' and '.join(TRUTH_FILES)})")
    with path.open(encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    missing = [c for c in TRUTH_FILES[name] if c not in header]
    if missing:
        raise UsageError(f"{path}: missing column(s) {', '.join(missing)}")
    return str(path), header


def opt_out_leaks(reader: LakeReader, truth: str | Path) -> dict[str, Any]:
    """Leaked opt-outs per channel and in all (see the module's doc), from the truth folder."""
    folder = Path(truth)
    mentions, _ = _truth_file(folder, "mentions.csv")
    preferences, header = _truth_file(folder, "contact_preferences.csv")
    reader.require(catalog.CUSTOMER_XREF, catalog.CUSTOMERS, catalog.CUSTOMER_CONSENT, catalog.PERSON_MENTIONS)
    tables = {"x": catalog.CUSTOMER_XREF, "c": catalog.CUSTOMERS, "k": catalog.CUSTOMER_CONSENT, "m": catalog.PERSON_MENTIONS}
    channels = ", ".join(f"('{c}')" for c in CHANNELS)
    # The identifiers the statement was made with, as the lake keeps them: a mobile's last 11
    # digits, an ID number upper-cased without spaces.
    mobile = "right(regexp_replace(coalesce(p.mobile, ''), '[^0-9]', '', 'g'), 11)" if "mobile" in header else "NULL"
    id_number = "upper(replace(p.id_number, ' ', ''))" if "id_number" in header else "NULL"
    known = "mobile" in header or "id_number" in header
    with reader.connect(tables) as con:
        con.execute(
            "CREATE TEMP TABLE truth AS SELECT feed || ':' || record_id || ':' || role AS mention_id, person_id "
            "FROM read_csv(?, header = true, all_varchar = true)",
            [mentions],
        )
        con.execute("CREATE TEMP TABLE people AS SELECT DISTINCT x.customer_id, t.person_id FROM x JOIN truth t USING (mention_id)")
        con.execute(
            f"CREATE TEMP TABLE statements AS SELECT p.person_id, p.channel, lower(p.opt_in) = 'false' AS opted_out, "
            f"nullif({mobile}, '') AS mobile, nullif({id_number}, '') AS id_number, "
            f"row_number() OVER (PARTITION BY p.person_id, p.channel ORDER BY p.updated_at DESC, lower(p.opt_in) = 'false' DESC) AS n "
            f"FROM read_csv(?, header = true, all_varchar = true) p",
            [preferences],
        )
        if known:  # each person's identifiers, as their own records carry them
            con.execute(
                "CREATE TEMP TABLE held AS SELECT DISTINCT t.person_id, v AS identifier FROM m JOIN truth t USING (mention_id), "
                "unnest([m.mobile, m.mobile_alt, m.id_number, m.id_unchecked]) AS u(v) WHERE v IS NOT NULL"
            )
        held = ("EXISTS (SELECT 1 FROM held h WHERE h.person_id = s.person_id AND h.identifier IN (s.mobile, s.id_number))"
                if known else "true")
        con.execute(f"CREATE TEMP TABLE opted_out AS SELECT s.person_id, s.channel, coalesce({held}, false) AS attributable "
                    f"FROM statements s WHERE s.n = 1 AND s.opted_out")
        con.execute(
            f"CREATE TEMP TABLE listed AS SELECT c.customer_id, ch.channel, coalesce(k.opted_out, false) AS held_back "
            f"FROM c CROSS JOIN (VALUES {channels}) ch(channel) "
            f"LEFT JOIN k ON k.customer_id = c.customer_id AND k.channel = ch.channel "
            f"WHERE CASE WHEN ch.channel = 'email' THEN c.email IS NOT NULL ELSE c.mobile IS NOT NULL END"
        )
        # Every (customer, channel) with an address, and each person in it who opted out of it.
        con.execute(
            "CREATE TEMP TABLE judged AS SELECT l.customer_id, l.channel, l.held_back, o.person_id AS opted_person, o.attributable "
            "FROM listed l LEFT JOIN people p ON p.customer_id = l.customer_id "
            "LEFT JOIN opted_out o ON o.person_id = p.person_id AND o.channel = l.channel"
        )
        rows = con.execute(
            "WITH per_customer AS ("
            " SELECT customer_id, channel, any_value(held_back) AS held_back, count(opted_person) > 0 AS owed,"
            "  coalesce(bool_or(attributable), false) AS attributable"
            " FROM judged GROUP BY 1, 2),"
            " customer_counts AS ("
            " SELECT channel, count(*) FILTER (WHERE NOT held_back) AS reachable,"
            "  count(*) FILTER (WHERE NOT held_back AND owed AND attributable) AS leaked_rows,"
            "  count(*) FILTER (WHERE NOT held_back AND owed AND NOT attributable) AS unattributable_rows,"
            "  count(*) FILTER (WHERE held_back AND NOT owed) AS held_back_in_doubt"
            " FROM per_customer GROUP BY 1),"
            " statement_counts AS ("
            " SELECT channel, count(*) AS opted_out_people, count(*) FILTER (WHERE NOT attributable) AS unattributable_people"
            " FROM opted_out GROUP BY 1),"
            " per_person AS ("
            " SELECT channel, opted_person, bool_or(NOT held_back) AS leaked, bool_or(held_back) AS reached"
            " FROM judged WHERE opted_person IS NOT NULL AND attributable GROUP BY 1, 2),"
            " person_counts AS ("
            " SELECT channel, count(*) FILTER (WHERE leaked AND reached) AS leaked_split,"
            "  count(*) FILTER (WHERE leaked AND NOT reached) AS leaked_missed"
            " FROM per_person GROUP BY 1)"
            " SELECT ch.channel, coalesce(reachable, 0), coalesce(leaked_rows, 0), coalesce(unattributable_rows, 0),"
            "  coalesce(held_back_in_doubt, 0), coalesce(opted_out_people, 0), coalesce(unattributable_people, 0),"
            "  coalesce(leaked_split, 0), coalesce(leaked_missed, 0)"
            f" FROM (VALUES {channels}) ch(channel) LEFT JOIN customer_counts USING (channel) LEFT JOIN statement_counts USING (channel)"
            " LEFT JOIN person_counts USING (channel) ORDER BY ch.channel"
        ).fetchall()
        listed = _listed_leaks(reader, con) if reader.exists(catalog.AUDIENCES) else {}
    counted, from_lists = FIGURES[:8], FIGURES[8:]  # the lake's figures, then the built lists'
    per_channel = [{"channel": row[0], **dict(zip(counted, row[1:])), **dict(zip(from_lists, listed.get(row[0], (0, 0, 0))))}
                   for row in rows]
    return {"channels": per_channel, **{k: sum(int(r[k]) for r in per_channel) for k in FIGURES}}


def _listed_leaks(reader: LakeReader, con: Any) -> dict[str, tuple[int, int, int]]:
    """Per channel: (rows of every built list version that would be contacted, those that
    belong to a person with an attributable opt-out of the list's channel, those whose
    person's opt-out is unattributable). Control-group rows are not contacted and do not count."""
    con.register("a", reader.dataset(catalog.AUDIENCES))
    rows = con.execute(
        "WITH listed AS (SELECT campaign, version, customer_id, channel FROM a WHERE NOT coalesce(holdout, false)),"
        " owed AS (SELECT p.customer_id, o.channel, bool_or(o.attributable) AS attributable"
        "  FROM people p JOIN opted_out o USING (person_id) GROUP BY 1, 2)"
        " SELECT l.channel, count(*), count(*) FILTER (WHERE w.attributable), count(*) FILTER (WHERE NOT w.attributable)"
        " FROM listed l LEFT JOIN owed w ON w.customer_id = l.customer_id AND w.channel = l.channel GROUP BY 1"
    ).fetchall()
    return {channel: (int(n), int(leaked), int(unattributable)) for channel, n, leaked, unattributable in rows}
