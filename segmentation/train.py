"""Train a segmentation: search models, pick one, name and describe its segments."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from cdp.analytics_config import SegmentationConfig
from segmentation.naming import SegmentSummary, describe_segments
from segmentation.selection import Selection, choose_candidate, evaluate_candidates

__all__ = ["TrainedSegmentation", "train_segmentation"]


@dataclass
class TrainedSegmentation:
    selection: Selection
    summaries: list[SegmentSummary]
    profile: pd.DataFrame
    features: list[str]


def train_segmentation(X: pd.DataFrame, features: list[str], money: list[str], config: SegmentationConfig) -> TrainedSegmentation:
    """`X` holds one row per customer (in a stable order) and the `features` columns, and may
    hold `lifecycle_stage` and `lifetime_spend`: each segment then reports its share of
    dormant or lost owners and its mean value. The same rows and seed give the same model,
    segments and names."""
    outcomes = X.reset_index(drop=True)
    X = outcomes[features].astype("float64")
    selection = choose_candidate(evaluate_candidates(X, features, money, config), config)
    summaries, profile = describe_segments(X, selection.chosen.labels, config.seed)
    labels = selection.chosen.labels
    summaries = [_with_outcomes(s, outcomes[labels == s.segment_id]) for s in summaries]
    return TrainedSegmentation(selection, summaries, profile, features)


def _with_outcomes(summary: SegmentSummary, members: pd.DataFrame) -> SegmentSummary:
    lapsed = float(members["lifecycle_stage"].isin(["dormant", "lost"]).mean()) if "lifecycle_stage" in members else None
    value = float(members["lifetime_spend"].mean()) if "lifetime_spend" in members else None
    return replace(summary, lapsed_share=lapsed, mean_value=value)
