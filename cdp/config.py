"""Strict, typed configuration loaded from YAML in `conf/`.

A profile (`conf/local.yaml`, `conf/cluster.yaml`) sets Spark and lake locations and points
to a feeds file (`conf/feeds.yaml`) that maps each dealer feed onto the canonical contract.
Every model forbids unknown keys, so a typo is an error that names the file and the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from cdp.activation_config import ActivationConfig
from cdp.analytics_config import FeaturesConfig, SegmentationConfig, StrictModel
from cdp.errors import ConfigurationError
from cdp.operations_config import OperationsConfig

__all__ = [
    "ActivationConfig",
    "AppConfig",
    "ConfigError",
    "FeaturesConfig",
    "FeedConfig",
    "FEED_NAMES",
    "LakeConfig",
    "LinkageModelConfig",
    "MlflowConfig",
    "PipelineConfig",
    "ResolutionConfig",
    "SegmentationConfig",
    "SURVIVING_ATTRIBUTES",
    "SURVIVORSHIP_RULES",
    "SparkConfig",
    "WebConfig",
    "load_config",
    "load_yaml_model",
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


class ConfigError(ConfigurationError, ValueError):
    """A configuration file is missing, unreadable or invalid."""


_Strict = StrictModel
_M = TypeVar("_M", bound=BaseModel)


class SparkConfig(_Strict):
    """How the SparkSession is built. `master: null` leaves the master to spark-submit."""

    master: str | None = "local[*]"
    app_name: str = "dealer-cdp"
    driver_memory: str | None = "4g"
    jars_dir: str | None = "jars"
    settings: dict[str, str] = Field(default_factory=dict)
    small_data_settings: dict[str, str] = Field(
        default_factory=dict, description="applied over `settings` when the feed files on the local disk add up to `small_data_max_bytes` or less"
    )
    small_data_max_bytes: int = Field(default=32 * 2**20, ge=0)
    small_batch_max_bytes: int = Field(
        default=2**20, ge=0,
        description="a feed's new files adding up to this or less load without generated code (cdp.spark.interpreted_session)",
    )

    @field_validator("settings", "small_data_settings", mode="before")
    @classmethod
    def _stringify(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value


class LakeConfig(_Strict):
    """Where the Delta tables, validation results and ops tables live."""

    root: str = "lake"
    raw_root: str = "data/raw"


# Encodings dealer systems export in: UTF-8 (a byte-order mark is dropped), GBK and its
# superset GB18030.
CSV_ENCODINGS = ("utf-8", "gbk", "gb18030")


class CsvOptions(_Strict):
    delimiter: str = ","
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        name = value.strip().lower().replace("_", "-")
        name = {"utf8": "utf-8", "utf-8-sig": "utf-8", "gb2312": "gbk", "cp936": "gbk"}.get(name, name)
        if name not in CSV_ENCODINGS:
            raise ValueError(f"unknown encoding {value!r}; one of {list(CSV_ENCODINGS)}")
        return name

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError("delimiter must be a single character")
        return value


class FeedConfig(_Strict):
    """One dealer feed: where its files are and how its columns map onto the contract."""

    path: str
    format: Literal["csv", "jsonl", "parquet", "xlsx"]
    rename: dict[str, str] = Field(default_factory=dict, description="vendor column -> canonical column")
    date_formats: dict[str, list[str]] = Field(
        default_factory=dict, description="canonical column -> Spark datetime patterns, tried in order"
    )
    default_date_formats: list[str] = Field(
        default_factory=lambda: ["yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd"]
    )
    max_bad_row_fraction: float = Field(default=0.05, ge=0.0, le=1.0)
    csv: CsvOptions = Field(default_factory=CsvOptions)
    split_bytes: int = Field(
        default=128 * 2**20, ge=1024,
        description="a CSV or JSON Lines file larger than this is read as ranges of this many bytes, one task each (ingestion/splits.py)",
    )
    optional_columns: list[str] = Field(
        default_factory=list, description="contract columns a file may lack even though earlier files of the feed had them"
    )


class IngestConfig(_Strict):
    feeds: dict[str, FeedConfig]
    parallel_feeds: int = Field(
        default=2, ge=1, le=16,
        description="feeds loaded at once (threads sharing the Spark application): each feed's many small jobs leave cores idle",
    )

    @field_validator("feeds")
    @classmethod
    def _known_feeds(cls, feeds: dict[str, FeedConfig]) -> dict[str, FeedConfig]:
        unknown = sorted(set(feeds) - set(FEED_NAMES))
        if unknown:
            raise ValueError(f"unknown feed(s) {unknown}; known feeds are {list(FEED_NAMES)}")
        if not feeds:
            raise ValueError(f"no feed configured: list at least one of {list(FEED_NAMES)}")
        from cdp.contract import CONTRACTS

        for name, feed in feeds.items():
            stray = sorted(set(feed.optional_columns) - set(CONTRACTS[name].columns))
            if stray:
                raise ValueError(f"{name}.optional_columns: {stray} not in the {name} contract")
            required = sorted(set(feed.optional_columns) & set(CONTRACTS[name].required))
            if required:
                raise ValueError(f"{name}.optional_columns: {required} are required by the contract")
        return feeds


SURVIVORSHIP_RULES = ("valid_first", "source_priority", "most_frequent", "most_recent")
SURVIVING_ATTRIBUTES = (
    "name", "gender", "birth_date", "id_number", "mobile", "email", "address", "province", "city", "customer_type",
)
DEFAULT_SURVIVORSHIP = {
    # A name as typed at the showroom (with an ID check) beats a call-centre spelling.
    "name": ["source_priority", "most_frequent", "most_recent"],
    "gender": ["source_priority", "most_frequent", "most_recent"],
    "birth_date": ["source_priority", "most_frequent", "most_recent"],
    # An ID whose check digit holds beats a mistyped one, whatever its source.
    "id_number": ["valid_first", "most_frequent", "most_recent"],
    # People change numbers: the one used last is the one to call.
    "mobile": ["most_recent", "most_frequent"],
    "email": ["most_recent"],
    "address": ["most_recent"],
    "province": ["most_recent"],
    "city": ["most_recent"],
    "customer_type": ["source_priority", "most_frequent"],
}


class LinkageModelConfig(_Strict):
    """The Splink model: blocking rules, comparison thresholds, term frequencies, training."""

    prediction_blocking: list[list[str]] = Field(
        # A one-digit typo in a mobile leaves either its first seven digits or its last four
        # intact: the same full name with either brings such records together across dealers.
        default_factory=lambda: [
            ["mobile"], ["id_number"], ["vin"], ["name_key", "dealer_code"], ["email"],
            ["name_key", "substr(mobile, 1, 7)"], ["name_key", "substr(mobile, 8, 4)"],
            # A record and the one it names (a sale and its lead), whatever their names and mobiles.
            ["coalesce(refers_to, mention_id)"],
        ],
        description="each rule compares records equal on all its columns (or SQL expressions of them)",
    )
    training_blocking: list[list[str]] = Field(
        # Between them the two sessions estimate every comparison (each the other's column).
        # Name and dealer would add 50 million pairs at 100,000 customers for no new estimate.
        default_factory=lambda: [["mobile"], ["vin"]],
        description="one EM session per rule; its columns are not estimated in that session",
    )
    deterministic_rules: list[list[str]] = Field(
        default_factory=lambda: [["mobile", "name_key"], ["id_number"]],
        description="rules that almost surely mean one person, for the prior match probability",
    )
    deterministic_recall: float = Field(default=0.6, gt=0.0, le=1.0)
    name_similarity: tuple[float, float] = (0.92, 0.80)
    different_name_m_probability: float | None = Field(
        default=1e-5, gt=0.0, lt=1.0,
        description=(
            "share of one person's records under an unrelated name, fixed rather than learnt: EM takes family members "
            "who share a phone and a car for one person and learns it far too high (null: learn it)"
        ),
    )
    term_frequency: list[str] = Field(
        default_factory=lambda: ["name_simplified", "name_key", "mobile", "vin"],
        description="columns whose common values (王伟, a dealer's shared number) weigh less",
    )
    max_pairs_for_u: float = Field(default=2e6, gt=0)
    max_pairs_for_em: float | None = Field(
        # At 1,000,000 customers the VIN session alone had 196 million pairs (a car's repair
        # orders over the years, owner and contact on each): its comparison vectors spilled
        # 57 GB to DuckDB's temporary folder in 8 minutes and the disk all but filled. They
        # are no longer stored (`model.StreamingDuckDBAPI`); the limit bounds the session's time.
        default=5e7, gt=0,
        description=(
            "an EM session whose rule makes more pairs than this trains on whole blocks chosen by a hash of their key, "
            "about this many pairs (null: every pair)"
        ),
    )
    max_block_records: int | None = Field(
        # Pairs grow with the square of a block. At 300,000 customers (27 dealers) name and
        # dealer alone made 346 million pairs, against 52 million at 100,000, and the linkage
        # filled the disk with DuckDB's spill; capped at 300 they are 147 million.
        default=300, ge=2,
        description=(
            "a prediction rule's block (the records equal on all its columns) of more records than this is left out of that "
            "rule, its records still compared through the other rules: a common name at a large dealer, a dealer's shared "
            "phone (null: no limit)"
        ),
    )


class ResolutionConfig(_Strict):
    """Identity resolution: linkage engine, model, decision thresholds, survivorship."""

    engine: Literal["auto", "duckdb", "spark"] = Field(
        default="auto", description="auto: DuckDB on a local master up to duckdb_max_mentions, else Spark"
    )
    duckdb_max_mentions: int = Field(default=20_000_000, gt=0)
    duckdb_memory_limit: str = Field(default="3GB", description="DuckDB spills to the work folder beyond this")
    duckdb_settle_memory_limit: str = Field(
        default="1GB",
        description="DuckDB's budget once the linkage is done (settling the clusters, the IDs, the golden phase's links), "
        "when the JVM holds most: the two add up",
    )
    match_threshold: float = Field(default=0.95, gt=0.0, lt=1.0)
    prediction_threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    predict_chunk_mentions: int | None = Field(
        # At 1,000,000 customers (19.6 million mentions) the blocked pairs of one pass spilled
        # 58 GB to DuckDB's temporary folder, still growing when the disk was all but full.
        default=6_000_000, gt=0,
        description="a full prediction over more mentions scores their pairs in n x n chunks, n = mentions / this "
        "(Splink's num_chunks_left and num_chunks_right); "
        "null: all at once",
    )
    review_band: tuple[float, float] = Field(
        default=(0.8, 0.99),
        description="[low, high) around match_threshold: near misses below it and weak joins above it go to review",
    )
    overrides_file: str = Field(default="resolution_overrides.yaml", description="must-link / cannot-link, beside the profile")
    keep_conflicts_apart: bool = Field(
        default=True,
        description="never one customer for two different valid ID numbers or two clearly different Chinese names (entity_resolution.conflicts)",
    )
    source_priority: list[str] = Field(
        default_factory=lambda: ["sales_orders", "warranty_claims", "service_orders", "surveys", "complaints", "leads"]
    )
    survivorship: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_SURVIVORSHIP))
    model: LinkageModelConfig = Field(default_factory=LinkageModelConfig)
    model_name: str = Field(default="customer_resolution", description="registered model of the linkage model (MLflow)")
    seed: int = 42

    @field_validator("review_band")
    @classmethod
    def _ordered_band(cls, band: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 <= band[0] < band[1] <= 1.0:
            raise ValueError("review_band must be [low, high] with 0 <= low < high <= 1")
        return band

    @model_validator(mode="after")
    def _band_around_threshold(self) -> ResolutionConfig:
        low, high = self.review_band
        if not low <= self.match_threshold <= high:
            raise ValueError(f"review_band {list(self.review_band)} must contain match_threshold {self.match_threshold}")
        if self.prediction_threshold > low:
            raise ValueError("prediction_threshold must not exceed review_band's low end (those pairs are not kept)")
        return self

    @field_validator("source_priority")
    @classmethod
    def _known_sources(cls, sources: list[str]) -> list[str]:
        unknown = sorted(set(sources) - set(FEED_NAMES))
        if unknown:
            raise ValueError(f"unknown feed(s) {unknown}")
        return sources

    @field_validator("survivorship")
    @classmethod
    def _known_rules(cls, rules: dict[str, list[str]]) -> dict[str, list[str]]:
        unknown = sorted(set(rules) - set(SURVIVING_ATTRIBUTES))
        if unknown:
            raise ValueError(f"unknown attribute(s) {unknown}; attributes are {list(SURVIVING_ATTRIBUTES)}")
        for attribute, chain in rules.items():
            bad = [r for r in chain if r not in SURVIVORSHIP_RULES]
            if bad or not chain:
                raise ValueError(f"{attribute}: rules must be a non-empty list of {list(SURVIVORSHIP_RULES)}, got {chain}")
        return {**DEFAULT_SURVIVORSHIP, **rules}


class WebConfig(_Strict):
    """`cdp serve`: where the web app listens and who may sign in."""

    host: str = Field(default="127.0.0.1", description="address to listen on; loopback by default")
    port: int = Field(default=8080, ge=1, le=65535)
    users_file: str = Field(default="web_users.yaml", description="users, roles and argon2 password hashes, beside the profile")
    secure_cookies: bool | None = Field(default=None, description="Secure session cookie; default: on unless the host is loopback")
    session_minutes: int = Field(default=480, gt=0, description="a signed-in session expires after this")
    language: Literal["zh", "en"] = Field(default="zh", description="the UI's default language; users switch per session")


class MlflowConfig(_Strict):
    """Where runs and registered models are tracked. A plain path means a SQLite file."""

    tracking_uri: str = "mlflow.db"
    artifact_root: str = "mlruns"


class PipelineConfig(_Strict):
    parallel_steps: int = Field(
        default=1, ge=1, le=16,
        description="pipeline steps run at once when neither reads or writes a table the other writes (threads sharing the Spark application)",
    )
    small_data_parallel_steps: int | None = Field(
        default=None, ge=1, le=16,
        description="parallel_steps for a small local lake (spark.small_data_max_bytes); unset: parallel_steps",
    )


class AppConfig(_Strict):
    """The validated configuration of one environment profile."""

    spark: SparkConfig = Field(default_factory=SparkConfig)
    lake: LakeConfig = Field(default_factory=LakeConfig)
    resolution: ResolutionConfig = Field(default_factory=ResolutionConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    segmentation: SegmentationConfig = Field(default_factory=SegmentationConfig)
    activation: ActivationConfig = Field(default_factory=ActivationConfig)
    operations: OperationsConfig = Field(default_factory=OperationsConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    feeds_file: str = "feeds.yaml"
    ingest: IngestConfig
    project_root: str = Field(default=".", description="set by the loader; relative paths resolve here")
    conf_dir: str = Field(default="conf", description="set by the loader: the profile's folder")

    def resolve(self, path: str) -> str:
        """Resolve a configured path: URIs and absolute paths as given, others under the project root."""
        if "://" in path or os.path.isabs(path):
            return path
        return str(Path(self.project_root, path))

    def conf_path(self, name: str) -> str:
        """A file named in the profile, beside the profile unless absolute."""
        return name if os.path.isabs(name) else str(Path(self.conf_dir, name))

    def mlflow_tracking_uri(self) -> str:
        uri = self.mlflow.tracking_uri
        return uri if "://" in uri or uri.startswith("databricks") else f"sqlite:///{self.resolve(uri)}"


def _read_yaml(path: Path) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save the file as UTF-8") from exc
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


def load_yaml_model(path: str | os.PathLike[str], model: type[_M]) -> _M:
    """Read a YAML file into a strict config model; errors name the file and the dotted key."""
    path = Path(path)
    try:
        return model.model_validate(_read_yaml(path))
    except ValidationError as exc:
        raise _format_errors(path, exc) from exc


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
    if {"ingest", "project_root", "conf_dir"} & set(raw):
        raise ConfigError(f"{profile_path}: ingest/project_root/conf_dir: set by the loader, not in a profile")
    try:
        return AppConfig.model_validate(
            {**raw, "ingest": ingest, "project_root": str(profile_path.parent.parent), "conf_dir": str(profile_path.parent)}
        )
    except ValidationError as exc:
        raise _format_errors(profile_path, exc) from exc
