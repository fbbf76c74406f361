"""Log a segmentation training run to MLflow and register its model.

The run holds parameters, metrics per (algorithm, k) with k as the step, the chosen model's
metrics, the segment profile table, two plots and the fitted pipeline with its signature.
The segment names, descriptions and rules travel in the model's metadata, so whoever loads
a version also gets its names. Everything logged is aggregate: no customer row, ID or
personal field is written.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from cdp.tracking import pinned
from segmentation.naming import SegmentSummary
from segmentation.selection import Selection

__all__ = ["SegmentationModel", "load_segmentation_model", "log_segmentation_run"]

log = logging.getLogger(__name__)


class SegmentationModel:
    """A registered version: the fitted pipeline, its features and its segment summaries."""

    def __init__(self, pipeline: Any, features: list[str], segments: list[dict[str, Any]], name: str, version: str) -> None:
        self.pipeline = pipeline
        self.features = features
        self.segments = {int(s["segment_id"]): s for s in segments}
        self.name = name
        self.version = version

    def segment_name(self, segment_id: int) -> str:
        return str(self.segments[segment_id]["name"])


def _plots(profile: pd.DataFrame, summaries: list[SegmentSummary], features: list[str], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {str(s.segment_id): s.name for s in summaries}
    order = [str(s.segment_id) for s in summaries]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(order) + 1.5))
    ax.barh([names[i] for i in order][::-1], [profile.loc[i, "size"] for i in order][::-1], color="#4477aa")
    ax.set_xlabel("customers")
    ax.set_title("Segment sizes")
    fig.tight_layout()
    sizes = folder / "segment_sizes.png"
    fig.savefig(sizes, dpi=110)
    plt.close(fig)

    z = profile.loc[order, [f"z_{f}" for f in features]].astype(float)
    fig, ax = plt.subplots(figsize=(0.55 * len(features) + 3, 0.5 * len(order) + 2.5))
    image = ax.imshow(z.values, cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(len(features)), features, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(order)), [names[i] for i in order], fontsize=8)
    ax.set_title("Feature means against the population (standard deviations)")
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    heatmap = folder / "feature_heatmap.png"
    fig.savefig(heatmap, dpi=110)
    plt.close(fig)
    return [sizes, heatmap]


def log_segmentation_run(
    selection: Selection,
    summaries: list[SegmentSummary],
    profile: pd.DataFrame,
    features: list[str],
    params: dict[str, Any],
    model_name: str,
    schema_sample: pd.DataFrame,
) -> tuple[str, str]:
    """Log into the active experiment and register the chosen pipeline as a new version of
    `model_name`. `schema_sample` gives the signature's column types (its rows are not
    logged). Returns (run id, version)."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    chosen = selection.chosen
    segments = [s.as_dict() for s in summaries]
    with mlflow.start_run(run_name=f"segmentation {chosen.key}") as run:
        mlflow.log_params({**params, "chosen_algorithm": chosen.algorithm, "chosen_k": chosen.k, "selection_reason": selection.reason})
        for candidate in selection.candidates:
            for metric, value in candidate.metrics().items():
                mlflow.log_metric(f"{candidate.algorithm}_{metric}", value, step=candidate.k)
        mlflow.log_metrics({**chosen.metrics(), "k": chosen.k, "segments": len(summaries)})
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            profile.to_csv(folder / "segment_profile.csv", index_label="segment_id")
            (folder / "segments.json").write_text(json.dumps(segments, ensure_ascii=False, indent=1), encoding="utf-8")
            candidates = pd.DataFrame([{"candidate": c.key, "algorithm": c.algorithm, "k": c.k, **c.metrics()} for c in selection.candidates])
            candidates.to_csv(folder / "candidates.csv", index=False)
            for path in (folder / "segment_profile.csv", folder / "segments.json", folder / "candidates.csv"):
                mlflow.log_artifact(str(path), artifact_path="profile")
            for path in _plots(profile, summaries, features, folder):
                mlflow.log_artifact(str(path), artifact_path="plots")
        signature = infer_signature(schema_sample[features], chosen.pipeline.predict(schema_sample[features]))
        info = mlflow.sklearn.log_model(
            chosen.pipeline,
            name="model",
            signature=signature,
            registered_model_name=model_name,
            metadata={"features": features, "segments": segments},
            serialization_format="cloudpickle",
            pip_requirements=pinned("scikit-learn", "cloudpickle", "numpy", "pandas", "scipy"),
        )
    version = str(info.registered_model_version)
    mlflow.MlflowClient().set_model_version_tag(model_name, version, "chosen", chosen.key)
    log.info("registered %s version %s (%s)", model_name, version, chosen.key)
    return run.info.run_id, version


def load_segmentation_model(model_name: str, reference: str) -> SegmentationModel:
    """Load `models:/<model_name>@<alias>` (or a version number) with its metadata."""
    import mlflow
    import mlflow.sklearn

    uri = f"models:/{model_name}/{reference}" if reference.isdigit() else f"models:/{model_name}@{reference}"
    client = mlflow.MlflowClient()
    version = client.get_model_version(model_name, reference) if reference.isdigit() else client.get_model_version_by_alias(model_name, reference)
    metadata = mlflow.models.get_model_info(uri).metadata or {}
    return SegmentationModel(mlflow.sklearn.load_model(uri), list(metadata["features"]), list(metadata["segments"]), model_name, str(version.version))
