"""Segment views for marketers: one segment against the population, aggregated in DuckDB
over the gold tables (no SparkSession), and its chart."""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdp import catalog
from cdp.errors import NotFoundError
from cdp.reader import LakeReader

__all__ = ["SegmentView", "build_segment_view", "write_segment_chart"]


@dataclass
class SegmentView:
    name: str
    size: int
    share: float
    profile: list[tuple[str, float, float]]  # feature, segment mean, population mean
    top_cities: list[tuple[str, int]]
    top_models: list[tuple[str, int]]
    lifecycle: list[tuple[str, float]]


def build_segment_view(reader: LakeReader, day: dt.date, name: str, numeric: list[str], top: int = 5) -> SegmentView:
    """Segment `name` as of `day` against everyone scored that day, aggregated in DuckDB
    over the gold tables. Raises NotFoundError when no customer has that segment."""
    tables = {"s": catalog.CUSTOMER_SEGMENTS, "f": catalog.CUSTOMER_FEATURES}
    means = ", ".join(f'avg(CAST(f."{c}" AS DOUBLE)) AS "{c}"' for c in numeric)
    # Only the columns the view shows: the features table is wide, and a page waits on this.
    wanted = ", ".join(f'f."{c}"' for c in dict.fromkeys([*numeric, "city", "newest_vehicle_model", "lifecycle_stage"]))
    with reader.connect(tables) as con:
        con.execute(
            f"CREATE TEMP TABLE joined AS SELECT {wanted}, s.segment_name FROM f JOIN s USING (customer_id) "
            "WHERE f.as_of_date = ? AND s.as_of_date = ?",
            [day, day],
        )
        con.execute("CREATE TEMP TABLE members AS SELECT * FROM joined WHERE segment_name = ?", [name])

        def one(sql: str) -> dict[str, Any]:
            cursor = con.execute(sql)
            return dict(zip([d[0] for d in cursor.description], cursor.fetchall()[0]))

        population = one(f"SELECT count(*) AS _n, {means} FROM joined f")
        mine = one(f"SELECT count(*) AS _n, {means} FROM members f")
        if not mine["_n"]:
            raise NotFoundError(f"no customer in segment {name!r} as of {day}")

        def top_of(column: str) -> list[tuple[str, int]]:
            rows = con.execute(
                f'SELECT "{column}", count(*) AS n FROM members WHERE "{column}" IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1 LIMIT {int(top)}'
            ).fetchall()
            return [(str(v), int(n)) for v, n in rows]

        stages = con.execute("SELECT lifecycle_stage, count(*) FROM members GROUP BY 1").fetchall()
        cities, models = top_of("city"), top_of("newest_vehicle_model")
    return SegmentView(
        name=name,
        size=int(mine["_n"]),
        share=mine["_n"] / population["_n"],
        profile=[(c, mine[c], population[c]) for c in numeric],
        top_cities=cities,
        top_models=models,
        lifecycle=sorted(((stage, n / mine["_n"]) for stage, n in stages), key=lambda t: (-t[1], str(t[0]))),
    )


def write_segment_chart(view: SegmentView, path: str) -> str:
    """The segment's feature means as a share of the population's: PNG, or HTML (PNG inline)."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(f, (m or 0.0) / p) for f, m, p in view.profile if p]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.5))
    ax.barh([f for f, _ in rows][::-1], [r for _, r in rows][::-1], color=["#cc6677" if r > 1 else "#4477aa" for _, r in rows][::-1])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("segment mean / population mean")
    ax.set_title(f"{view.name}: {view.size} customers ({view.share:.0%})")
    fig.tight_layout()
    target = Path(path)
    if target.suffix.lower() == ".html":
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        image = base64.b64encode(buffer.getvalue()).decode("ascii")
        # Values come from the data (a city can hold markup): escape every one.
        title = html.escape(view.name)
        cities = "".join(f"<li>{html.escape(c)}: {n}</li>" for c, n in view.top_cities)
        stages = "".join(f"<li>{html.escape(str(s))}: {share:.0%}</li>" for s, share in view.lifecycle)
        target.write_text(
            f"<html><head><meta charset='utf-8'><title>{title}</title></head><body><h1>{title}</h1>"
            f"<img src='data:image/png;base64,{image}'/><h2>Top cities</h2><ul>{cities}</ul>"
            f"<h2>Lifecycle</h2><ul>{stages}</ul></body></html>",
            encoding="utf-8",
        )
    else:
        fig.savefig(target, dpi=110)
    plt.close(fig)
    return str(target)
