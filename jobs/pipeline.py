"""The whole pipeline in order, as far as it is built: ingest, resolve."""

from __future__ import annotations

import sys

from jobs import ingest, resolve

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    status = ingest.main(argv)
    if status:
        return status
    return resolve.main(argv)


if __name__ == "__main__":
    sys.exit(main())
