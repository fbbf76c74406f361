"""The linkage model's charts, readable with no network: a PNG of its match weights drawn with
matplotlib, and Splink's interactive match-weight and m/u charts as HTML files that carry
their vega scripts inline (Splink bundles them) instead of loading them from a CDN."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["match_weights", "save_model_charts_html", "save_match_weights_png"]


def match_weights(model: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(comparison, level, match weight = log2(m/u)) for every level with both probabilities,
    the prior first."""
    prior = model.get("probability_two_random_records_match")
    rows = [("prior", "two random records match", math.log2(prior / (1 - prior)))] if prior else []
    for comparison in model.get("comparisons", []):
        name = comparison.get("output_column_name", "?")
        for level in comparison.get("comparison_levels", []):
            m, u = level.get("m_probability"), level.get("u_probability")
            if level.get("is_null_level") or not m or not u:
                continue
            rows.append((name, str(level.get("label_for_charts", "")), math.log2(m / u)))
    return rows


def save_match_weights_png(model: dict[str, Any], path: str | Path) -> Path:
    """One horizontal bar per comparison level, grouped by comparison; positive weights
    (evidence for a match) in one colour, negative in another."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = match_weights(model)
    labels = [f"{c}: {level}"[:70] for c, level, _ in rows]
    weights = [w for _, _, w in rows]
    figure, axes = plt.subplots(figsize=(10, 0.32 * len(rows) + 1.2))
    axes.barh(range(len(rows)), weights, color=["#2b8a3e" if w >= 0 else "#c92a2a" for w in weights])
    axes.set_yticks(range(len(rows)), labels, fontsize=8)
    axes.invert_yaxis()
    axes.axvline(0, color="black", linewidth=0.8)
    axes.set_xlabel("match weight (log2 Bayes factor)")
    axes.set_title("Linkage model: match weight of each comparison level")
    figure.tight_layout()
    target = Path(path)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target


def save_model_charts_html(model: dict[str, Any], folder: str | Path) -> list[Path]:
    """`match_weights.html` and `m_u_parameters.html` in `folder`: Splink's charts of the
    model, scripts inline. They show the model's parameters only, no records."""
    from splink.internals.settings_creator import SettingsCreator

    # A model trained on Spark quotes its columns with backticks: read it in its own dialect.
    dialect = model.get("sql_dialect") or "duckdb"
    settings = SettingsCreator.from_path_or_dict(model).get_settings(dialect)
    written = []
    for name, chart in (("match_weights", settings.match_weights_chart()), ("m_u_parameters", settings.m_u_parameters_chart())):
        target = Path(folder, f"{name}.html")
        target.write_text(chart.to_html(inline=True), encoding="utf-8")
        written.append(target)
    return written
