"""The whole pipeline in order: ingest, resolve, features, segments.

A segmentation model is trained only when none is champion yet; after that, retraining
and promotion are a model owner's decision (`cdp run train_segments`, `cdp model promote`).

    cdp run pipeline [--as-of DATE] [common options]
"""

from __future__ import annotations

import argparse
import sys

from jobs import features, ingest, resolve, segment, train_segments

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cdp run pipeline", add_help=False)
    parser.add_argument("--as-of", help="features and segments as of this date (default: today)")
    own, rest = parser.parse_known_args(argv)
    dated = [*rest, *(["--as-of", own.as_of] if own.as_of else [])]
    for step in (ingest.main, resolve.main):
        status = step(rest)
        if status:
            return status
    status = features.main(dated)
    if status:
        return status
    from cdp.tracking import ModelRegistryError, get_model_version
    from jobs.common import add_common_options, config_from_args

    common = argparse.ArgumentParser(add_help=False)
    add_common_options(common)
    config = config_from_args(common.parse_known_args(rest)[0])
    try:
        get_model_version(config, config.segmentation.model_name, "champion")
    except ModelRegistryError:
        status = train_segments.main(dated)
        if status:
            return status
    return segment.main(dated)


if __name__ == "__main__":
    sys.exit(main())
