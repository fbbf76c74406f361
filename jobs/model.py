"""`cdp model`: registered models for model owners.

    cdp model list [--name NAME]                 versions, aliases and key metrics
    cdp model compare V1 V2 [--name NAME]        every metric of two versions side by side
    cdp model promote V [--name NAME] [--alias champion]
"""

from __future__ import annotations

import argparse
import sys

from cdp.tracking import ModelRegistryError, ModelVersionInfo, get_model_version, list_model_versions, promote_model_version

__all__ = ["main"]

_KEY_METRICS = ("k", "silhouette", "davies_bouldin", "stability", "auc", "lift_top_decile")


def _row(v: ModelVersionInfo) -> str:
    metrics = "  ".join(f"{m} {v.metrics[m]:.3f}" for m in _KEY_METRICS if m in v.metrics)
    aliases = ",".join(v.aliases) or "-"
    return f"{v.version:>7}  {aliases:<12} {v.created:<17} {v.tags.get('chosen', ''):<12} {metrics}"


def main(argv: list[str] | None = None) -> int:
    from jobs.common import config_from_args

    parser = argparse.ArgumentParser(prog="cdp model", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["list", "compare", "promote"])
    parser.add_argument("versions", nargs="*", help="version numbers or aliases")
    parser.add_argument("--name", help="registered model (default: segmentation.model_name)")
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--conf", help="profile YAML")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    config = config_from_args(args)
    name = args.name or config.segmentation.model_name
    expected = {"list": 0, "compare": 2, "promote": 1}[args.action]
    if len(args.versions) != expected:
        print(f"cdp model {args.action}: expects {expected} version(s)", file=sys.stderr)
        return 2
    try:
        if args.action == "list":
            versions = list_model_versions(config, name)
            if not versions:
                print(f"no versions of {name} registered")
                return 1
            print(f"{'version':>7}  {'aliases':<12} {'created (UTC)':<17} {'chosen':<12} metrics")
            for v in versions:
                print(_row(v))
        elif args.action == "compare":
            left, right = (get_model_version(config, name, v) for v in args.versions)
            print(f"{'metric':<28} {'v' + left.version:>12} {'v' + right.version:>12}")
            for metric in sorted(set(left.metrics) | set(right.metrics)):
                cells = [f"{m[metric]:12.4f}" if metric in m else f"{'-':>12}" for m in (left.metrics, right.metrics)]
                print(f"{metric:<28} {cells[0]} {cells[1]}")
        else:
            promoted = promote_model_version(config, name, args.versions[0], args.alias)
            print(f"{name} version {promoted.version} is now {args.alias}")
    except ModelRegistryError as exc:
        print(f"cdp model: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
