"""Errors that stop the ingest of a feed (hard rules)."""

from __future__ import annotations

from cdp.errors import DataRejectedError

__all__ = ["FeedError"]


class FeedError(DataRejectedError):
    """A feed broke a hard rule; nothing of the feed was written.

    The message names the feed, the file (when one is to blame) and the rule.
    """

    def __init__(self, feed: str, rule: str, detail: str, file: str | None = None) -> None:
        self.feed, self.rule, self.detail, self.file = feed, rule, detail, file
        where = f" file {file}:" if file else ""
        super().__init__(f"feed {feed}:{where} rule {rule}: {detail}")
