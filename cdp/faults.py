"""Seeded fault injection for the reliability suite: the process dies just before its N-th
Delta commit.

Delta commits are atomic, so a job killed anywhere between two commits leaves the lake as a
crash just before the next commit does: files written but not committed are never read.
`crash_before_commit(n)` makes the n-th commit of the current process raise `InjectedCrash`
(a BaseException, so no `except Exception` in the code under test can swallow it, as no
handler survives a kill -9); `counting_commits()` tells how many commits a clean run makes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["InjectedCrash", "before_commit", "counting_commits", "crash_before_commit"]


class InjectedCrash(BaseException):
    """The simulated death of the process."""


@dataclass
class _State:
    seen: int = 0
    crash_at: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_state = _State()


def before_commit(path: str) -> None:
    """Called by `cdp.lake` before every Delta commit (from any thread: ingest loads feeds
    side by side). Once the crash has happened, every later commit dies too, as they would
    in a process that is gone."""
    with _state.lock:
        _state.seen += 1
        seen = _state.seen
    if _state.crash_at is not None and seen >= _state.crash_at:
        raise InjectedCrash(f"injected crash before commit {seen} ({path})")


@contextmanager
def crash_before_commit(n: int) -> Iterator[None]:
    """Within the block, die just before the n-th commit (counted from the block's start)."""
    _state.seen, _state.crash_at = 0, n
    try:
        yield
    finally:
        _state.crash_at = None


@contextmanager
def counting_commits() -> Iterator[_State]:
    """Within the block, count the commits; read `.seen` afterwards."""
    _state.seen, _state.crash_at = 0, None
    yield _state
