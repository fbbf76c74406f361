"""Customer features per as-of date: catalogue, point-in-time families, lifecycle stage."""

from __future__ import annotations

from features.build import FEATURE_TABLE_COLUMNS, build_customer_features
from features.catalog import FEATURES, Feature, feature_names, segmentation_features
from features.sources import FeatureSources

__all__ = [
    "FEATURES",
    "FEATURE_TABLE_COLUMNS",
    "Feature",
    "FeatureSources",
    "build_customer_features",
    "feature_names",
    "segmentation_features",
]
