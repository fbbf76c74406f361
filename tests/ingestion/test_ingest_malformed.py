"""Ingest of malformed input: every row loaded or quarantined with its rule; hard rules stop the feed."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.testing import assertDataFrameEqual

from cdp import catalog
from cdp.config import FeedConfig
from cdp.lake import Lake, read_table, table_exists
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


def test_a_column_earlier_files_had_missing_from_a_new_file_is_schema_drift(spark, lake, tmp_path):
    first = feed_dir(tmp_path, "prefs", {"a.csv": (PREFS_HEADER + "13800138000,110105194912310021,sms,true,2025-01-01 00:00:00\n").encode()})
    ingest_feed(spark, lake, "contact_preferences", PREFS, first)
    # The next export renamed id_number to cert_no: nothing of it loads, the file and column are named.
    renamed = b"mobile,cert_no,channel,opt_in,updated_at\n13800138001,110105194912310021,sms,false,2025-02-01 00:00:00\n"
    feed_dir(tmp_path, "prefs", {"b.csv": renamed})
    with pytest.raises(FeedError) as err:
        ingest_feed(spark, lake, "contact_preferences", PREFS, first)
    assert str(err.value).startswith(
        f"feed contact_preferences: file file:{first}/b.csv: rule schema_drift: column(s) id_number missing from the header "
        "although earlier files of the feed had them; the header has cert_no instead"
    )
    assert read_table(spark, lake.path(catalog.silver("contact_preferences"))).count() == 1
    # Marked optional for the feed, the file loads (with no ID number).
    optional = PREFS.model_copy(update={"optional_columns": ["id_number"]})
    assert ingest_feed(spark, lake, "contact_preferences", optional, first).rows_loaded == 1


def test_earlier_batches_are_asked_only_about_columns_a_new_file_lacks():
    """A batch whose files carry every contract column needs no look at earlier batches
    (bronze is not read); otherwise only the lacking columns are asked about."""
    from cdp.contract import CONTRACTS
    from ingestion.readers import _check_drift

    contract = CONTRACTS["contact_preferences"]
    asked: list[list[str]] = []

    def seen(columns):
        asked.append(columns)
        return {"id_number"} & set(columns)

    full = PREFS_HEADER.strip().split(",")
    _check_drift("contact_preferences", contract, {"a.csv": full, "b.csv": full}, seen, set())
    assert asked == []
    without_id = [c for c in full if c != "id_number"]
    with pytest.raises(FeedError, match=r"b.csv: rule schema_drift: column\(s\) id_number missing"):
        _check_drift("contact_preferences", contract, {"b.csv": without_id}, seen, set())
    assert asked == [["id_number"]]
    _check_drift("contact_preferences", contract, {"b.csv": without_id}, seen, {"id_number"})  # optional: not even asked
    assert asked == [["id_number"]]


def test_schema_drift_within_one_batch(spark, lake, tmp_path):
    folder = feed_dir(tmp_path, "prefs", {"a.csv": (PREFS_HEADER + "13800138000,,sms,true,2025-01-01 00:00:00\n").encode(),
                                          "b.csv": b"mobile,channel,opt_in,updated_at\n13800138001,sms,true,2025-01-01 00:00:00\n"})
    with pytest.raises(FeedError, match=r"b.csv: rule schema_drift: column\(s\) id_number missing"):
        ingest_feed(spark, lake, "contact_preferences", PREFS, folder)


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


def _string_array(values: list[bytes | None]):
    """An Arrow string column holding exactly these bytes, valid UTF-8 or not (as a
    careless writer produces it)."""
    import pyarrow as pa

    offsets, data = [0], b""
    for v in values:
        data += v or b""
        offsets.append(len(data))
    validity = pa.array([v is not None for v in values]).buffers()[1]
    return pa.Array.from_buffers(pa.string(), len(values), [validity, pa.py_buffer(pa.array(offsets, pa.int32()).buffers()[1]), pa.py_buffer(data)])


def test_parquet_row_with_gbk_bytes_is_quarantined_and_other_feeds_still_load(spark, lake, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({
        "mobile": ["13800138000", "13800138001", "13800138002"],
        "id_number": _string_array([None, "王伟".encode("gbk"), None]),
        "channel": ["sms", "sms", "phone"],
        "opt_in": [True, False, True],
        "updated_at": ["2025-01-01 00:00:00"] * 3,
    })
    folder = Path(feed_dir(tmp_path, "prefs_parquet", {}))
    pq.write_table(table, folder / "gbk.parquet")
    feed = FeedConfig(path="p", format="parquet", max_bad_row_fraction=0.5)
    report = ingest_feed(spark, lake, "contact_preferences", feed, str(folder))
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (3, 2, 1)
    bad = read_table(spark, lake.path(catalog.quarantine("contact_preferences"))).collect()
    assert [(r["_source_row"], r["_rules"]) for r in bad] == [(2, ["malformed_row"])]
    assert "invalid_encoding: bytes that are not UTF-8 in id_number" in bad[0]["_reason"]


def test_a_feed_whose_file_cannot_be_read_fails_alone(spark, app_config, tmp_path):
    """One unreadable file is its feed's error; every other feed loads, no staging is left."""
    from cdp.config import IngestConfig, LakeConfig
    from cdp.lake import Lake
    from ingestion import ingest_feeds

    raw = tmp_path / "raw"
    feed_dir(tmp_path, "prefs", {"a.csv": (PREFS_HEADER + "13800138000,,sms,true,2025-01-01 00:00:00\n").encode()})
    # Garbage that holds a mobile: the error names the file, never the bytes it choked on.
    feed_dir(tmp_path, "claims", {"broken.parquet": b"PAR1" + bytes(range(256)) * 4 + b"13912345678" + b"PAR1"})
    feeds = {"contact_preferences": PREFS.model_copy(update={"path": "prefs"}),
             "warranty_claims": FeedConfig(path="claims", format="parquet")}
    config = app_config.model_copy(update={"lake": LakeConfig(root=str(tmp_path / "lake"), raw_root=str(raw)),
                                           "ingest": IngestConfig(feeds=feeds)})
    lake = Lake(config.lake.root)
    reports, errors = ingest_feeds(spark, config, lake)
    assert [r.feed for r in reports] == ["contact_preferences"] and reports[0].rows_loaded == 1
    assert [(e.feed, e.rule) for e in errors] == [("warranty_claims", "unreadable_file")]
    assert "broken.parquet" in str(errors[0])
    assert "13912345678" not in str(errors[0]) and "13912345678" not in repr(errors[0].detail)
    assert not list((tmp_path / "lake").glob("_staging/*"))


