"""Configuration loading: strict keys, clear errors naming file and key (no JVM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdp.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, profile: str, feeds: str) -> Path:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "feeds.yaml").write_text(feeds, encoding="utf-8")
    (conf / "p.yaml").write_text(profile, encoding="utf-8")
    return conf / "p.yaml"


FEEDS = "feeds:\n  sales_orders: {path: so, format: csv}\n"


def test_shipped_profiles_load():
    for name in ("local.yaml", "cluster.yaml"):
        config = load_config(ROOT / "conf" / name)
        assert set(config.ingest.feeds) == {
            "sales_orders", "leads", "service_orders", "warranty_claims", "complaints", "surveys", "contact_preferences",
        }
    assert load_config(ROOT / "conf" / "cluster.yaml").spark.master is None


def test_relative_paths_resolve_under_project_root(tmp_path):
    config = load_config(_write(tmp_path, "lake: {root: lake}\n", FEEDS))
    assert config.resolve(config.lake.root) == str(tmp_path / "lake")
    assert config.resolve("s3a://bucket/lake") == "s3a://bucket/lake"
    assert config.spark.settings == {}


def test_spark_settings_become_strings(tmp_path):
    config = load_config(_write(tmp_path, "spark:\n  settings: {spark.sql.shuffle.partitions: 8, spark.ui.enabled: false}\n", FEEDS))
    assert config.spark.settings == {"spark.sql.shuffle.partitions": "8", "spark.ui.enabled": "false"}


@pytest.mark.parametrize(
    ("profile", "feeds", "message"),
    [
        ("spark: {mastr: local}\n", FEEDS, "{p}: spark.mastr: unknown key"),
        ("lake: {root: 5}\n", FEEDS, "{p}: lake.root: Input should be a valid string"),
        ("", "feeds:\n  sales_orders: {path: so, format: xls}\n", "{f}: feeds.sales_orders.format: Input should be 'csv', 'jsonl', 'parquet' or 'xlsx'"),
        ("", "feeds:\n  sales_orders: {path: so, format: csv, renames: {}}\n", "{f}: feeds.sales_orders.renames: unknown key"),
        ("", "feeds:\n  sales_order: {path: so, format: csv}\n", "{f}: feeds: Value error, unknown feed(s) ['sales_order']; known feeds are ['sales_orders', 'leads', 'service_orders', 'warranty_claims', 'complaints', 'surveys', 'contact_preferences']"),
        ("", "feeds:\n  sales_orders: {path: so, format: csv, max_bad_row_fraction: 2}\n", "{f}: feeds.sales_orders.max_bad_row_fraction: Input should be less than or equal to 1"),
        ("", "feeds:\n  sales_orders: {path: so, format: csv, csv: {delimiter: ';;'}}\n", "{f}: feeds.sales_orders.csv.delimiter: Value error, delimiter must be a single character"),
        ("spark: [1, 2\n", FEEDS, "{p}: invalid YAML"),
        ("- a\n", FEEDS, "{p}: top level must be a mapping, got list"),
        ("", "feeds: {}\n", "{f}: feeds: Value error, no feed configured"),
    ],
)
def test_invalid_config_names_file_and_key(tmp_path, profile, feeds, message):
    path = _write(tmp_path, profile, feeds)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    expected = message.format(p=path, f=path.parent / "feeds.yaml")
    assert str(err.value).startswith(expected)


def test_a_file_not_in_utf8_is_a_config_error_naming_file_and_line(tmp_path):
    path = _write(tmp_path, "", FEEDS)
    path.write_bytes("lake:\n  root: 湖\n".encode("gbk"))
    with pytest.raises(ConfigError, match=rf"^{path}: line 2: not UTF-8 text \(byte 0x"):
        load_config(path)


def test_missing_profile_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.yaml: cannot read config file \(No such file or directory\)"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("resolution", "message"),
    [
        ({"review_band": [0.96, 0.99]}, "review_band [0.96, 0.99] must contain match_threshold 0.95"),
        ({"review_band": [0.99, 0.8]}, "review_band must be [low, high] with 0 <= low < high <= 1"),
        ({"prediction_threshold": 0.9}, "prediction_threshold must not exceed review_band's low end"),
        ({"source_priority": ["sales_orders", "fax"]}, "unknown feed(s) ['fax']"),
        ({"model": {"blocking": [["mobile"]]}}, "resolution.model.blocking: unknown key"),
    ],
)
def test_resolution_settings_are_checked(tmp_path, resolution, message):
    import yaml

    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "feeds.yaml").write_text((ROOT / "conf" / "feeds.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (conf / "local.yaml").write_text(yaml.safe_dump({"resolution": resolution}))
    with pytest.raises(ConfigError) as err:
        load_config(conf / "local.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith(str(conf / "local.yaml"))
