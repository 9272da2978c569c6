"""A session's diff, computed once per change: the watches that tell whether anything it
is made of changed, and the last diff, kept until then.

A snapshot's tree is the worktree as `git add --all` sees it on top of HEAD, so a diff
can change only when a worktree file changes (the tree watch) or the session's HEAD,
refs, config or ignore rules do (a watch of those names in its `.git`). Both counters
move at once on an inotify event; `generation()` first reads the events already queued,
so any write finished before a request counts. A diff taken at generation g stays the
session's diff while the generation is g. When a change could go unseen (polling, a
skipped directory git does not ignore, changed ignore rules, an in-place session) there
is no generation and every diff is computed, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import config as config_mod
from workbench.core.diff_model import Diff
from workbench.core.models import Session
from workbench.core.review import CONTEXT
from workbench.core.session_repo import Snapshot
from workbench.core.watch import TreeWatcher, ignored_dirs
from workbench.daemon.session_git import SessionGit

# What of a session's .git a snapshot depends on (objects are named by these; the index
# is not read once the snapshot keeps its own).
GIT_TOP = ("HEAD", "refs", "packed-refs", "config", "info", "commondir")
GIT_RULES = ("exclude", "config", "attributes")
MAX_PAGE_BYTES = 24 << 20  # encoded reply pages kept, over all sessions
MAX_PAGES = 16  # per session: the pages of a few kinds of request (CLI, UI, stat)
# Whole diffs kept, over all sessions, in changed lines (a kept line costs ~100-200 bytes
# of Python objects): without a bound, 30 sessions' diffs stayed in the daemon for good.
# The least recently used session's diff goes first; it is computed again when asked.
MAX_KEPT_LINES = 60_000
# Not asked for (nor refreshed) this long, a session's kept diff shrinks to the snapshot
# it was taken of: its encoded pages and parsed files (up to MAX_PAGE_BYTES and
# MAX_KEPT_LINES over all sessions) are freed, and the next request diffs that snapshot
# again unless the worktree changed since: the tree diff only, no new snapshot (2,000
# files: ~205 ms against 145 for git's own diff of the two commits, docs/performance.md;
# a few files: a few ms). An idle daemon then holds no diff nobody is reading.
IDLE_S = 30.0
# A diff asked for while the session's watch is still starting waits this long for it: with
# no generation yet, the diff could not be kept and the next request would make it again.
WATCH_START_WAIT_S = 5.0
# (watch, changes): a new watch (after the ignore rules changed) never repeats an old one's
Generation = tuple[int, int]
_watches = itertools.count(1)


class SessionWatch:
    """A session's worktree and the parts of its .git that a snapshot reads, watched."""

    def __init__(self, root: Path, on_change: Callable[[], None], *, in_place: bool = False) -> None:
        self.root = root
        self.number = next(_watches)
        self.replaced = False  # a new watch is starting in its place
        self.tree = TreeWatcher(root, on_change)
        self.started = asyncio.Event()  # `start` has finished (watching, polling or failed)
        gitdir = root / ".git"
        self.gitdir: TreeWatcher | None = None
        # A private session's .git is a directory of its own; an in-place session's
        # diff reads the main checkout's index, which is not watched.
        if not in_place and gitdir.is_dir() and not gitdir.is_symlink():
            self.gitdir = TreeWatcher(gitdir, on_change, top=GIT_TOP, rules=GIT_RULES)

    async def start(self) -> None:
        try:
            self.tree.skip = await asyncio.to_thread(ignored_dirs, self.root)
            await self.tree.start()
            if self.gitdir is not None:
                await self.gitdir.start()
        finally:
            self.started.set()

    @property
    def rules_changed(self) -> bool:
        """Ignore rules changed: the watch should start again to follow what git ignores now."""
        return self.tree.rules_changed or (self.gitdir is not None and self.gitdir.rules_changed)

    def generation(self) -> Generation | None:
        """A count that moves with every change a diff could show; None when one could go
        unseen."""
        self.tree.flush()  # one inotify descriptor: this reads the .git watch's events too
        if self.gitdir is None or not self.tree.complete or not self.gitdir.complete:
            return None
        return self.number, self.tree.changes + self.gitdir.changes

    def close(self) -> None:
        self.tree.close()
        if self.gitdir is not None:
            self.gitdir.close()


@dataclass
class _Entry:
    diff: Diff | None  # None: shrunk (`shrink_idle`); `snap` says what to diff again
    generation: Generation | None
    base: str
    ignore: tuple[str, ...] = ()  # the review-noise patterns it was computed with
    pages: dict[tuple[Any, ...], bytes] = field(default_factory=dict)
    page_bytes: int = 0
    lines: int = 0  # changed lines (and one per file): its share of MAX_KEPT_LINES
    snap: Snapshot | None = None  # the snapshot `diff` is of (None for in-place sessions)
    used_at: float = field(default_factory=time.monotonic)  # last kept, served or paged

    @property
    def tip(self) -> str | None:
        return self.snap.tip if self.snap is not None else None


def _weight(diff: Diff) -> int:
    return sum(f.added + f.removed + 1 for f in diff.files)


