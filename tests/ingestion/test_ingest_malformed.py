"""Ingest of malformed input: every row loaded or quarantined with its rule; hard rules stop the feed."""

from __future__ import annotations

import pytest
from pyspark.testing import assertDataFrameEqual

from cdp import catalog
from cdp.config import FeedConfig
from cdp.lake import read_table, table_exists
from ingestion import FeedError, ingest_feed
from tests.ingestion.conftest import SURVEY_FEED, feed_dir

pytestmark = pytest.mark.spark

HEADER = "survey_id,survey_type,dealer_code,surveyed_at,vin,mobile,respondent_name,overall_score,item_scores,would_return,would_recommend\n"
VIN = "1M8GDM9AXKP042788"


def test_malformed_csv_rows_are_quarantined_with_their_rule(spark, lake, tmp_path):
    body = (
        HEADER
        + f'SV1,csi,GZ001,2025-01-02 10:00:00,{VIN},+86 138-0013-8000,王偉,90,"{{""staff"": 90, ""process"": 85}}",true,true\n'  # line 2 ok
        + f"SV2,csi,GZ001,2025-02-30 10:00:00,{VIN},13800138000,王伟,90,,true,true\n"  # 3 bad date
        + "SV3,csi,GZ001\n"  # 4 short row
        + f"SV4,csi,GZ001,2025-01-02 10:00:00,{VIN},13800138000,王伟,90,,true,true,surplus\n"  # 5 extra field
        + f'SV5,csi,GZ001,2025-01-02 10:00:00,{VIN},13800138000,"王伟,90,,true,true\n'  # 6 unclosed quote
        + f"SV6,ssi,GZ001,2025-01-03 10:00:00,{VIN},13800138000,王伟,101,,yes,no\n"  # 7 score out of range
        + f"SV7,survey,,2025-01-03 10:00:00,{VIN},13800138000,王伟,80,,maybe,no\n"  # 8 enum, required, boolean
        + "\n"
        + f'SV8,ssi,SZ002,2025-01-04 10:00:00,{VIN},8613800138000,"Wang\nWei",75,{{}},false,false\n'  # 10-11 multi-line ok
    ).encode() + f"SV9,csi,GZ001,2025-01-02 10:00:00,{VIN},13800138000,王伟,90,,true,true\n".encode("gbk")  # 12 not UTF-8
    folder = feed_dir(tmp_path, "surveys", {"s1.csv": body})
    report = ingest_feed(spark, lake, "surveys", SURVEY_FEED, folder)

    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (9, 2, 7)
    assert report.reconciled
    quarantine = read_table(spark, lake.path(catalog.quarantine("surveys"))).select("_source_row", "_rules", "_reason")
    expected = spark.createDataFrame(
        [
            (3, ["date_format:surveyed_at"], "surveyed_at: not a date in format yyyy-MM-dd HH:mm:ss (got '2025-02-30 10:00:00')"),
            (4, ["malformed_row"], "line 4: column_count: expected 11 fields, found 3"),
            (5, ["malformed_row"], "line 5: column_count: expected 11 fields, found 12"),
            (6, ["malformed_row"], "line 6: broken_quoting: unclosed quote"),
            (7, ["range:overall_score"], "overall_score: outside 0-100 (got '101')"),
            (8, ["required:dealer_code", "boolean:would_return", "allowed_values:survey_type"],
             "dealer_code: required value is empty; would_return: not true/false (got 'maybe'); survey_type: not one of ssi, csi, complaint_followup (got 'survey')"),
            (12, ["malformed_row"], "line 12: invalid_encoding: bytes that are not UTF-8"),
        ],
        "_source_row long, _rules array<string>, _reason string",
    )
    assertDataFrameEqual(quarantine, expected)
    silver = read_table(spark, lake.path(catalog.silver("surveys"))).select(
        "survey_id", "mobile", "mobile_valid", "respondent_name_simplified", "respondent_name_pinyin", "would_return", "overall_score"
    )
    assertDataFrameEqual(
        silver,
        spark.createDataFrame(
            [("SV1", "13800138000", True, "王伟", "wang wei", True, 90), ("SV8", "13800138000", True, "WANG WEI", "wang wei", False, 75)],
            "survey_id string, mobile string, mobile_valid boolean, respondent_name_simplified string, respondent_name_pinyin string, would_return boolean, overall_score int",
        ),
    )


