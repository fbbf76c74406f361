"""Record-exact CSV / JSON Lines parsing, on plain bytes (no JVM)."""

from __future__ import annotations

from ingestion.parsing import parse_csv_bytes, parse_jsonl_bytes


def test_csv_records_carry_line_numbers_and_errors():
    content = (
        b"a,b,c\n"
        b"1,x,y\n"  # line 2: fine
        b"2,short\n"  # line 3: too few fields
        b"3,x,y,extra\n"  # line 4: too many
        b'4,"two\nlines",z\n'  # line 5-6: quoted newline is one record
        b"\n"  # blank line: not a record
        b"5,\"\",\n"  # line 8: empty values are fine
    )
    header, rows = parse_csv_bytes(content)
    assert header == ["a", "b", "c"]
    assert rows == [
        (2, ["1", "x", "y"], None),
        (3, ["2", "short"], "column_count: expected 3 fields, found 2"),
        (4, ["3", "x", "y", "extra"], "column_count: expected 3 fields, found 4"),
        (5, ["4", "two\nlines", "z"], None),
        (8, ["5", "", ""], None),
    ]


def test_csv_unclosed_quote_is_one_bad_record_and_parsing_resumes():
    content = b'a,b\n1,"broken\n2,ok\n3,ok\n'
    _, rows = parse_csv_bytes(content)
    assert rows == [
        (2, ['1,"broken'], "broken_quoting: unclosed quote"),
        (3, ["2", "ok"], None),
        (4, ["3", "ok"], None),
    ]


def test_csv_unclosed_quote_does_not_swallow_a_later_quoted_record():
    content = b'a,b\n1,"broken\n2,ok\n3,"x\ny"\n'
    _, rows = parse_csv_bytes(content)
    assert rows == [
        (2, ['1,"broken'], "broken_quoting: unclosed quote"),
        (3, ["2", "ok"], None),
        (4, ["3", "x\ny"], None),
    ]


def test_csv_invalid_utf8_row_is_flagged_not_dropped():
    content = "a,b\n1,王伟\n".encode() + "2,王伟\n".encode("gbk") + b"3,ok\r\n"
    _, rows = parse_csv_bytes(content)
    assert [(n, err) for n, _, err in rows] == [
        (2, None),
        (3, "invalid_encoding: bytes that are not UTF-8"),
        (4, None),
    ]


def test_csv_bom_and_empty_file():
    assert parse_csv_bytes(b"") == ([], [])
    assert parse_csv_bytes("\ufeffa,b\n".encode()) == (["a", "b"], [])


def test_jsonl_keys_values_and_errors():
    content = (
        b'{"id": "1", "score": 90, "items": {"a": 1}, "ok": true}\n'
        b"not json\n"
        b"[1, 2]\n"
        b'{"id": "4", "extra": null}\n'
    )
    keys, rows = parse_jsonl_bytes(content)
    assert keys == ["id", "score", "items", "ok", "extra"]
    assert rows == [
        (1, ["1", "90", '{"a": 1}', "true", None], None),
        (2, ["not json"], "invalid_json: Expecting value at column 1"),
        (3, ["[1, 2]"], "invalid_json: a line must hold one JSON object"),
        (4, ["4", None, None, None, None], None),
    ]


def test_csv_in_gbk_gb18030_and_utf8_with_bom():
    text = "客户,电话,地址\r\n王伟,138-0013-8000,\"广州市\n天河区\"\r\n李𠀀,13900000000,深圳\r\n"
    # GBK cannot hold the rare character; GB18030 (its superset) can.
    gbk = text.replace("𠀀", "娜").encode("gbk")
    header, rows = parse_csv_bytes(gbk, encoding="gbk")
    assert header == ["客户", "电话", "地址"]
    assert rows == [(2, ["王伟", "138-0013-8000", "广州市\n天河区"], None), (4, ["李娜", "13900000000", "深圳"], None)]
    header, rows = parse_csv_bytes(text.encode("gb18030"), encoding="gb18030")
    assert rows[1] == (4, ["李𠀀", "13900000000", "深圳"], None)
    header, rows = parse_csv_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert header == ["客户", "电话", "地址"] and rows[1][1][0] == "李𠀀"
    # A GBK file read as UTF-8: every row with Chinese text is reported, none is dropped.
    _, rows = parse_csv_bytes(gbk)
    assert [(n, error) for n, _, error in rows] == [(2, "invalid_encoding: bytes that are not UTF-8"), (4, "invalid_encoding: bytes that are not UTF-8")]


