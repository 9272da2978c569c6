"""Each session's worktree disk use, for `ls` and the UI.

A worktree is walked the first time its size is asked for; after that the last size is
shown while a background walk refreshes one older than DISK_TTL_S, so neither the event
loop (session events, `get`) nor a CLI `ls` ever waits for a walk again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from workbench.core import worktree as wt
from workbench.core.models import Session

DISK_TTL_S = 10.0  # how long a worktree's measured disk use is shown before it is walked again


class DiskUse:
    def __init__(self, alive: Callable[[str], bool]) -> None:
        self._alive = alive  # whether a session still exists (a walk may end after its removal)
        self._sizes: dict[str, tuple[float, int]] = {}
        self._walks: set[str] = set()  # sessions whose worktree a background walk measures
        self._pool: ThreadPoolExecutor | None = None

    def known(self, sessions: Iterable[Session]) -> bool:
        """Whether asking for these sessions' sizes walks no worktree now."""
        return all(s.in_place or s.id in self._sizes for s in sessions)

    def of(self, s: Session) -> int | None:
        """The worktree's disk use (None for a session working in place)."""
        if s.in_place:
            return None
        hit = self._sizes.get(s.id)
        if hit is None:
            return self.measure(s.id, s.worktree)
        if time.monotonic() - hit[0] >= DISK_TTL_S and s.id not in self._walks:
            self._walks.add(s.id)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="disk-use")
            self._pool.submit(self.measure, s.id, s.worktree)
        return hit[1]

    def measure(self, sid: str, worktree: str) -> int:
        try:
            path = Path(worktree)
            size = wt.disk_usage(path) if path.exists() else 0
            if self._alive(sid):  # not for a session removed meanwhile
                self._sizes[sid] = (time.monotonic(), size)
            return size
        finally:
            self._walks.discard(sid)

    def forget(self, sid: str) -> None:
        self._sizes.pop(sid, None)