PREFS = FeedConfig(path="contact_preferences", format="csv", max_bad_row_fraction=0.2)
PREFS_HEADER = "mobile,id_number,channel,opt_in,updated_at\n"


def test_missing_required_column_stops_the_feed_and_writes_nothing(spark, lake, tmp_path):
    folder = feed_dir(tmp_path, "prefs", {"a.csv": (PREFS_HEADER + "13800138000,,sms,true,2025-01-01 00:00:00\n").encode(),
                                          "b.csv": b"mobile,channel,updated_at\n13800138000,sms,2025-01-01 00:00:00\n"})
    with pytest.raises(FeedError) as err:
        ingest_feed(spark, lake, "contact_preferences", PREFS, folder)
    assert str(err.value) == f"feed contact_preferences: file file:{folder}/b.csv: rule missing_column: required column(s) opt_in not in header"
    for path in (lake.path(catalog.bronze("contact_preferences")), lake.path(catalog.silver("contact_preferences")), lake.path(catalog.quarantine("contact_preferences")), lake.path(catalog.INGEST_FILES)):
        assert not table_exists(spark, path)


def test_wrong_encoding_file_breaks_the_bad_row_limit(spark, lake, tmp_path):
    rows = "".join(f"1380013800{i},,wechat,是,2025-01-0{i} 00:00:00\n" for i in range(1, 6))
    folder = feed_dir(tmp_path, "prefs", {"gbk.csv": (PREFS_HEADER + rows).encode("gbk")})
    with pytest.raises(FeedError) as err:
        ingest_feed(spark, lake, "contact_preferences", PREFS, folder)
    assert str(err.value) == (
        f"feed contact_preferences: file file:{folder}/gbk.csv: rule max_bad_row_fraction: 5 of 5 rows broke row rules "
        "(limit 20.0%); most common rule malformed_row"
    )
    assert not table_exists(spark, lake.path(catalog.silver("contact_preferences")))


def test_empty_and_header_only_files_load_zero_rows(spark, lake, tmp_path):
    folder = feed_dir(tmp_path, "prefs", {"empty.csv": b"", "header.csv": PREFS_HEADER.encode(),
                                          "one.csv": (PREFS_HEADER + "138 0013 8000,,sms,false,2025-01-01 08:00:00\n").encode()})
    report = ingest_feed(spark, lake, "contact_preferences", PREFS, folder)
    # A 0-byte file holds no records; Spark's file sources do not list it at all.
    assert (report.files_new, report.rows_read, report.rows_loaded, report.rows_quarantined) == (2, 1, 1, 0)
    files = read_table(spark, lake.path(catalog.INGEST_FILES)).select("path", "rows_read")
    assertDataFrameEqual(
        files,
        spark.createDataFrame([(f"file:{folder}/{n}", r) for n, r in (("header.csv", 0), ("one.csv", 1))], "path string, rows_read long"),
    )


def test_vendor_column_names_are_renamed_by_conf(spark, lake, tmp_path):
    feed = FeedConfig(path="p", format="csv", rename={"PHONE_NO": "mobile", "CERT_NO": "id_number", "CHANNEL_CD": "channel",
                                                      "AGREE": "opt_in", "UPD_TIME": "updated_at"},
                      date_formats={"updated_at": ["dd/MM/yyyy HH:mm"]}, csv={"delimiter": ";"})
    folder = feed_dir(tmp_path, "prefs", {"v.csv": b"PHONE_NO;CERT_NO;CHANNEL_CD;AGREE;UPD_TIME\n+8613800138000;;SMS;N;31/12/2024 23:59\n"})
    ingest_feed(spark, lake, "contact_preferences", feed, folder)
    silver = read_table(spark, lake.path(catalog.silver("contact_preferences"))).selectExpr("mobile", "channel", "opt_in", "cast(updated_at as string) as updated_at")
    assertDataFrameEqual(silver, spark.createDataFrame([("13800138000", "sms", False, "2024-12-31 23:59:00")], "mobile string, channel string, opt_in boolean, updated_at string"))


