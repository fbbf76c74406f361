from __future__ import annotations

from pathlib import Path

import pytest

from cdp.config import FeedConfig
from cdp.lake import Lake


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(str(tmp_path / "lake"))


def feed_dir(tmp_path: Path, name: str, files: dict[str, bytes]) -> str:
    folder = tmp_path / "raw" / name
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, content in files.items():
        (folder / file_name).write_bytes(content)
    return str(folder)


SURVEY_FEED = FeedConfig(path="surveys", format="csv", date_formats={"surveyed_at": ["yyyy-MM-dd HH:mm:ss"]}, max_bad_row_fraction=1.0)
