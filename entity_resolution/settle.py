"""Clusters settled into people: the rules applied after clustering, in this order.

1. Mentions that cannot be one person are kept apart (`conflicts`): a cluster holding such a
   pair is rebuilt from its own links, strongest first (`overrides.greedy_components`), unless
   a reviewer confirmed the pair as one person.
2. Records that name nobody join their vehicle's owner (`attach`).
3. Reviewers' cannot-links are kept apart the same way as conflicts.
4. Each mention is flagged `identified` when a mention of its cluster names somebody.

Two implementations of the same rules give the same rows: Spark's (`settle_clusters`, built
from the modules named above) and DuckDB's (`settle_in_duckdb`), which the DuckDB engine runs
over the mentions, clusters and links it holds after clustering. At 100,000 customers Spark's
took about 95 s of the cluster phase.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from cdp.config import ResolutionConfig
from cdp.reader import text_table
from entity_resolution.attach import OWNER_ROLES, attach_weak_clusters, flag_identified
from entity_resolution.conflicts import conflicting_pairs
from entity_resolution.overrides import Overrides, drop_confirmed, enforce_cannot_link, greedy_components, keep_apart
from entity_resolution.work import checkpoint

__all__ = ["SETTLE_BATCH_ROWS", "settle_clusters", "settle_in_duckdb"]

log = logging.getLogger(__name__)

# How many mentions and links of the clusters kept apart DuckDB's settling rebuilds at a time.
SETTLE_BATCH_ROWS = 2_000_000


def settle_clusters(
    spark: SparkSession, mentions: DataFrame, clusters: DataFrame, pairs: DataFrame, overrides: Overrides, config: ResolutionConfig, work: str
) -> DataFrame:
    """(mention_id, cluster_id, identified) of `clusters` (mention_id, cluster_id) settled by
    the rules in the module docstring, in Spark. `pairs`: the scored pairs with the reviewers'
    decisions applied; `work`, a scratch folder. Written there once and read back."""
    threshold = config.match_threshold
    if config.keep_conflicts_apart:
        # A shared family phone and car must not make one customer of a couple.
        conflicts = drop_confirmed(spark, conflicting_pairs(mentions, clusters), overrides)
        clusters = keep_apart(spark, clusters, pairs, conflicts, threshold, f"{work}/kept_apart")
    clusters = attach_weak_clusters(mentions, clusters)
    clusters = enforce_cannot_link(spark, clusters, pairs, overrides, threshold, f"{work}/cannot_link")
    return checkpoint(spark, flag_identified(mentions, clusters), f"{work}/resolved_clusters")


# `attach.is_strong`, `conflicts._HAN_NAME` and `conflicts.names_conflict` in DuckDB's SQL.
_STRONG = (
    "(m.mobile IS NOT NULL OR m.mobile_alt IS NOT NULL OR m.id_number IS NOT NULL OR m.email IS NOT NULL "
    "OR m.name_simplified IS NOT NULL)"
)
_HAN_NAME = r"^[\x{4e00}-\x{9fff}]{2,4}$"
_NAMES_CONFLICT = (
    "(NOT list_has_any(l.syllables, r.syllables) OR (len(l.syllables) >= 2 AND len(r.syllables) >= 2 "
    "AND l.syllables[1] = r.syllables[1] AND NOT list_has_any(l.syllables[2:4], r.syllables[2:4])))"
)


def settle_in_duckdb(
    con: Any, mentions: str, clusters: str, links: str, overrides: Overrides, config: ResolutionConfig, out_path: str,
    batch_rows: int = SETTLE_BATCH_ROWS,
) -> None:
    """`settle_clusters` in DuckDB, written to the Parquet file `out_path`. `mentions`,
    `clusters` (id, cluster_id) and `links` (id_l < id_r, match_probability: the pairs of at
    least the match threshold, the reviewers' decisions applied) name relations on `con`.
    Clusters kept apart are rebuilt in this process `batch_rows` mentions and links at a time."""
    threshold = float(config.match_threshold)
    con.execute(f"CREATE OR REPLACE TEMP TABLE settled AS SELECT id AS mention_id, CAST(cluster_id AS VARCHAR) AS cluster_id FROM {clusters}")
    if config.keep_conflicts_apart:
        _pairs_table(con, "settle_confirmed", (d.pair for d in overrides.must_link))
        con.execute(f"CREATE OR REPLACE TEMP TABLE settle_forbidden AS SELECT * FROM ({_conflicts_sql(mentions)}) ANTI JOIN settle_confirmed USING (a, b)")
        _keep_apart(con, "settle_forbidden", links, threshold, batch_rows)
    _attach_weak(con, mentions)
    if overrides.cannot_link:
        _pairs_table(con, "settle_cannot_link", (d.pair for d in overrides.cannot_link))
        _keep_apart(con, "settle_cannot_link", links, threshold, batch_rows)
    con.execute(f"""
        COPY (
            SELECT s.mention_id, s.cluster_id, coalesce(max(f.strong) OVER (PARTITION BY s.cluster_id) = 1, true) AS identified
            FROM settled s LEFT JOIN (SELECT m.mention_id, CAST({_STRONG} AS INTEGER) AS strong FROM {mentions} m) f USING (mention_id)
        ) TO '{out_path}' (FORMAT parquet)
    """)


def _pairs_table(con: Any, name: str, pairs: Iterable[tuple[str, str]]) -> None:
    text_table(con, name, ("a", "b"), sorted(set(pairs)))


def _conflicts_sql(mentions: str) -> str:
    """(a < b): the conflicting pairs inside the settled clusters (`conflicts.conflicting_pairs`)."""
    return f"""
        WITH tagged AS (
            SELECT s.mention_id, s.cluster_id, m.id_number,
                   CASE WHEN regexp_matches(m.name_simplified, '{_HAN_NAME}') AND coalesce(m.customer_type <> 'company', true)
                        THEN string_split(m.name_pinyin, ' ') END AS syllables
            FROM {mentions} m JOIN settled s ON s.mention_id = m.mention_id
        ),
        named AS (SELECT cluster_id, mention_id, array_to_string(syllables, ' ') AS name, syllables FROM tagged WHERE syllables IS NOT NULL),
        names AS (SELECT DISTINCT cluster_id, name, syllables FROM named),
        name_pairs AS (
            SELECT l.cluster_id, l.name AS name_l, r.name AS name_r
            FROM names l JOIN names r ON l.cluster_id = r.cluster_id
            WHERE l.name < r.name AND {_NAMES_CONFLICT}
        ),
        by_names AS (
            SELECT x.mention_id AS a, y.mention_id AS b FROM name_pairs p
            JOIN named x ON x.cluster_id = p.cluster_id AND x.name = p.name_l
            JOIN named y ON y.cluster_id = p.cluster_id AND y.name = p.name_r
        ),
        ids AS (SELECT cluster_id, mention_id, id_number FROM tagged WHERE id_number IS NOT NULL),
        carried AS (
            SELECT * FROM ids SEMI JOIN (SELECT cluster_id FROM ids GROUP BY cluster_id HAVING count(DISTINCT id_number) > 1) USING (cluster_id)
        ),
        by_ids AS (
            SELECT l.mention_id AS a, r.mention_id AS b FROM carried l JOIN carried r ON l.cluster_id = r.cluster_id
            WHERE l.id_number <> r.id_number
        )
        SELECT DISTINCT least(a, b) AS a, greatest(a, b) AS b FROM (SELECT * FROM by_names UNION ALL SELECT * FROM by_ids)
    """


def _keep_apart(con: Any, forbidden: str, links: str, threshold: float, batch_rows: int) -> None:
    """`overrides.keep_apart` on the settled clusters: each cluster holding a pair of
    `forbidden` (a < b) rebuilt from its links of at least `threshold` by the same greedy
    union, in this process. The clusters are rebuilt in batches of about `batch_rows` mentions
    and links (a cluster is never split between two): at 1,000,000 customers, holding every
    such cluster's links at once took this process from 4.0 to 7.2 GiB."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE settle_inside AS
        SELECT l.cluster_id, f.a, f.b FROM {forbidden} f
        JOIN settled l ON l.mention_id = f.a JOIN settled r ON r.mention_id = f.b
        WHERE l.cluster_id = r.cluster_id
    """)
    if not con.execute("SELECT count(*) FROM settle_inside").fetchall()[0][0]:
        return
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE settle_broken_links AS
        SELECT l.cluster_id, e.id_l, e.id_r, e.match_probability FROM {links} e
        JOIN settled l ON l.mention_id = e.id_l JOIN settled r ON r.mention_id = e.id_r
        WHERE l.cluster_id = r.cluster_id AND e.match_probability >= {threshold!r}
          AND l.cluster_id IN (SELECT cluster_id FROM settle_inside)
    """)
    # Each broken cluster's batch, by the running count of mentions and links in cluster order.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE settle_broken AS
        WITH sizes AS (
            SELECT cluster_id, count(*) AS size FROM (
                SELECT cluster_id FROM settled SEMI JOIN (SELECT DISTINCT cluster_id FROM settle_inside) USING (cluster_id)
                UNION ALL SELECT cluster_id FROM settle_broken_links
            ) GROUP BY cluster_id
        )
        SELECT cluster_id, (sum(size) OVER (ORDER BY cluster_id ROWS UNBOUNDED PRECEDING) - size) // {int(batch_rows)} AS batch FROM sizes
    """)
    con.execute("CREATE OR REPLACE TEMP TABLE settle_rebuilt (mention_id VARCHAR, cluster_id VARCHAR)")
    batches = [b for (b,) in con.execute("SELECT DISTINCT batch FROM settle_broken ORDER BY batch").fetchall()]
    for batch in batches:
        of_batch = f"SEMI JOIN (SELECT cluster_id FROM settle_broken WHERE batch = {batch}) USING (cluster_id)"
        nodes: dict[str, list[str]] = {}
        for cluster, mention in con.execute(f"SELECT cluster_id, mention_id FROM settled {of_batch}").fetchall():
            nodes.setdefault(cluster, []).append(mention)
        edges: dict[str, list[tuple[str, str, float]]] = {}
        for cluster, a, b, p in con.execute(f"SELECT cluster_id, id_l, id_r, match_probability FROM settle_broken_links {of_batch}").fetchall():
            edges.setdefault(cluster, []).append((a, b, p))
        apart: dict[str, set[tuple[str, str]]] = {}
        for cluster, a, b in con.execute(f"SELECT cluster_id, a, b FROM settle_inside {of_batch}").fetchall():
            apart.setdefault(cluster, set()).add((a, b))
        rebuilt = []
        for cluster, members in nodes.items():
            strongest_first = sorted(edges.get(cluster, []), key=lambda e: (-e[2], e[0], e[1]))
            rebuilt += greedy_components(sorted(members), strongest_first, apart.get(cluster, set())).items()
        text_table(con, "settle_rebuilt_batch", ("mention_id", "cluster_id"), rebuilt)
        con.execute("INSERT INTO settle_rebuilt SELECT * FROM settle_rebuilt_batch")
    log.info("settling: %d clusters kept apart from %s in %d batch(es)", con.execute("SELECT count(*) FROM settle_broken").fetchall()[0][0], forbidden, len(batches))
    con.execute("UPDATE settled SET cluster_id = r.cluster_id FROM settle_rebuilt r WHERE settled.mention_id = r.mention_id")
    con.execute("DROP TABLE settle_rebuilt_batch")
    con.execute("DROP TABLE settle_broken_links")


def _attach_weak(con: Any, mentions: str) -> None:
    """`attach.attach_weak_clusters` on the settled clusters."""
    roles = ", ".join(f"'{r}'" for r in OWNER_ROLES)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE settle_moves AS
        WITH tagged AS (
            SELECT m.mention_id, m.role, m.seen_at, m.vin, m.surname_pinyin, m.customer_type, m.refers_to,
                   CAST({_STRONG} AS INTEGER) AS strong, s.cluster_id
            FROM {mentions} m JOIN settled s ON s.mention_id = m.mention_id
        ),
        kind AS (
            SELECT cluster_id, max(strong) AS strong,
                   coalesce(list_distinct(list(surname_pinyin) FILTER (WHERE surname_pinyin IS NOT NULL)), []) AS surnames
            FROM tagged GROUP BY cluster_id
        ),
        with_kind AS (SELECT t.* EXCLUDE (strong), k.strong, k.surnames FROM tagged t JOIN kind k USING (cluster_id)),
        weak AS (SELECT * FROM with_kind WHERE strong = 0),
        referenced AS (
            SELECT w.mention_id, k.cluster_id AS target, k.surnames AS target_surnames
            FROM weak w JOIN settled t ON t.mention_id = w.refers_to JOIN kind k ON k.cluster_id = t.cluster_id AND k.strong = 1
        ),
        owners AS (
            SELECT vin, seen_at AS owner_seen_at, cluster_id AS owner_cluster, surnames AS owner_surnames
            FROM with_kind WHERE strong = 1 AND role IN ({roles}) AND vin IS NOT NULL
        ),
        by_car AS (
            SELECT mention_id, owner_cluster, owner_surnames FROM (
                SELECT w.mention_id, o.owner_cluster, o.owner_surnames,
                       row_number() OVER (
                           PARTITION BY w.mention_id
                           ORDER BY o.owner_seen_at <= w.seen_at DESC NULLS LAST,
                                    abs(floor(epoch(w.seen_at)) - floor(epoch(o.owner_seen_at))) ASC NULLS FIRST,
                                    o.owner_cluster ASC NULLS FIRST
                       ) AS rank
                FROM weak w JOIN owners o ON o.vin = w.vin
                WHERE w.role IN ({roles}) AND w.vin IS NOT NULL
            ) WHERE rank = 1
        ),
        pointed AS (
            SELECT w.cluster_id,
                   CASE WHEN r.target IS NOT NULL THEN r.target ELSE c.owner_cluster END AS owner_cluster,
                   w.surname_pinyin IS NULL OR coalesce(w.customer_type = 'company', false)
                       OR list_contains(CASE WHEN r.target IS NOT NULL THEN r.target_surnames ELSE c.owner_surnames END, w.surname_pinyin) AS agrees
            FROM weak w LEFT JOIN referenced r USING (mention_id) LEFT JOIN by_car c USING (mention_id)
        ),
        weak_sizes AS (SELECT cluster_id, count(*) AS size FROM weak GROUP BY cluster_id)
        SELECT p.cluster_id, any_value(p.owner_cluster) AS owner_cluster
        FROM pointed p JOIN weak_sizes z USING (cluster_id)
        WHERE p.owner_cluster IS NOT NULL
        GROUP BY p.cluster_id, z.size
        HAVING count(DISTINCT p.owner_cluster) = 1 AND min(CAST(p.agrees AS INTEGER)) = 1 AND count(*) = z.size
    """)
    con.execute("UPDATE settled SET cluster_id = m.owner_cluster FROM settle_moves m WHERE settled.cluster_id = m.cluster_id")
