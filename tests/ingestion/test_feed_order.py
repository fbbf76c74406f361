"""Feeds loaded side by side start largest first (no JVM)."""

from __future__ import annotations

from cdp.config import FeedConfig
from cdp.spark import local_bytes
from ingestion.ingest import largest_first


def test_the_feed_with_the_most_bytes_starts_first_and_the_rest_keep_their_order(tmp_path):
    sizes = {"sales_orders": 300, "leads": 200, "service_orders": 2_000, "complaints": 200}
    folders = {}
    for name, size in sizes.items():
        (tmp_path / name / "2026").mkdir(parents=True)
        (tmp_path / name / "2026" / f"{name}.csv").write_bytes(b"x" * size)
        folders[name] = str(tmp_path / name)
    folders["surveys"] = "s3a://exports/surveys"  # size unknown: after those measured
    chosen = [(name, FeedConfig(path=name, format="csv")) for name in [*sizes, "surveys"]]
    order = [name for name, _ in largest_first(chosen, folders)]
    assert order == ["service_orders", "sales_orders", "leads", "complaints", "surveys"]
    assert local_bytes(folders["service_orders"]) == 2_000
    assert local_bytes(str(tmp_path)) == 2_700 and local_bytes(str(tmp_path), above=1_000) is None
    assert local_bytes(str(tmp_path / "missing")) is None and local_bytes("s3a://exports") is None
