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
