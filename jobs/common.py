"""Options every job shares: profile, master override and extra Spark settings."""

from __future__ import annotations

import argparse

from cdp.config import AppConfig, load_config
from cdp.logs import configure_logging

__all__ = ["add_common_options", "config_from_args", "spark_overrides"]


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--conf", help="profile YAML (default $CDP_CONF or conf/local.yaml)")
    parser.add_argument("--master", help="Spark master, overriding the profile (e.g. local[2], spark://host:7077)")
    parser.add_argument(
        "--spark-conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark setting; repeatable"
    )
    parser.add_argument("--log-level", default="INFO")


def spark_overrides(args: argparse.Namespace) -> dict[str, str]:
    overrides = {}
    for item in args.spark_conf:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--spark-conf expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def config_from_args(args: argparse.Namespace) -> AppConfig:
    configure_logging(args.log_level)
    return load_config(args.conf)
