"""`cdp segments`: what the segments are, for marketers.

    cdp segments list [--as-of DATE]
    cdp segments show NAME [--as-of DATE] [--chart PATH.png|PATH.html]
"""

from __future__ import annotations

import argparse
import sys

from pyspark.sql import functions as F

from cdp.lake import Lake, read_table, table_exists
from features.catalog import segmentation_features

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from cdp.spark import build_spark_session
    from cdp.tracking import use_experiment
    from jobs.common import add_common_options, config_from_args, spark_overrides
    from segmentation import load_segmentation_model
    from segmentation.views import build_segment_view, segment_sizes, write_segment_chart

    parser = argparse.ArgumentParser(prog="cdp segments", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["list", "show"])
    parser.add_argument("name", nargs="?", help="segment name (show)")
    parser.add_argument("--as-of", help="YYYY-MM-DD (default: the latest scored)")
    parser.add_argument("--chart", help="also write a chart: .png or .html")
    add_common_options(parser)
    args = parser.parse_args(argv)
    if args.action == "show" and not args.name:
        print("cdp segments show: give a segment name", file=sys.stderr)
        return 2
    config = config_from_args(args)
    spark = build_spark_session(config, master=args.master, overrides=spark_overrides(args))
    lake = Lake(config.resolve(config.lake.root))
    path = lake.table("gold", "customer_segments")
    if not table_exists(spark, path):
        print("cdp segments: no segments yet; run `cdp run segment`", file=sys.stderr)
        return 2
    segments = read_table(spark, path)
    as_of = args.as_of or segments.agg(F.max("as_of_date")).first()[0]
    segments = segments.filter(F.col("as_of_date") == F.lit(str(as_of)).cast("date"))
    if args.action == "list":
        first = segments.select("model_name", "model_version").first()
        if first is None:
            print(f"cdp segments: nothing scored as of {as_of}", file=sys.stderr)
            return 2
        use_experiment(config, "segmentation")
        model = load_segmentation_model(first["model_name"], first["model_version"])
        traits = {s["name"]: s for s in model.segments.values()}
        print(f"as of {as_of}, {first['model_name']} version {first['model_version']}")
        print(f"{'segment':<28} {'customers':>9} {'share':>6}  key traits / what defines it")
        for name, n, share in segment_sizes(segments):
            info = traits.get(name, {})
            print(f"{name:<28} {n:>9} {share:6.1%}  {', '.join(info.get('traits', [])) or '-'}")
            if info.get("rule"):
                print(f"{'':<46}{info['rule']}")
        return 0
    features = read_table(spark, lake.table("gold", "customer_features")).filter(F.col("as_of_date") == F.lit(str(as_of)).cast("date"))
    numeric, _ = segmentation_features()
    try:
        view = build_segment_view(segments, features, args.name, numeric)
    except KeyError:
        names = ", ".join(n for n, _, _ in segment_sizes(segments))
        print(f"cdp segments: no segment {args.name!r} as of {as_of}; segments are: {names}", file=sys.stderr)
        return 2
    print(f"{view.name}: {view.size} customers ({view.share:.1%}) as of {as_of}")
    print(f"{'feature':<32} {'segment':>12} {'all':>12} {'ratio':>7}")
    for feature, mine, everyone in view.profile:
        ratio = f"{mine / everyone:7.2f}" if mine is not None and everyone else f"{'-':>7}"
        fmt = lambda v: f"{v:12,.1f}" if v is not None else f"{'-':>12}"  # noqa: E731
        print(f"{feature:<32} {fmt(mine)} {fmt(everyone)} {ratio}")
    print("top cities:  " + ", ".join(f"{c} {n}" for c, n in view.top_cities))
    print("top models:  " + ", ".join(f"{m} {n}" for m, n in view.top_models))
    print("lifecycle:   " + ", ".join(f"{s} {share:.0%}" for s, share in view.lifecycle))
    if args.chart:
        print(f"chart written to {write_segment_chart(view, args.chart)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
