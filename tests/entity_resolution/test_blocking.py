"""Prediction blocks past `max_block_records` mentions are left out of their rule: pairs grow
with the square of a block, and a common name at a large dealer must not fill the disk."""

from __future__ import annotations

import pytest

from cdp.config import LinkageModelConfig
from entity_resolution.engines import capped_blocking, capped_blocking_in_duckdb

pytestmark = pytest.mark.spark

RULES = [["mobile"], ["name_key", "dealer_code"], ["name_key", "substr(mobile, 1, 7)"]]


def _mentions(spark):
    rows = [
        # Four 王伟 at GZ001 (a block of 4), two of them on one mobile.
        ("m1", "wangwei", "GZ001", "13800138000"),
        ("m2", "wangwei", "GZ001", "13800138000"),
        ("m3", "wangwei", "GZ001", None),
        ("m4", "wangwei", "GZ001", "13912345678"),
        # Two 李娜 at GZ001, and one 王伟 at another dealer.
        ("m5", "lina", "GZ001", None),
        ("m6", "lina", "GZ001", "13700000000"),
        ("m7", "wangwei", "SZ002", "13800138000"),
    ]
    return spark.createDataFrame(rows, "mention_id string, name_key string, dealer_code string, mobile string")


def test_an_oversized_block_leaves_its_rule_and_keeps_the_others(spark, tmp_path):
    params = LinkageModelConfig(prediction_blocking=RULES, max_block_records=3)
    keyed, rules = capped_blocking(_mentions(spark), params, str(tmp_path / "blocks"))

    assert rules is not None
    assert [r.get_blocking_rule("duckdb").blocking_rule_sql for r in rules] == [
        'l."mobile" = r."mobile"',
        'l."_block_1" = r."_block_1"',
        '(l."name_key" = r."name_key") AND (SUBSTRING(l.mobile, 1, 7) = SUBSTRING(r.mobile, 1, 7))',
    ]
    block = {r["mention_id"]: r["_block_1"] for r in keyed.collect()}
    # The four 王伟 at GZ001 are out of the name-and-dealer rule; the smaller blocks keep it.
    assert [block[m] for m in ("m1", "m2", "m3", "m4")] == [None] * 4
    assert block["m5"] == block["m6"] == "lina\u001fGZ001"
    assert block["m7"] == "wangwei\u001fSZ002"
    # Nothing else changes: every mention, every column.
    assert keyed.count() == 7 and set(_mentions(spark).columns) < set(keyed.columns)


def test_without_an_oversized_block_the_model_rules_stand(spark, tmp_path):
    mentions = _mentions(spark)
    for cap in (4, None):
        keyed, rules = capped_blocking(mentions, LinkageModelConfig(prediction_blocking=RULES, max_block_records=cap), str(tmp_path / "b"))
        assert rules is None and keyed.columns == mentions.columns


@pytest.mark.parametrize("cap", [3, 4, None])
def test_duckdb_keys_the_same_blocks_as_spark(spark, tmp_path, cap):
    """`capped_blocking_in_duckdb` (the DuckDB engine reading the mentions' files itself):
    the same rows, key columns and rules as `capped_blocking`."""
    import duckdb

    mentions = _mentions(spark)
    params = LinkageModelConfig(prediction_blocking=RULES, max_block_records=cap)
    keyed, rules = capped_blocking(mentions, params, str(tmp_path / "blocks"))
    mentions.write.parquet(str(tmp_path / "mentions"))
    con = duckdb.connect()
    duck_rules = capped_blocking_in_duckdb(con, f"read_parquet('{tmp_path}/mentions/*.parquet')", params, "keyed")

    def sql(rules):
        return None if rules is None else [r.get_blocking_rule("duckdb").blocking_rule_sql for r in rules]

    assert sql(duck_rules) == sql(rules)
    columns = sorted(keyed.columns)  # in another order: Splink reads them by name
    assert sorted(d[0] for d in con.execute("SELECT * FROM keyed LIMIT 0").description) == columns
    quoted = ", ".join(f'"{c}"' for c in columns)
    assert sorted(con.execute(f"SELECT {quoted} FROM keyed").fetchall(), key=str) == sorted(
        (tuple(r) for r in keyed.select(*columns).collect()), key=str
    )
