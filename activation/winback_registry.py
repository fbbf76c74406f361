"""The win-back model in MLflow: its run (parameters, holdout metrics, deciles and
permutation importance) and its registered versions."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from activation.winback import WINBACK_FEATURES, WinbackModel
from cdp.config import AppConfig
from cdp.tracking import pinned, use_experiment

__all__ = ["EXPERIMENT", "log_winback_run"]

EXPERIMENT = "winback"


def log_winback_run(model: WinbackModel, params: dict[str, object], config: AppConfig, sample: pd.DataFrame) -> tuple[str, str]:
    """Log a trained win-back model with its evaluation to MLflow and register it as a new
    version of `activation.winback.model_name`. Returns (run id, version)."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    use_experiment(config, EXPERIMENT)
    features = list(WINBACK_FEATURES)
    with mlflow.start_run(run_name="winback") as run:
        mlflow.log_params(params)
        mlflow.log_metrics(model.metrics)
        with tempfile.TemporaryDirectory() as tmp:
            model.deciles.to_csv(Path(tmp, "holdout_deciles.csv"), index=False)
            model.importance.to_csv(Path(tmp, "permutation_importance.csv"), index=False)
            mlflow.log_artifacts(tmp, artifact_path="evaluation")
        signature = infer_signature(sample[features], model.classifier.predict_proba(sample[features])[:, 1])
        info = mlflow.sklearn.log_model(
            model.classifier, name="model", signature=signature, registered_model_name=config.activation.winback.model_name,
            metadata={"features": features},
            # The classifier's trees are ours, trained in this run: trusted for skops.
            skops_trusted_types=["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
            pip_requirements=pinned("scikit-learn", "skops", "numpy", "pandas", "scipy"),
        )
    return run.info.run_id, str(info.registered_model_version)
