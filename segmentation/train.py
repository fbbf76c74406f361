"""Train a segmentation: search models, pick one, name and describe its segments."""

from __future__ import annotations

from dataclasses import dataclass

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
    """`X` holds one row per customer (in a stable order) and the `features` columns.
    The same rows and seed give the same model, segments and names."""
    X = X[features].astype("float64").reset_index(drop=True)
    selection = choose_candidate(evaluate_candidates(X, features, money, config), config)
    summaries, profile = describe_segments(X, selection.chosen.labels, config.seed)
    return TrainedSegmentation(selection, summaries, profile, features)