SO_HEADER = "order_id,dealer_code,order_date,customer_type,customer_name,vin,price,mobile\n"


def test_duplicate_key_in_a_batch_keeps_the_latest(spark, lake, tmp_path):
    rows = "SO1,GZ001,2024-01-01,individual,王伟,1M8GDM9AXKP042788,100,13800138000\nSO1,GZ001,2024-01-01,individual,王伟,1M8GDM9AXKP042788,200,13800138000\n"
    folder = feed_dir(tmp_path, "so", {"a.csv": (SO_HEADER + rows).encode()})
    feed = FeedConfig(path="p", format="csv", max_bad_row_fraction=0.5)
    ingest_feed(spark, lake, "sales_orders", feed, folder)
    assert [(r.order_id, float(r.price)) for r in read_table(spark, lake.path(catalog.silver("sales_orders"))).collect()] == [("SO1", 200.0)]
    assert [(r._source_row, r._rule) for r in read_table(spark, lake.path(catalog.quarantine("sales_orders"))).collect()] == [(2, "duplicate_key")]


@pytest.mark.parametrize("small", [False, True], ids=["on-spark", "on-driver"])
def test_failed_expectation_suite_writes_nothing_but_its_readable_result(spark, lake, tmp_path, small):
    """The same verdict and the same value-free result whether the suite runs on Spark or, for
    a small lake's batch, on the driver."""
    rows = "".join(f"SO{i},GZ001,2024-01-01,individual,王伟,1M8GDM9AXKP042788,100,1380013800{i}0\n" for i in range(5))
    folder = feed_dir(tmp_path, "so", {"a.csv": (SO_HEADER + rows).encode()})
    with pytest.raises(FeedError) as err:
        ingest_feed(spark, lake, "sales_orders", FeedConfig(path="p", format="csv"), folder, small=small)
    assert str(err.value).startswith("feed sales_orders: rule expectation_suite: batch ")
    assert str(err.value).endswith(" failed expect_column_values_to_be_in_set(mobile_valid)")
    assert not table_exists(spark, lake.path(catalog.silver("sales_orders")))
    assert not table_exists(spark, lake.path(catalog.bronze("sales_orders")))
    result = read_table(spark, lake.path(catalog.VALIDATION_RESULTS)).collect()
    assert [(r.feed, r.success) for r in result] == [("sales_orders", False)]
    assert "13800138" not in result[0].result  # no sample values (PII) in results
    assert '"unexpected_count": 5' in result[0].result