class DiffCache:
    """The last whole diff of each session with the generation it was taken at, and the
    reply pages encoded from it. `count(sid)` is how many diffs of the session were
    computed (snapshot and tree diff): tests and benchmarks read it in the `diff` reply.

    Kept pages are bounded (MAX_PAGE_BYTES over all sessions, the oldest session's dropped
    first): the diffs themselves are what a refresh computes anyway."""

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}
        self.computed: dict[str, int] = {}

    def count(self, sid: str) -> int:
        return self.computed.get(sid, 0)

    def get(self, sid: str, generation: Generation | None, base: str, ignore: tuple[str, ...] = ()) -> Diff | None:
        e = self._current(sid, generation, base, ignore)
        return e.diff if e is not None else None

    def _current(self, sid: str, generation: Generation | None, base: str, ignore: tuple[str, ...]) -> _Entry | None:
        e = self.entries.get(sid)
        if e is None or generation is None or e.generation != generation or e.base != base or e.ignore != ignore:
            return None
        return e

    def shrunk_snapshot(self, sid: str, generation: Generation | None, base: str,
                        ignore: tuple[str, ...] = ()) -> Snapshot | None:
        """The snapshot of a shrunk entry that is still the session's: diff it again."""
        e = self._current(sid, generation, base, ignore)
        return e.snap if e is not None and e.diff is None else None

    def put(self, sid: str, diff: Diff, generation: Generation | None, base: str, snap: Snapshot | None,
            ignore: tuple[str, ...] = ()) -> list[Any]:
        """Keep `diff` (of `snap`); returns the entry it replaces in a list, for the caller
        to empty off the event loop (freeing a diff of thousands of files takes a while)."""
        self.computed[sid] = self.computed.get(sid, 0) + 1
        old: list[Any] = [self.entries.pop(sid, None)]
        entry = self.entries[sid] = _Entry(diff, generation, base, ignore, lines=_weight(diff), snap=snap)
        total = sum(e.lines for e in self.entries.values())
        for other_sid in list(self.entries):  # oldest first
            if total <= MAX_KEPT_LINES:
                break
            other = self.entries[other_sid]
            if other is entry:
                continue
            total -= other.lines
            old.append(self.entries.pop(other_sid))
        return old

    def touch(self, sid: str) -> None:
        """The session's entry was used: the last to be dropped."""
        if sid in self.entries:
            e = self.entries[sid] = self.entries.pop(sid)
            e.used_at = time.monotonic()

    def previous(self, sid: str, base: str, ignore: tuple[str, ...] = ()) -> tuple[Diff, str] | None:
        """The last diff of the session and the snapshot it was taken of (to update it
        path by path), whatever changed since."""
        e = self.entries.get(sid)
        if e is None or e.diff is None or e.base != base or e.tip is None or e.ignore != ignore:
            return None
        return e.diff, e.tip

    async def whole_diff(self, s: Session, watch: SessionWatch | None, git: SessionGit) -> Diff:
        """The session's whole diff: the kept one if nothing changed since it was taken,
        else a new snapshot's (updated from the kept one where it can be). The caller holds
        the session's lock."""
        if watch is not None and not watch.started.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch.started.wait(), WATCH_START_WAIT_S)
        generation = watch.generation() if watch is not None else None
        # Two stats when unchanged: a new [review] ignore list makes a new diff.
        ignore = config_mod.review_ignore(Path(s.repo))
        diff = self.get(s.id, generation, s.base_commit, ignore)
        if diff is not None:
            self.touch(s.id)
            return diff
        snap = self.shrunk_snapshot(s.id, generation, s.base_commit, ignore)
        if s.in_place:
            diff = await git.diff(s)
        else:
            previous = None
            if snap is None:
                snap = await git.snapshot(s)
                previous = self.previous(s.id, s.base_commit, ignore)
            diff = await asyncio.to_thread(git.tree_diff, s, snap, CONTEXT, None, previous, ignore)
        # The diff it replaces is freed in the worker too: thousands of files take a while.
        await asyncio.to_thread(self.put(s.id, diff, generation, s.base_commit, snap, ignore).clear)
        return diff

    def page(self, sid: str, diff: Diff, key: tuple[Any, ...] | None) -> bytes | None:
        """The encoded page `key` of `diff`, if kept."""
        e = self.entries.get(sid)
        if key is None or e is None or e.diff is not diff:
            return None
        body = e.pages.get(key)
        if body is not None:
            e.used_at = time.monotonic()
        return body

    def keep_page(self, sid: str, diff: Diff, key: tuple[Any, ...] | None, body: bytes) -> None:
        e = self.entries.get(sid)
        if key is None or e is None or e.diff is not diff:
            return
        if len(e.pages) >= MAX_PAGES:
            e.page_bytes -= sum(len(b) for b in e.pages.values())
            e.pages.clear()
        e.pages[key] = body
        e.page_bytes += len(body)
        self.touch(sid)
        total = sum(x.page_bytes for x in self.entries.values())
        for other in list(self.entries.values()):
            if total <= MAX_PAGE_BYTES or other is e:
                break
            total -= other.page_bytes
            other.pages.clear()
            other.page_bytes = 0

    def shrink_idle(self, now: float) -> list[Any]:
        """Shrink the entries not used in IDLE_S to their snapshot (in-place sessions' have
        none: dropped); returns what was freed, for the caller to empty off the loop."""
        freed: list[Any] = []
        for sid, e in list(self.entries.items()):
            if e.diff is None or now - e.used_at < IDLE_S:
                continue
            freed.append((e.diff, e.pages))
            if e.snap is None:
                del self.entries[sid]
                continue
            e.diff, e.pages, e.page_bytes, e.lines = None, {}, 0, 0
        return freed

    def seen_tip(self, sid: str, base: str, tip: str) -> None:
        """A snapshot taken for another reason (an edit, a merge): a kept diff of another
        tip is no longer the session's (it still serves to update from)."""
        e = self.entries.get(sid)
        if e is not None and (e.tip != tip or e.base != base):
            e.generation = None

    def drop(self, sid: str) -> None:
        self.entries.pop(sid, None)
        self.computed.pop(sid, None)
