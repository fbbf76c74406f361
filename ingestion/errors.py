"""Errors that stop the ingest of a feed (hard rules)."""

from __future__ import annotations

from cdp.errors import DataRejectedError

__all__ = ["FeedError", "read_failure"]


class FeedError(DataRejectedError):
    """A feed broke a hard rule; nothing of the feed was written.

    The message names the feed, the file (when one is to blame) and the rule.
    """

    def __init__(self, feed: str, rule: str, detail: str, file: str | None = None) -> None:
        self.feed, self.rule, self.detail, self.file = feed, rule, detail, file
        where = f" file {file}:" if file else ""
        super().__init__(f"feed {feed}:{where} rule {rule}: {detail}")


def read_failure(exc: BaseException) -> str:
    """What went wrong reading a file, without quoting the file: the exception class and,
    for Spark's errors, its error condition. A parser's message can carry the bytes it
    choked on, which may be a customer's mobile or name."""
    condition = getattr(exc, "getCondition", None)
    try:
        code = condition() if callable(condition) else None
    except Exception:  # noqa: BLE001 - a Py4J error without a condition
        code = None
    return f"{type(exc).__name__}: {code}" if code else type(exc).__name__