def _workbook(rows: list[list[object]]) -> bytes:
    import io

    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_first_sheet_as_text_with_excel_row_numbers():
    import datetime as dt

    from ingestion.parsing import parse_xlsx_bytes

    content = _workbook([
        ["mobile", "id_number", "channel", "opt_in", "updated_at"],
        [13800138000, "110105194912310021", "sms", True, dt.datetime(2025, 1, 1, 8, 30)],
        [None, None, None, None, None],  # an empty row is no record
        ["+86 139 0000 0000", None, "phone", False, dt.date(2025, 2, 1)],
        ["13700000000", None, "sms", False, dt.date(2025, 2, 1), "surplus"],
    ])
    header, rows = parse_xlsx_bytes(content)
    assert header == ["mobile", "id_number", "channel", "opt_in", "updated_at"]
    assert rows == [
        (2, ["13800138000", "110105194912310021", "sms", "true", "2025-01-01 08:30:00"], None),
        (4, ["+86 139 0000 0000", None, "phone", "false", "2025-02-01"], None),
        (5, ["13700000000", None, "sms", "false", "2025-02-01"], "column_count: expected 5 fields, found more"),
    ]
    assert parse_xlsx_bytes(b"PK not a workbook")[1][0][2].startswith("unreadable_workbook:")


def test_sources_md_is_the_contract():
    """SOURCES.md is written from the contracts; regenerate it when a contract changes."""
    from pathlib import Path

    from ingestion.contract_doc import render_sources

    path = Path(__file__).resolve().parents[2] / "SOURCES.md"
    assert path.read_text(encoding="utf-8") == render_sources(), "run: python -m ingestion.contract_doc > SOURCES.md"


def test_a_read_failure_is_described_without_the_bytes_it_quotes():
    from ingestion.errors import read_failure

    class ParseError(Exception):
        def getCondition(self):
            return "MALFORMED_RECORD_IN_PARSING"

    assert read_failure(ValueError("cannot parse '13912345678,王伟'")) == "ValueError"
    assert read_failure(ParseError("record: 13912345678,王伟")) == "ParseError: MALFORMED_RECORD_IN_PARSING"


def test_csv_lines_read_in_one_pass_give_what_reading_them_one_by_one_gives():
    """Runs of lines that close their quotes are split in one pass; a run holding a line the
    reader refuses, bytes that do not decode, or a line closing as many quotes as it opens yet
    ending inside a quoted field (`b"c,"d`: the first quote is text) falls back to one line
    at a time. Every case in one file, compared with the record-by-record reading."""
    from ingestion.parsing import _lines, csv_header, csv_record, gc_paused

    content = (
        b"a,b,c\n1,x,y\n2,short\n   \n3,\"q\"\"uoted\",z\n"
        b'4,"two\nlines",z\n5,"a"b,c\n6,x,y\r\n'
    ) + "7,王伟,z\n".encode("gbk") + b'8,"open\n9,x,y\n\n10,"",\n11,x,y,z\n12,b"c,"d\nx",y"z\n13,x,y\n'
    lines = _lines(content)
    header = csv_header(lines[0])
    expected, i = [], 1
    while i < len(lines):
        i, row = csv_record(lines, i, header)
        if row is not None:
            expected.append(row)
    with gc_paused():
        got = parse_csv_bytes(content)
    assert got == (header, expected)
    assert [(n, e.split(":")[0] if e else None) for n, _, e in got[1]] == [
        (2, None), (3, "column_count"), (5, None), (6, None), (8, "broken_quoting"), (9, None), (10, "invalid_encoding"),
        (11, "broken_quoting"), (12, None), (14, None), (15, "column_count"), (16, "broken_quoting"), (17, "column_count"),
        (18, None),
    ]
