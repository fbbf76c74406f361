"""The whole pipeline in order, as far as it is built: ingest."""

from __future__ import annotations

import sys

from jobs import ingest

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    return ingest.main(argv)


if __name__ == "__main__":
    sys.exit(main())