def _survey(i: int, name: str = "王伟", note: str = "") -> str:
    return f"SV{i},csi,GZ001,2025-01-02 10:00:00,{VIN},1380013{i:04d},{name},90,{note},true,true\n"


def test_a_file_read_in_byte_ranges_loads_as_the_whole_file(spark, tmp_path):
    """A CSV file over `csv.split_bytes` is read in ranges on separate tasks; rows cut by a range's
    end (a broken quote, a quoted name over two lines, a short row) load or are quarantined on
    their own line exactly as when the file is read whole."""
    from ingestion.parsing import parse_csv_bytes
    from ingestion.readers import _splits

    split = 1024
    cut = (
        lambda i: f'SV{i},csi,GZ001,2025-01-02 10:00:00,{VIN},13800138000,"王伟,90,,true,true\n',  # unclosed quote
        lambda i: f'SV{i},ssi,SZ002,2025-01-04 10:00:00,{VIN},13800138000,"Wang\nWei",75,{{}},false,false\n',  # two lines, fine
        lambda i: f"SV{i},csi,GZ001\n",  # short row
    )
    body, i = HEADER, 0
    for k in range(1, 6):
        boundary = k * split
        while boundary - len(body.encode()) > 200:
            body, i = body + _survey(i), i + 1
        # A record padded so that the next row starts 20 bytes before the range's end.
        pad = boundary - 20 - len(body.encode()) - len(_survey(i, name="").encode())
        body += _survey(i, name="W" * pad)
        assert len(body.encode()) == boundary - 20
        body, i = body + cut[k % 3](i + 1), i + 2
    content = body.encode()
    feed = SURVEY_FEED.model_copy(update={"split_bytes": split})
    assert _splits(feed, len(content)) and len(content) > 4 * split  # five ranges
    files = {"big.csv": content, "small.csv": (HEADER + _survey(999)).encode()}
    whole = parse_csv_bytes(content)[1]
    read, quarantined = _as_the_whole_file_parser_reads_it(spark, tmp_path, "surveys", feed, files, whole)
    # Two short rows and an unclosed quote, each cut by a range's end; the quoted name over two lines loads.
    assert (read, quarantined) == (len(whole) + 1, 3) and [e for _, _, e in whole if e] == [
        "column_count: expected 11 fields, found 3", "broken_quoting: unclosed quote", "column_count: expected 11 fields, found 3"
    ]


def _as_the_whole_file_parser_reads_it(spark, tmp_path, feed_name, feed, files, whole):
    """Ingest `files` with `feed` (whose first file is read in ranges); the big file's rows must
    be the records the whole-file parser finds in it (`whole`), on the same lines, and its
    malformed ones quarantined with that parser's reason. Returns (rows read, quarantined)."""
    from pyspark.sql import functions as F

    lake = Lake(str(tmp_path / "lake"))
    report = ingest_feed(spark, lake, feed_name, feed, feed_dir(tmp_path, feed_name, files))
    big = F.col("_source_file").endswith(next(iter(files)))
    bronze = read_table(spark, lake.path(catalog.bronze(feed_name))).filter(big).select("_source_row").collect()
    assert sorted(r._source_row for r in bronze) == [n for n, _, _ in whole]
    malformed = read_table(spark, lake.path(catalog.quarantine(feed_name))).filter(big & F.array_contains("_rules", "malformed_row"))
    assert sorted((r._source_row, r._reason) for r in malformed.collect()) == [(n, f"line {n}: {error}") for n, _, error in whole if error]
    assert report.rows_read == report.rows_loaded + report.rows_quarantined
    return report.rows_read, report.rows_quarantined


def test_a_json_lines_file_read_in_byte_ranges_loads_as_the_whole_file(spark, tmp_path):
    """Keys first seen in a later range are columns of the whole file; bad lines at a range's
    end are quarantined on their line."""
    import json

    from pyspark.sql import functions as F

    from ingestion.parsing import parse_jsonl_bytes
    from ingestion.readers import _splits

    lines = []
    for i in range(150):
        if i % 13 == 7:
            lines.append(f'{{"mobile": "1380013{i:04d}", "channel": "sms", "opt_in": tru')
        else:
            lines.append(json.dumps({"mobile": f"1380013{i:04d}", "channel": "sms", "opt_in": i % 2 == 0, "updated_at": "2025-01-01 00:00:00"}))
    lines.append(json.dumps({"mobile": "13800139999", "id_number": "11010519491231002X", "channel": "email", "opt_in": False, "updated_at": "2025-01-01 00:00:00"}))
    feed = FeedConfig(path="p", format="jsonl", max_bad_row_fraction=0.6, split_bytes=1024)
    content = "\n".join(lines).encode()
    assert _splits(feed, len(content))
    read, quarantined = _as_the_whole_file_parser_reads_it(spark, tmp_path, "contact_preferences", feed, {"big.jsonl": content}, parse_jsonl_bytes(content)[1])
    assert (read, quarantined) == (151, len([i for i in range(150) if i % 13 == 7]))
    # The key first seen on the last line is a column of the file: its value reached silver.
    silver = read_table(spark, Lake(str(tmp_path / "lake")).path(catalog.silver("contact_preferences")))
    assert silver.filter(F.col("id_number") == "11010519491231002X").count() == 1


