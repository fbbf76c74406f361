"""The platform's expected failures: one base class, one exit code each.

Anything raised as a `CdpError` is a failure the user can act on (a wrong value, a missing
input, a rejected batch): the CLI prints its one-line message and exits with its class's
code, no traceback. Anything else is a bug and keeps its traceback. `EXIT_CODES` (and the
README's table, checked by a test) is built from the classes below.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = [
    "CdpError",
    "ConcurrentWriteError",
    "ConfigurationError",
    "DataRejectedError",
    "EXIT_CODES",
    "MissingInputError",
    "NotFoundError",
    "PartialFailureError",
    "UsageError",
    "closest",
]


class CdpError(Exception):
    """An expected failure with a message that names the file, table, key or value at fault."""

    exit_code = 2
    meaning = "usage: unknown command, option or value"


class UsageError(CdpError):
    """A command was given a value that names nothing known (a feed, campaign, dealer, ...)."""


class PartialFailureError(CdpError):
    """Some of the work failed and was reported; the rest was written."""

    exit_code = 1
    meaning = "done in part: some work failed and was reported, the rest was written"


class ConfigurationError(CdpError):
    """A profile, feeds or campaigns file is missing, unreadable or invalid."""

    exit_code = 3
    meaning = "configuration file missing or invalid"


class MissingInputError(CdpError):
    """A table a step reads is not in the lake yet."""

    exit_code = 4
    meaning = "not ready: a table the step reads is not in the lake yet"


class DataRejectedError(CdpError):
    """A batch broke a hard rule or failed its expectation suite; nothing of it was written."""

    exit_code = 5
    meaning = "rejected: data broke a hard rule or failed its expectations"


class NotFoundError(CdpError):
    """A lookup matched nothing."""

    exit_code = 6
    meaning = "not found: a lookup matched nothing"


class ConcurrentWriteError(CdpError):
    """Another writer committed to the same table first; running again is safe."""

    exit_code = 75
    meaning = "try again: a concurrent writer changed the same table"


EXIT_CODES = {
    0: "done",
    **{
        error.exit_code: error.meaning
        for error in (PartialFailureError, UsageError, ConfigurationError, MissingInputError, DataRejectedError, NotFoundError,
                      ConcurrentWriteError)
    },
}


def closest(value: str, known: Sequence[str]) -> str:
    """A hint naming the known value nearest to a mistyped one, or listing them all."""
    near = difflib.get_close_matches(value, list(known), n=1, cutoff=0.5)
    return f"did you mean {near[0]!r}?" if near else f"choose from {', '.join(known)}"
