"""Audiences job: build every campaign of `conf/campaigns.yaml` (or the ones named) as of a
date, for schedulers. Same as `cdp audience build --all`.

    cdp run audiences [--campaign NAME ...] [--as-of DATE]
"""

from __future__ import annotations

import sys

from jobs import audience

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    argv = list(argv or [])
    names = []
    while "--campaign" in argv:
        at = argv.index("--campaign")
        if at + 1 >= len(argv):
            print("cdp run audiences: --campaign needs a name", file=sys.stderr)
            return 2
        names.append(argv[at + 1])
        del argv[at : at + 2]
    return audience.main(["build", *(names or ["--all"]), *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