def test_jsonl_bad_lines_and_unreadable_parquet(spark, lake, tmp_path):
    feed = FeedConfig(path="p", format="jsonl", max_bad_row_fraction=0.6)
    lines = (
        '{"mobile": "13800138000", "channel": "sms", "opt_in": true, "updated_at": "2025-01-01 00:00:00"}\n'
        '{"mobile": "13800138001", "channel": "sms", "opt_in": tru\n'
    )
    folder = feed_dir(tmp_path, "prefs_json", {"a.jsonl": lines.encode()})
    report = ingest_feed(spark, lake, "contact_preferences", feed, folder)
    assert (report.rows_read, report.rows_loaded, report.quarantine_by_rule) == (2, 1, {"malformed_row": 1})

    parquet = FeedConfig(path="p", format="parquet")
    folder = feed_dir(tmp_path, "prefs_parquet", {"broken.parquet": b"PAR1 this is not parquet"})
    with pytest.raises(FeedError, match=r"feed contact_preferences: file .*broken.parquet: rule unreadable_file: "):
        ingest_feed(spark, lake, "contact_preferences", parquet, folder)


SO_HEADER = "order_id,dealer_code,order_date,customer_type,customer_name,vin,price,mobile\n"


def test_duplicate_key_in_a_batch_keeps_the_latest(spark, lake, tmp_path):
    rows = "SO1,GZ001,2024-01-01,individual,王伟,1M8GDM9AXKP042788,100,13800138000\nSO1,GZ001,2024-01-01,individual,王伟,1M8GDM9AXKP042788,200,13800138000\n"
    folder = feed_dir(tmp_path, "so", {"a.csv": (SO_HEADER + rows).encode()})
    feed = FeedConfig(path="p", format="csv", max_bad_row_fraction=0.5)
    ingest_feed(spark, lake, "sales_orders", feed, folder)
    assert [(r.order_id, float(r.price)) for r in read_table(spark, lake.path(catalog.silver("sales_orders"))).collect()] == [("SO1", 200.0)]
    assert [(r._source_row, r._rule) for r in read_table(spark, lake.path(catalog.quarantine("sales_orders"))).collect()] == [(2, "duplicate_key")]


def test_failed_expectation_suite_writes_nothing_but_its_readable_result(spark, lake, tmp_path):
    rows = "".join(f"SO{i},GZ001,2024-01-01,individual,王伟,1M8GDM9AXKP042788,100,1380013800{i}0\n" for i in range(5))
    folder = feed_dir(tmp_path, "so", {"a.csv": (SO_HEADER + rows).encode()})
    with pytest.raises(FeedError) as err:
        ingest_feed(spark, lake, "sales_orders", FeedConfig(path="p", format="csv"), folder)
    assert str(err.value).startswith("feed sales_orders: rule expectation_suite: batch ")
    assert str(err.value).endswith(" failed expect_column_values_to_be_in_set(mobile_valid)")
    assert not table_exists(spark, lake.path(catalog.silver("sales_orders")))
    assert not table_exists(spark, lake.path(catalog.bronze("sales_orders")))
    result = read_table(spark, lake.path(catalog.VALIDATION_RESULTS)).collect()
    assert [(r.feed, r.success) for r in result] == [("sales_orders", False)]
    assert "13800138" not in result[0].result  # no sample values (PII) in results
    assert '"unexpected_count": 5' in result[0].result
