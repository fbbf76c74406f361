"""The linkage model in the MLflow model registry: each full resolution registers its trained
Splink model as a new version (a pyfunc that scores records with it on DuckDB), and the
version the lake's customers were built with carries the `champion` alias."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from cdp.tracking import pinned

__all__ = ["LinkageModel", "champion_model", "log_linkage_model"]


class LinkageModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """Scores pairs of records with a saved Splink model: the input holds the records (the
    person-mention columns the model compares, with `mention_id`); the output holds every
    pair Splink's blocking rules bring together, with its match probability and weight."""

    def load_context(self, context: Any) -> None:
        self.settings = json.loads(Path(context.artifacts["splink_model"]).read_text(encoding="utf-8"))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from splink import DuckDBAPI, Linker

        from entity_resolution.model import in_dialect

        threshold = float((params or {}).get("threshold_match_probability", 0.0))
        linker = Linker(DuckDBAPI().register(model_input), in_dialect(self.settings, "duckdb"))
        pairs = linker.inference.predict(threshold_match_probability=threshold).as_pandas_dataframe()
        return pairs[["mention_id_l", "mention_id_r", "match_probability", "match_weight"]]


def log_linkage_model(model: dict[str, Any], name: str, metadata: dict[str, Any]) -> str:
    """Log the model in the active run as a pyfunc registered under `name`; returns its version."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "splink_model.json")
        path.write_text(json.dumps(model), encoding="utf-8")
        info = mlflow.pyfunc.log_model(
            name="linkage_model", python_model=LinkageModel(), artifacts={"splink_model": str(path)},
            pip_requirements=pinned("splink", "duckdb", "pandas"),
            registered_model_name=name, metadata=metadata,
        )
    return str(info.registered_model_version)


def champion_model(config: Any) -> tuple[str, dict[str, Any]] | None:
    """(version, Splink model JSON) of the registered linkage model's champion, or None when
    no version has been registered yet."""
    import tempfile

    import mlflow

    from cdp.tracking import ModelRegistryError, get_model_version

    name = config.resolution.model_name
    try:
        champion = get_model_version(config, name, "champion")
    except ModelRegistryError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{champion.version}", dst_path=tmp))
        found = sorted(local.rglob("splink_model.json"))
        if not found:
            raise ModelRegistryError(f"model {name} version {champion.version} holds no splink_model.json")
        return champion.version, json.loads(found[0].read_text(encoding="utf-8"))
