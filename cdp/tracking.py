"""MLflow shared by the model jobs: one tracking store per profile, and the model registry
(versions, aliases, promotion) behind `cdp model`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from cdp.config import AppConfig
from cdp.errors import UsageError

__all__ = [
    "ModelRegistryError",
    "ModelVersionInfo",
    "get_model_version",
    "list_model_versions",
    "promote_model_version",
    "promote_new_version",
    "use_experiment",
]

log = logging.getLogger(__name__)


class ModelRegistryError(UsageError, LookupError):
    """A registered model, version or alias does not exist."""


def pinned(*distributions: str) -> list[str]:
    """`name==version` of each installed distribution: a logged model's pip requirements,
    given rather than inferred (MLflow infers them by importing the model in a subprocess,
    about 4 s per model, and lists whatever the process had loaded, test runners included)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in ("mlflow", *distributions)]


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


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered model version with its aliases and its training run's metrics."""

    name: str
    version: str
    aliases: list[str]
    run_id: str
    created: str
    metrics: dict[str, float]
    tags: dict[str, str]


def _client(config: AppConfig):
    import mlflow

    uri = config.mlflow_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _info(client, version) -> ModelVersionInfo:
    import datetime as dt

    metrics = dict(client.get_run(version.run_id).data.metrics) if version.run_id else {}
    created = dt.datetime.fromtimestamp(version.creation_timestamp / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")
    return ModelVersionInfo(
        version.name, str(version.version), sorted(version.aliases or []), version.run_id or "", created, metrics, dict(version.tags or {})
    )


def list_model_versions(config: AppConfig, name: str) -> list[ModelVersionInfo]:
    """Every version of registered model `name`, newest first."""
    client = _client(config)
    # Searches do not fill in aliases: take them from the registered model.
    versions = [client.get_model_version(name, v.version) for v in client.search_model_versions(f"name = '{name}'")]
    return sorted((_info(client, v) for v in versions), key=lambda v: -int(v.version))


def get_model_version(config: AppConfig, name: str, version: str) -> ModelVersionInfo:
    """One version by number or by alias (e.g. `champion`); ModelRegistryError if absent."""
    from mlflow.exceptions import MlflowException

    client = _client(config)
    try:
        found = client.get_model_version(name, version) if version.isdigit() else client.get_model_version_by_alias(name, version)
    except MlflowException as exc:
        raise ModelRegistryError(f"model {name} has no version or alias {version!r}") from exc
    return _info(client, found)


def promote_model_version(config: AppConfig, name: str, version: str, alias: str = "champion") -> ModelVersionInfo:
    """Move `alias` to `version`: the scoring jobs load `models:/<name>@<alias>`."""
    target = get_model_version(config, name, version)
    _client(config).set_registered_model_alias(name, alias, target.version)
    log.info("model %s: alias %s -> version %s", name, alias, target.version)
    return get_model_version(config, name, target.version)


def promote_new_version(config: AppConfig, name: str, version: str, promote: bool) -> bool:
    """After registering `version`: make it champion when asked or when no champion exists
    yet (the first version of a model). Returns whether it is champion now."""
    try:
        get_model_version(config, name, "champion")
    except ModelRegistryError:
        promote = True
    if promote:
        promote_model_version(config, name, version)
    return promote
