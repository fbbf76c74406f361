"""Core of the dealer CDP: typed configuration, Spark session factory, lake helpers, CLI."""

from __future__ import annotations

from cdp.config import AppConfig, ConfigError, FeedConfig, load_config
from cdp.lake import Lake

__all__ = ["AppConfig", "ConfigError", "FeedConfig", "Lake", "load_config"]
