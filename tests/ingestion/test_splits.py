"""A large CSV file read as byte ranges gives, record for record and line for line, what the
whole-file parser gives: wherever the ranges cut, even inside a quoted field, a broken quote or
a malformed row. No JVM: the two passes are run here as the tasks and the driver run them."""

from __future__ import annotations

import random

import pytest

from ingestion.parsing import parse_csv_bytes
from ingestion.splits import parse_range, plan_splits, range_lines, read_header, record_starts, summarise_range

HEADER = b"order_id,dealer_code,note,mobile\n"


def _in_ranges(path: str, size: int, split_bytes: int, delimiter: str = ",", encoding: str = "utf-8"):
    header = read_header(path, delimiter, encoding)
    splits = plan_splits(path, size, split_bytes)
    read = [range_lines(path, s.start, s.end) for s in splits]
    odd = [summarise_range(lines, owned, header, 1 if s.index == 0 else 0, delimiter, encoding) for s, (lines, owned) in zip(splits, read)]
    plan = record_starts([owned for _, owned in read], odd)
    rows = []
    for (lines, _), (first_line, start, stop) in zip(read, plan):
        rows += parse_range(lines, start, stop, first_line, header, delimiter, encoding)
    return header, rows


def _check(tmp_path, content: bytes, sizes, encoding: str = "utf-8"):
    path = tmp_path / "feed.csv"
    path.write_bytes(content)
    expected = parse_csv_bytes(content, ",", encoding)
    for split_bytes in sizes:
        assert _in_ranges(str(path), len(content), split_bytes, encoding=encoding) == expected, split_bytes
    return expected


def test_ranges_cut_anywhere_give_the_whole_file_records(tmp_path):
    body = (
        b'SO1,GZ001,"a note\nover two lines",13800138000\r\n'
        b"\n"  # a blank line
        b"SO2,GZ001,plain,13800138001\n"
        b'SO3,GZ001,"quote never closed,13800138002\n'  # broken: swallows lines, then gives up
        b"SO4,GZ001,too,many,fields\n"  # malformed: column count
        b'SO5,GZ001,"ok ""quoted"" text",13800138003\n'
        b'SO6,SH001,"three\nline\nnote",13800138004\n'
        b"SO7,SH001,\xb9\xe3\xd6\xdd,13800138005\n"  # not UTF-8
        b"SO8,SH001,last line without a newline,13800138006"
    )
    content = b"\xef\xbb\xbf" + HEADER + body
    header, rows = _check(tmp_path, content, range(1, len(content) + 2))
    assert header == ["order_id", "dealer_code", "note", "mobile"]
    by_line = {n: (values, error) for n, values, error in rows}
    assert by_line[2][0][2] == "a note\nover two lines" and by_line[2][1] is None
    assert by_line[6][1] == "broken_quoting: unclosed quote" and by_line[7][1].startswith("column_count")
    assert by_line[9][0][2] == "three\nline\nnote" and by_line[12][1].startswith("invalid_encoding")
    assert max(by_line) == 13


def test_an_unclosed_quote_past_the_record_limit_and_a_cut_inside_it(tmp_path):
    """A quote left open on a line swallows up to 50 lines before it counts as broken: ranges
    that start inside those lines must not take them for records, nor skip the ones after."""
    lines = [b'SO0,GZ001,"opened here,13800138000'] + [f"SO{i},GZ001,x,1380013{i:04d}".encode() for i in range(1, 70)]
    content = HEADER + b"\n".join(lines) + b"\n"
    _, rows = _check(tmp_path, content, [17, 64, 100, 333, 1000, 2048])
    assert rows[0][2] == "broken_quoting: unclosed quote" and len(rows) == 70


@pytest.mark.parametrize("seed", range(6))
def test_fuzzed_files_in_ranges_of_every_size(tmp_path, seed):
    rng = random.Random(seed)
    pieces = [b"plain", b'"quoted, with comma"', b'"two\nlines"', b'"open', b'close"', b"", b'""', b"\xe4\xb8\xad\xe6\x96\x87", b"\xff"]
    lines = []
    for i in range(rng.randint(30, 120)):
        fields = [f"SO{i}".encode(), b"GZ001", rng.choice(pieces), rng.choice(pieces)]
        if rng.random() < 0.1:
            fields.append(b"extra")
        line = b",".join(fields)
        lines.append(line + (b"\r" if rng.random() < 0.2 else b""))
        if rng.random() < 0.05:
            lines.append(b"")
    content = HEADER + b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
    sizes = sorted({rng.randint(1, len(content)) for _ in range(25)} | {1, 2, len(content)})
    _check(tmp_path, content, sizes)


def test_gbk_files_cut_in_ranges(tmp_path):
    content = "order_id,dealer_code,note,mobile\n".encode("gbk") + "\n".join(
        f'SO{i},GZ001,"广州\n{i}号",1380013{i:04d}' for i in range(40)
    ).encode("gbk")
    _check(tmp_path, content, [3, 50, 101, 500], encoding="gbk")


def test_plan_covers_the_file_once():
    splits = plan_splits("f.csv", 1000, 300)
    assert [(s.start, s.end) for s in splits] == [(0, 300), (300, 600), (600, 900), (900, 1000)]
    assert [(s.start, s.end) for s in plan_splits("f.csv", 300, 300)] == [(0, 300)]


@pytest.mark.parametrize("seed", range(3))
def test_json_lines_in_ranges_keep_the_whole_files_keys_and_lines(tmp_path, seed):
    """Columns of a JSON Lines file are its keys in first-seen order over the whole file: a key
    first seen late, in the last range, is still a column of every record."""
    from ingestion.parsing import parse_jsonl_bytes
    from ingestion.splits import jsonl_keys, merged_keys, parse_jsonl_range

    rng = random.Random(seed)
    lines = []
    for i in range(rng.randint(20, 60)):
        pick = rng.random()
        if pick < 0.1:
            lines.append(b"{not json")
        elif pick < 0.15:
            lines.append(b"")
        elif pick < 0.2:
            lines.append(b'["a list"]')
        else:
            keys = rng.sample(["lead_id", "dealer_code", "name", "mobile", "note"], rng.randint(1, 5))
            lines.append(("{" + ", ".join(f'"{k}": "{k}{i}"' for k in keys) + "}").encode())
    lines.append(b'{"late_key": 1}')
    content = b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\n"
    path = tmp_path / "feed.jsonl"
    path.write_bytes(content)
    expected = parse_jsonl_bytes(content)
    for split_bytes in sorted({rng.randint(1, len(content)) for _ in range(15)} | {1, len(content)}):
        read = [range_lines(str(path), s.start, s.end) for s in plan_splits(str(path), len(content), split_bytes)]
        keys = merged_keys([jsonl_keys(lines, owned) for lines, owned in read])
        rows, first = [], 0
        for lines, owned in read:
            rows += parse_jsonl_range(lines, owned, first, keys)
            first += owned
        assert (keys, rows) == expected, split_bytes
    assert expected[0][-1] == "late_key"
