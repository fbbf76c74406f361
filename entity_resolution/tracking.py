"""What an identity-resolution run records in MLflow: settings, counts, quality, model, charts.

The model's parameters (m and u probabilities, SQL of its comparisons), aggregate counts and
charts: the model's own (match weights, m and u) hold no record values; the sample pairs' and
clusters' (`entity_resolution.sample_charts`) hold masked values only.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from cdp.config import ResolutionConfig
from entity_resolution.charts import save_match_weights_png, save_model_charts_html

__all__ = ["EXPERIMENT", "log_resolution_run"]

log = logging.getLogger(__name__)

EXPERIMENT = "identity_resolution"


def _settings_params(config: ResolutionConfig, engine: str, mode: str) -> dict[str, Any]:
    model = config.model
    return {
        "mode": mode,
        "engine": engine,
        "match_threshold": config.match_threshold,
        "prediction_threshold": config.prediction_threshold,
        "review_band": list(config.review_band),
        "prediction_blocking": [" & ".join(r) for r in model.prediction_blocking],
        "training_blocking": [" & ".join(r) for r in model.training_blocking],
        "deterministic_rules": [" & ".join(r) for r in model.deterministic_rules],
        "deterministic_recall": model.deterministic_recall,
        "name_similarity": list(model.name_similarity),
        "term_frequency": model.term_frequency,
        "max_pairs_for_u": model.max_pairs_for_u,
        "seed": config.seed,
    }


def _sample_charts(lake_root: str, model: dict[str, Any], threshold: float, folder: str) -> list[Path]:
    """The sample pairs' and clusters' charts; a lake the JVM-free reader cannot open (or any
    other failure of these optional charts) is logged and leaves the run's other records."""
    from cdp.reader import LakeReader
    from entity_resolution.sample_charts import save_sample_charts

    try:
        return save_sample_charts(LakeReader(lake_root), model, threshold, folder)
    except Exception as exc:  # noqa: BLE001 - the charts are an aid; the run's tables are written
        # Only the error's class: its message could quote a record's values.
        log.warning("sample pair and cluster charts not drawn (%s)", type(exc).__name__)
        return []


def log_resolution_run(
    config: ResolutionConfig,
    *,
    engine: str,
    mode: str,
    metrics: dict[str, float],
    model: dict[str, Any],
    register_as: str | None = None,
    lake_root: str | None = None,
) -> tuple[str, str | None]:
    """Log one run into the current experiment; with `register_as`, its model is registered as
    a new version of that name. With `lake_root` (a full run, its gold tables written), Splink's
    waterfall and cluster studio of a sample of its customers, masked, go with the charts.
    Returns (run id, registered version or None)."""
    import mlflow

    with mlflow.start_run(run_name=f"resolve-{mode}") as run:
        mlflow.set_tags({"job": "resolve", "mode": mode, "engine": engine})
        mlflow.log_params({k: json.dumps(v) if isinstance(v, list) else v for k, v in _settings_params(config, engine, mode).items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.log_dict(model, "model/splink_model.json")
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.log_artifact(str(save_match_weights_png(model, Path(tmp, "match_weights.png"))), "charts")
            charts = save_model_charts_html(model, tmp)
            if lake_root:
                charts += _sample_charts(lake_root, model, config.match_threshold, tmp)
            for chart in charts:
                mlflow.log_artifact(str(chart), "charts")
        version = None
        if register_as:
            from entity_resolution.registry import log_linkage_model

            version = log_linkage_model(model, register_as, {"match_threshold": config.match_threshold, "mode": mode, "engine": engine})
        log.info("MLflow run %s logged%s", run.info.run_id, f", model {register_as} version {version}" if version else "")
        return run.info.run_id, version
