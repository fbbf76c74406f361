"""Customer segmentation: scikit-learn pipeline, model selection, naming, MLflow registry,
scoring on Spark."""

from __future__ import annotations

from segmentation.naming import SegmentSummary, describe_segments
from segmentation.registry import SegmentationModel, load_segmentation_model, log_segmentation_run
from segmentation.scoring import SEGMENT_SCHEMA, build_population_filter, score_customers
from segmentation.train import TrainedSegmentation, train_segmentation

__all__ = [
    "SEGMENT_SCHEMA",
    "SegmentSummary",
    "SegmentationModel",
    "TrainedSegmentation",
    "build_population_filter",
    "describe_segments",
    "load_segmentation_model",
    "log_segmentation_run",
    "score_customers",
    "train_segmentation",
]
