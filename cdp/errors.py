"""The platform's expected failures: one base class, one exit code each.

Anything raised as a `CdpError` is a failure the user can act on (a wrong value, a missing
input, a rejected batch): the CLI prints its one-line message and exits with its code, no
traceback. Anything else is a bug and keeps its traceback.

| exit code | meaning |
|---|---|
| 0 | done |
| 1 | done in part: some work failed (e.g. a feed stopped by a hard rule), the rest was written |
| 2 | usage: unknown command, option or value (a feed, campaign, segment, dealer, model version) |
| 3 | configuration: a profile, feeds or campaigns file is missing or invalid |
| 4 | not ready: an input the step needs is not in the lake yet (run the step named in the message) |
| 5 | rejected: the data broke a hard rule or failed its expectations; nothing of it was written |
| 6 | not found: a lookup (customer, list, version) matched nothing |
| 75 | try again: a concurrent writer changed the same table; re-running is safe |
"""

from __future__ import annotations

__all__ = [
    "CdpError",
    "ConcurrentWriteError",
    "DataRejectedError",
    "MissingInputError",
    "NotFoundError",
    "PartialFailureError",
    "UsageError",
    "EXIT_CODES",
]


class CdpError(Exception):
    """An expected failure with a message that names the file, table, key or value at fault."""

    exit_code = 2


class UsageError(CdpError):
    """A command was given a value that names nothing known (a feed, campaign, dealer, ...)."""

    exit_code = 2


class MissingInputError(CdpError):
    """A table a step reads is not in the lake yet."""

    exit_code = 4


class DataRejectedError(CdpError):
    """A batch broke a hard rule or failed its expectation suite; nothing of it was written."""

    exit_code = 5


class NotFoundError(CdpError):
    """A lookup matched nothing."""

    exit_code = 6


class PartialFailureError(CdpError):
    """Some of the work failed and was reported; the rest was written."""

    exit_code = 1


class ConcurrentWriteError(CdpError):
    """Another writer committed to the same table first; running again is safe."""

    exit_code = 75


EXIT_CODES = {
    0: "done",
    1: "done in part: some work failed and was reported, the rest was written",
    2: "usage: unknown command, option or value",
    3: "configuration file missing or invalid",
    4: "not ready: a table the step reads is not in the lake yet",
    5: "rejected: data broke a hard rule or failed its expectations",
    6: "not found: a lookup matched nothing",
    75: "try again: a concurrent writer changed the same table",
}
