"""SOURCES.md, written from the feed contracts so the document cannot drift from the code.

    python -m ingestion.contract_doc > SOURCES.md
"""

from __future__ import annotations

from cdp.contract import CONTRACTS, PII_COLUMNS, FeedContract

__all__ = ["render_sources"]

_INTRO = """# Source feeds: the data contract

Each dealer feed is a folder of files under `lake.raw_root` (or any path or URI), one row
per record. `conf/feeds.yaml` maps a dealer group's exports onto the canonical columns
below, per feed:

| setting | what it does |
|---|---|
| `path`, `format` | the folder, and `csv`, `jsonl`, `parquet` or `xlsx` (the first sheet of an Excel workbook) |
| `csv.encoding` | `utf-8` (a byte-order mark is dropped), `gbk` or `gb18030`; `csv.delimiter` one character |
| `rename` | the export's column name -> the canonical name below |
| `date_formats` | per column, Spark datetime patterns tried in order |
| `optional_columns` | columns a file may lack even though earlier files of the feed had them |
| `max_bad_row_fraction` | past this share of quarantined rows the whole batch is refused |

Run `cdp feeds check` before the first load of a new dealer's files: it maps every file's
header onto its contract (missing, extra, drift, encoding) without loading anything.

What ingest does with a file:
- a required column missing from the header, a column earlier files of the feed carried
  missing from a later file (schema drift), an unreadable file, or too many bad rows: the
  feed's batch is refused with an error naming the file and rule; other feeds still load;
- a bad row (unparseable line, wrong type, value outside its set or range, text not in the
  file's encoding): quarantined with its rule and line, never dropped;
- columns not in the contract: ignored, with a warning.

Personal data (marked below) never keeps Delta statistics and is masked in every export.
"""


def _kind(contract: FeedContract, column: str) -> str:
    if column in contract.timestamps:
        return "timestamp"
    if column in contract.dates:
        return "date"
    if column in contract.decimals:
        return "decimal" + (" >= 0" if column in contract.non_negative else "")
    if column in contract.integers:
        low_high = contract.ranges.get(column)
        return "integer" + (f" {low_high[0]:g}-{low_high[1]:g}" if low_high else "") + (" >= 0" if column in contract.non_negative else "")
    if column in contract.booleans:
        return "boolean"
    if column in contract.json_objects:
        return "JSON object"
    if column in contract.enums:
        return "one of " + ", ".join(f"`{v}`" for v in contract.enums[column])
    if column in contract.ranges:
        low, high = contract.ranges[column]
        return f"number {low:g}-{high:g}"
    return "text"


def render_sources() -> str:
    """The whole document."""
    parts = [_INTRO]
    for name, contract in CONTRACTS.items():
        parts.append(f"\n## `{name}`\n\nKey: {', '.join(f'`{k}`' for k in contract.keys)} (a re-sent record replaces the earlier one).\n")
        parts.append("| column | type | required | personal data |\n|---|---|---|---|")
        for column in contract.columns:
            required = "yes" if column in contract.required else ""
            personal = "yes" if column in PII_COLUMNS else ""
            parts.append(f"| `{column}` | {_kind(contract, column)} | {required} | {personal} |")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(render_sources(), end="")
