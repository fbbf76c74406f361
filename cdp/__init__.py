"""Core of the dealer CDP: typed configuration, Spark session factory, lake helpers, CLI."""

from __future__ import annotations

import os

# scikit-learn's OpenMP threads spin while they wait for work. Beside a Spark JVM, or any
# other busy process on the machine, spinning threads starve each other: a win-back fit took
# 97 s instead of 14 s on a loaded 2-core machine. Sleeping waiters cost nothing when idle.
# Set before the OpenMP runtime loads (scikit-learn is imported later, where it is used);
# an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from cdp.config import AppConfig, ConfigError, FeedConfig, load_config
from cdp.lake import Lake

__all__ = ["AppConfig", "ConfigError", "FeedConfig", "Lake", "load_config"]
