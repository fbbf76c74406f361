"""Segment views for marketers: sizes and traits, and one segment against the population.
Aggregated on Spark; only the small summaries come to the driver."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

__all__ = ["SegmentView", "build_segment_view", "segment_sizes", "write_segment_chart"]


@dataclass
class SegmentView:
    name: str
    size: int
    share: float
    profile: list[tuple[str, float, float]]  # feature, segment mean, population mean
    top_cities: list[tuple[str, int]]
    top_models: list[tuple[str, int]]
    lifecycle: list[tuple[str, float]]


def segment_sizes(segments: DataFrame) -> list[tuple[str, int, float]]:
    """(name, customers, share) per segment, largest first."""
    counts = segments.groupBy("segment_name").count().collect()
    total = sum(r["count"] for r in counts) or 1
    return sorted(((r["segment_name"], int(r["count"]), r["count"] / total) for r in counts), key=lambda t: -t[1])


def _top(df: DataFrame, column: str, n: int) -> list[tuple[str, int]]:
    rows = df.filter(F.col(column).isNotNull()).groupBy(column).count().orderBy(F.desc("count"), column).limit(n).collect()
    return [(str(r[column]), int(r["count"])) for r in rows]


def build_segment_view(segments: DataFrame, features: DataFrame, name: str, numeric: list[str], top: int = 5) -> SegmentView:
    """`segments` (customer_id, segment_name) and `features` of the same as-of date ->
    the view of segment `name`. Raises KeyError when no customer has that segment."""
    joined = features.join(segments.select("customer_id", "segment_name"), "customer_id")
    members = joined.filter(F.col("segment_name") == name)
    means = [F.avg(F.col(c).cast("double")).alias(c) for c in numeric]
    population = joined.agg(F.count("*").alias("_n"), *means).first()
    mine = members.agg(F.count("*").alias("_n"), *means).first()
    if not mine["_n"]:
        raise KeyError(name)
    stages = members.groupBy("lifecycle_stage").count().collect()
    return SegmentView(
        name=name,
        size=int(mine["_n"]),
        share=mine["_n"] / population["_n"],
        profile=[(c, mine[c], population[c]) for c in numeric],
        top_cities=_top(members, "city", top),
        top_models=_top(members, "newest_vehicle_model", top),
        lifecycle=sorted(((r["lifecycle_stage"], r["count"] / mine["_n"]) for r in stages), key=lambda t: -t[1]),
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
        cities = "".join(f"<li>{c}: {n}</li>" for c, n in view.top_cities)
        stages = "".join(f"<li>{s}: {share:.0%}</li>" for s, share in view.lifecycle)
        target.write_text(
            f"<html><head><meta charset='utf-8'><title>{view.name}</title></head><body><h1>{view.name}</h1>"
            f"<img src='data:image/png;base64,{image}'/><h2>Top cities</h2><ul>{cities}</ul>"
            f"<h2>Lifecycle</h2><ul>{stages}</ul></body></html>",
            encoding="utf-8",
        )
    else:
        fig.savefig(target, dpi=110)
    plt.close(fig)
    return str(target)
