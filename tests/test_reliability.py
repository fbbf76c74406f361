"""Reliability: a job killed before any of its commits and run again leaves the lake as one
clean run does; a replayed batch writes no new Delta version. A small seeded sample runs
here; `python -m bench.reliability` runs the full counts with real kill -9."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from cdp import faults
from cdp.config import FeedConfig, IngestConfig, LakeConfig
from cdp.lake import Lake
from cdp.reliability import delta_versions, lake_fingerprint
from ingestion import ingest_feeds

pytestmark = [pytest.mark.spark, pytest.mark.reliability]

SEED = 20261201
PREFS = "mobile,id_number,channel,opt_in,updated_at\n" + "".join(
    f"1380013{i:04d},,{'sms' if i % 2 else 'phone'},{'true' if i % 3 else 'false'},2025-01-{1 + i % 28:02d} 08:00:00\n" for i in range(30)
) + "bad-row,,fax,maybe,2025-13-01\n"
PREFS_LATER = "mobile,id_number,channel,opt_in,updated_at\n" + "".join(
    f"1380013{i:04d},,email,false,2025-03-{1 + i % 28:02d} 08:00:00\n" for i in range(10)
)


@pytest.fixture
def feeds(app_config, tmp_path):
    raw = tmp_path / "raw"
    # Two files of one feed: two batches' worth of commits is enough to kill in between.
    for name, text in (("p1.csv", PREFS), ("p2.csv", PREFS_LATER)):
        (raw / "prefs").mkdir(parents=True, exist_ok=True)
        (raw / "prefs" / name).write_text(text, encoding="utf-8")
    ingest = IngestConfig(feeds={"contact_preferences": FeedConfig(path="prefs", format="csv", max_bad_row_fraction=0.2)})

    def config(lake: str):
        return app_config.model_copy(update={"lake": LakeConfig(root=str(tmp_path / lake), raw_root=str(raw)), "ingest": ingest})

    return config


def test_ingest_killed_before_any_commit_then_rerun_equals_a_clean_run(spark, feeds):
    clean = feeds("clean")
    with faults.counting_commits() as counted:
        ingest_feeds(spark, clean, Lake(clean.lake.root))
    expected = lake_fingerprint(clean.lake.root)
    assert counted.seen >= 5 and expected["silver/contact_preferences"]["rows"] == 40
    points = sorted(random.Random(SEED).sample(range(1, counted.seen + 1), 3))
    for point in points:
        config = feeds(f"crash_{point}")
        with pytest.raises(faults.InjectedCrash), faults.crash_before_commit(point):
            ingest_feeds(spark, config, Lake(config.lake.root))
        ingest_feeds(spark, config, Lake(config.lake.root))
        assert lake_fingerprint(config.lake.root) == expected, f"crash before commit {point}"


def test_a_replayed_batch_writes_no_new_version(spark, feeds):
    """The files of a loaded batch read again (as after a crash before the file log was
    written): every table keeps its version."""
    config = feeds("replay")
    ingest_feeds(spark, config, Lake(config.lake.root))
    before = delta_versions(config.lake.root)
    shutil.rmtree(Path(config.lake.root) / "_ops" / "ingest_files")
    ingest_feeds(spark, config, Lake(config.lake.root))
    after = delta_versions(config.lake.root)
    assert {t: v for t, v in after.items() if t != "_ops/ingest_files"} == {t: v for t, v in before.items() if t != "_ops/ingest_files"}