def test_a_file_known_by_path_size_and_time_is_not_read_again_and_a_rewritten_one_is(spark, lake, tmp_path):
    """The register records each loaded file's size and modification time; a listed file with
    the same path, size and time takes its recorded hash unread, one written again is hashed
    and its new rows load. A register of an earlier release, without those columns, gains them."""
    import datetime as dt
    import os

    from cdp.records import merge_records
    from ingestion.ingest import IngestLog
    from ingestion.readers import list_feed_files

    # A register as an earlier release wrote it: a loaded file, no size or time.
    old_ddl = "feed string, path string, file_hash string, batch_id string, rows_read long, rows_loaded long, rows_quarantined long, loaded_at timestamp"
    merge_records(spark, lake.path(catalog.INGEST_FILES), [("surveys", "/gone.csv", "f" * 64, "b0", 1, 1, 0, dt.datetime(2026, 1, 1))], old_ddl, ["feed", "file_hash"])
    first = f"SV1,csi,GZ001,2025-01-02 10:00:00,{VIN},13800138000,王伟,90,,true,true\n"
    folder = feed_dir(tmp_path, "surveys", {"s1.csv": (HEADER + first).encode()})
    report = ingest_feed(spark, lake, "surveys", SURVEY_FEED, folder)
    assert (report.files_new, report.rows_loaded) == (1, 1)
    register = {r.path: r for r in read_table(spark, lake.path(catalog.INGEST_FILES)).collect()}
    path = next(p for p in register if p.endswith("s1.csv"))
    size, modified_ms = (tmp_path / "raw" / "surveys" / "s1.csv").stat().st_size, register[path].modified_ms
    assert (register[path].file_size, register["/gone.csv"].modified_ms) == (size, None)
    assert abs(modified_ms - os.stat(tmp_path / "raw" / "surveys" / "s1.csv").st_mtime * 1000) < 1000

    known = IngestLog(spark, lake).known_files("surveys")
    assert known == {(path, size, modified_ms): register[path].file_hash}
    # Taken from the register unread: a stand-in hash comes back as the file's.
    [listed] = list_feed_files(spark, "surveys", SURVEY_FEED, folder, {(path, size, modified_ms): "stand-in"})
    assert listed.file_hash == "stand-in"
    again = ingest_feed(spark, lake, "surveys", SURVEY_FEED, folder)
    assert (again.files_new, again.files_skipped) == (0, 1)

    # Written again in place, a row added: hashed, and its rows load (the resent one merges).
    second = f"SV2,ssi,SZ002,2025-01-04 10:00:00,{VIN},13800138000,王伟,75,,false,false\n"
    (tmp_path / "raw" / "surveys" / "s1.csv").write_bytes((HEADER + first + second).encode())
    os.utime(tmp_path / "raw" / "surveys" / "s1.csv", ns=(0, (modified_ms + 5_000) * 1_000_000))
    rewritten = ingest_feed(spark, lake, "surveys", SURVEY_FEED, folder)
    assert (rewritten.files_new, rewritten.rows_read) == (1, 2)
    assert sorted(r.survey_id for r in read_table(spark, lake.path(catalog.silver("surveys"))).collect()) == ["SV1", "SV2"]

    # A file an earlier release loaded (no size or time in the register) gets them on the next run.
    row = max((r for r in read_table(spark, lake.path(catalog.INGEST_FILES)).collect() if r.path == path), key=lambda r: r.modified_ms)
    identity = "feed string, file_hash string, file_size long, modified_ms long"
    merge_records(spark, lake.path(catalog.INGEST_FILES), [("surveys", row.file_hash, None, None)], identity, ["feed", "file_hash"], insert=False)
    assert (path, row.file_size, row.modified_ms) not in IngestLog(spark, lake).known_files("surveys")
    assert ingest_feed(spark, lake, "surveys", SURVEY_FEED, folder).files_new == 0
    assert IngestLog(spark, lake).known_files("surveys")[(path, row.file_size, row.modified_ms)] == row.file_hash
