"""MLflow set-up shared by the model-training jobs: one tracking store per profile."""

from __future__ import annotations

import logging
from pathlib import Path

from cdp.config import AppConfig

__all__ = ["use_experiment"]

log = logging.getLogger(__name__)


def use_experiment(config: AppConfig, name: str) -> str:
    """Point MLflow at the profile's store and select experiment `name` (created with its
    artifacts under `mlflow.artifact_root` on first use). Returns the experiment id."""
    import mlflow

    uri = config.mlflow_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        root = config.resolve(config.mlflow.artifact_root)
        location = root if "://" in root else Path(root, name).resolve().as_uri()
        experiment_id = mlflow.create_experiment(name, artifact_location=location)
        log.info("created MLflow experiment %s", name)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id
