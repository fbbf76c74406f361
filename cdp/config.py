"""Strict, typed configuration loaded from YAML in `conf/`.

A profile (`conf/local.yaml`, `conf/cluster.yaml`) sets Spark and lake locations and points
to a feeds file (`conf/feeds.yaml`) that maps each dealer feed onto the canonical contract.
Every model forbids unknown keys, so a typo is an error that names the file and the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "AppConfig",
    "ConfigError",
    "FeedConfig",
    "FEED_NAMES",
    "LakeConfig",
    "ResolutionConfig",
    "SparkConfig",
    "load_config",
]

FEED_NAMES = (
    "sales_orders",
    "leads",
    "service_orders",
    "warranty_claims",
    "complaints",
    "surveys",
    "contact_preferences",
)

DEFAULT_PROFILE = "conf/local.yaml"


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SparkConfig(_Strict):
    """How the SparkSession is built. `master: null` leaves the master to spark-submit."""

    master: str | None = "local[*]"
    app_name: str = "dealer-cdp"
    driver_memory: str | None = "4g"
    jars_dir: str | None = "jars"
    settings: dict[str, str] = Field(default_factory=dict)

    @field_validator("settings", mode="before")
    @classmethod
    def _stringify(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value


class LakeConfig(_Strict):
    """Where the Delta tables, validation results and ops tables live."""

    root: str = "lake"
    raw_root: str = "data/raw"


class CsvOptions(_Strict):
    delimiter: str = ","
    encoding: str = "utf-8"

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError("delimiter must be a single character")
        return value


class FeedConfig(_Strict):
    """One dealer feed: where its files are and how its columns map onto the contract."""

    path: str
    format: Literal["csv", "jsonl", "parquet"]
    rename: dict[str, str] = Field(default_factory=dict, description="vendor column -> canonical column")
    date_formats: dict[str, list[str]] = Field(
        default_factory=dict, description="canonical column -> Spark datetime patterns, tried in order"
    )
    default_date_formats: list[str] = Field(
        default_factory=lambda: ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd"]
    )
    max_bad_row_fraction: float = Field(default=0.05, ge=0.0, le=1.0)
    csv: CsvOptions = Field(default_factory=CsvOptions)


class IngestConfig(_Strict):
    feeds: dict[str, FeedConfig]

    @field_validator("feeds")
    @classmethod
    def _known_feeds(cls, feeds: dict[str, FeedConfig]) -> dict[str, FeedConfig]:
        unknown = sorted(set(feeds) - set(FEED_NAMES))
        if unknown:
            raise ValueError(f"unknown feed(s) {unknown}; known feeds are {list(FEED_NAMES)}")
        return feeds


class ResolutionConfig(_Strict):
    """Identity resolution: linkage engine and decision thresholds."""

    engine: Literal["auto", "duckdb", "spark"] = Field(
        default="auto", description="auto: DuckDB on a local master up to duckdb_max_mentions, else Spark"
    )
    duckdb_max_mentions: int = Field(default=20_000_000, gt=0)
    duckdb_memory_limit: str = Field(default="6GB", description="DuckDB spills to the work folder beyond this")
    match_threshold: float = Field(default=0.95, gt=0.0, lt=1.0)
    prediction_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    seed: int = 42


class AppConfig(_Strict):
    """The validated configuration of one environment profile."""

    spark: SparkConfig = Field(default_factory=SparkConfig)
    lake: LakeConfig = Field(default_factory=LakeConfig)
    resolution: ResolutionConfig = Field(default_factory=ResolutionConfig)
    feeds_file: str = "feeds.yaml"
    ingest: IngestConfig
    project_root: str = Field(default=".", description="set by the loader; relative paths resolve here")

    def resolve(self, path: str) -> str:
        """Resolve a configured path: URIs and absolute paths as given, others under the project root."""
        if "://" in path or os.path.isabs(path):
            return path
        return str(Path(self.project_root, path))


def _read_yaml(path: Path) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(loaded).__name__}")
    return loaded


def _format_errors(path: Path, exc: ValidationError, prefix: tuple[str, ...] = ()) -> ConfigError:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in (*prefix, *err["loc"]))
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{path}: {key}: {message}")
    return ConfigError("\n".join(lines))


def load_config(profile: str | os.PathLike[str] | None = None) -> AppConfig:
    """Load and validate a profile and the feeds file it names.

    The profile defaults to `$CDP_CONF`, else `conf/local.yaml` under the current directory.
    Relative paths in the config resolve against the project root (the profile's parent's parent).
    """
    profile_path = Path(profile or os.environ.get("CDP_CONF") or DEFAULT_PROFILE).resolve()
    raw = _read_yaml(profile_path)
    feeds_name = raw.get("feeds_file", "feeds.yaml")
    if not isinstance(feeds_name, str):
        raise ConfigError(f"{profile_path}: feeds_file: must be a string")
    feeds_path = (profile_path.parent / feeds_name).resolve()
    feeds_raw = _read_yaml(feeds_path)
    try:
        ingest = IngestConfig.model_validate(feeds_raw)
    except ValidationError as exc:
        raise _format_errors(feeds_path, exc) from exc
    if "ingest" in raw or "project_root" in raw:
        raise ConfigError(f"{profile_path}: ingest/project_root: set by the loader, not in a profile")
    try:
        return AppConfig.model_validate(
            {**raw, "ingest": ingest, "project_root": str(profile_path.parent.parent)}
        )
    except ValidationError as exc:
        raise _format_errors(profile_path, exc) from exc
