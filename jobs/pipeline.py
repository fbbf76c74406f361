"""The whole pipeline in order: ingest, resolve, features, segments, reminders, audiences,
win-back list.

The segmentation and win-back models are trained only when none is champion yet; after
that, retraining and promotion are a model owner's decision (`cdp run train_segments`,
`cdp run train_winback`, `cdp model promote`).

    cdp run pipeline [--as-of DATE] [common options]
"""

from __future__ import annotations

import argparse
import sys

from jobs import audiences, build_features, ingest, reminders, resolve, segment, train_segments, train_winback, winback

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
    status = build_features.main(dated)
    if status:
        return status
    from cdp.tracking import ModelRegistryError, get_model_version
    from jobs.common import add_common_options, config_from_args

    common = argparse.ArgumentParser(add_help=False)
    add_common_options(common)
    config = config_from_args(common.parse_known_args(rest)[0])

    def champion_exists(name: str) -> bool:
        try:
            get_model_version(config, name, "champion")
        except ModelRegistryError:
            return False
        return True

    if not champion_exists(config.segmentation.model_name):
        status = train_segments.main(dated)
        if status:
            return status
    for step in (segment.main, reminders.main, audiences.main):
        status = step(dated)
        if status:
            return status
    if not champion_exists(config.activation.winback.model_name) and train_winback.main(dated):
        # Too little history for a win-back model is not a reason to fail the other lists.
        print("cdp run pipeline: no win-back model yet, win-back list skipped", file=sys.stderr)
        return 0
    return winback.main(dated)

if __name__ == "__main__":
    sys.exit(main())
