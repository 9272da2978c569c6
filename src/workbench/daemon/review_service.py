"""Diff review in the daemon: the ReviewService extension and what it does for the review
methods (review_methods.py) and attempts (attempts.py).

The service watches every session's worktree (diff_cache.SessionWatch), recomputes the
diff off the event loop when files change, keeps it until the next change (DiffCache) and
publishes DiffChanged; it follows the bus (daemon/bus.py)
to watch new sessions, drop removed ones and start the check (review_checks.py) when a
session goes to `review` (after the automatic fix rounds, check_fix_rounds.py, if any).
Review actions (marks, rejections, comments, undo, the review message, merge, discard) run
under the session's lock, on the snapshot the daemon imported, with edits carried out in
the session's sandbox. Feedback reaches the agent
through the manager's `deliver(session, text)`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import config as config_mod
from workbench.core import merge, session_repo
from workbench.core import review as rv
from workbench.core.diff_model import Diff
from workbench.core.models import Session, SessionState
from workbench.daemon import review_merge
from workbench.daemon.bus import DiffChanged, SessionChanged, SessionRemoved
from workbench.daemon.check_fix_rounds import FixRounds
from workbench.daemon.diff_cache import IDLE_S, DiffCache, SessionWatch
from workbench.daemon.extensions import Extension
from workbench.daemon.review_checks import CheckRunner
from workbench.errors import GitError, UsageError, WorkbenchError
from workbench.protocol import review as wire

if TYPE_CHECKING:
    from workbench.daemon.api import Daemon

log = logging.getLogger(__name__)

REFRESH_MIN_S = 0.3


def service(d: Daemon) -> ReviewService:
    return d.manager.require_extension(ReviewService, "diff review")


@dataclass(frozen=True)
class ReviewMessage:
    """The review message of the pending comments and rejections; `via` once sent."""

    text: str
    rejections: int
    comments: int
    via: str | None = None


class ReviewService(Extension):
    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self.mgr = daemon.manager
        self.git = daemon.manager.git
        self.states: dict[str, rv.ReviewState] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.watchers: dict[str, SessionWatch] = {}
        self.cache = DiffCache()
        self.stats: dict[str, dict[str, Any]] = {}  # files, added, removed, digest
        self._refreshing: set[str] = set()
        self._dirty: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.loop = asyncio.get_running_loop()
        self.checks = CheckRunner(daemon, self.state, self._spawn)
        self.fix_rounds = FixRounds(daemon, self.checks, self._spawn)
        daemon.manager.bus.subscribe(SessionChanged, self._on_session_changed)
        daemon.manager.bus.subscribe(SessionRemoved, lambda e: self.forget(e.session.id))
        self._spawn(self._shrink_idle_diffs())

    # plumbing

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # an event published from a worker thread
            self.loop.call_soon_threadsafe(self._spawn, coro)
            return
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("review task failed", exc_info=task.exception())

    def state(self, sid: str) -> rv.ReviewState:
        st = self.states.get(sid)
        if st is None:
            st = self.states[sid] = rv.ReviewState.load(sid)
        return st

    def lock(self, sid: str) -> asyncio.Lock:
        return self.locks.setdefault(sid, asyncio.Lock())

    async def after_recover(self, prior: Mapping[str, SessionState]) -> None:
        # Recovered sessions publish nothing unless their state changes: watch them all now.
        # Later sessions are watched from their first SessionChanged; one whose worktree was
        # not there yet is retried on each of its changes (no polling needed).
        for s in list(self.mgr.sessions.values()):
            self._spawn(self.ensure(s))

    def _on_session_changed(self, e: SessionChanged) -> None:
        s = e.session
        if s.id not in self.mgr.sessions:
            return
        if s.id not in self.watchers:
            self._spawn(self.ensure(s))
        if e.new_state == SessionState.REVIEW and e.old_state != SessionState.REVIEW:
            self.checks.on_turn_finished(s)

    async def ensure(self, s: Session, *, again: bool = False) -> None:
        """Watch the session's worktree and publish its stats (idempotent); `again` replaces
        the watch by a new one once that one is running."""
        old = self.watchers.get(s.id)
        root = Path(s.worktree)
        if (old is not None and not again) or s.id not in self.mgr.sessions or not root.is_dir():
            return
        w = SessionWatch(root, partial(self.kick, s.id), in_place=s.in_place)
        if old is None:
            self.watchers[s.id] = w
        else:
            # First: inotify gives the new watch the old one's descriptors for the same
            # directories, which closing the old one afterwards would remove. Closed, the
            # old watch says nothing is known until the new one is in its place.
            old.close()
        await w.start()
        if s.id not in self.mgr.sessions or self.watchers.get(s.id) not in (old, w):
            w.close()
            if s.id not in self.mgr.sessions:  # removed meanwhile
                self.forget(s.id)
            return
        self.watchers[s.id] = w
        self.kick(s.id)

    def forget(self, sid: str) -> None:
        w = self.watchers.pop(sid, None)
        if w is not None:
            w.close()
        self.git.forget(sid)
        self.cache.drop(sid)
        self.stats.pop(sid, None)
        self.states.pop(sid, None)
        self.locks.pop(sid, None)
        self.checks.forget(sid)
        rv.ReviewState.delete(sid)

    def close(self) -> None:
        for w in self.watchers.values():
            w.close()
        self.watchers.clear()
        for t in list(self._tasks):
            t.cancel()

    async def _shrink_idle_diffs(self) -> None:
        """Now and then, free the kept diffs nobody has asked for lately (diff_cache.IDLE_S);
        freed in a worker: a diff of thousands of files takes a while."""
        while True:
            # Often enough that a diff goes within IDLE_S + 5 s (at IDLE_S / 2 a soak's end
            # reading, 40 s after the last request, still found diffs kept); a sweep is a
            # walk over the entries.
            await asyncio.sleep(IDLE_S / 6)
            freed = self.cache.shrink_idle(time.monotonic())
            if freed:
                await asyncio.to_thread(freed.clear)

    # live diff

    def kick(self, sid: str) -> None:
        """Files changed (or a review action ran): recompute the diff soon."""
        w = self.watchers.get(sid)
        s = self.mgr.sessions.get(sid)
        if w is not None and w.rules_changed and s is not None and not w.replaced:
            # What git ignores changed: watch the tree as it is now (ensure kicks again).
            w.replaced = True
            self._spawn(self.ensure(s, again=True))
            return
        if sid in self._refreshing:
            self._dirty.add(sid)
            return
        self._refreshing.add(sid)
        self._spawn(self._refresh_loop(sid))

    async def _refresh_loop(self, sid: str) -> None:
        try:
            while True:
                self._dirty.discard(sid)
                started = time.monotonic()
                await self.refresh(sid)
                if sid not in self._dirty:
                    return
                # A snapshot runs a helper in the sandbox: while the agent keeps writing,
                # refresh at most every REFRESH_MIN_S, or as often as one takes.
                await asyncio.sleep(max(REFRESH_MIN_S, time.monotonic() - started))
        finally:
            self._refreshing.discard(sid)

    async def refresh(self, sid: str) -> Diff | None:
        s = self.mgr.sessions.get(sid)
        if s is None or not Path(s.worktree).is_dir():
            return None
        try:
            async with self.lock(sid):
                diff = await self._whole_diff(s)
        except WorkbenchError as e:
            log.info("review: diff of %s failed: %s", sid, e)
            return None
        self.store_stat(s, diff)
        return diff

    async def diff(self, s: Session, paths: Sequence[str] | None = None) -> Diff:
        """The session's diff now (only `paths` if given; the whole one updates its stats)."""
        async with self.lock(s.id):
            diff = await (self.git.diff(s, paths=paths) if paths else self._whole_diff(s))
        if not paths:
            self.store_stat(s, diff)
        return diff

    async def _whole_diff(self, s: Session) -> Diff:
        """The kept diff if nothing changed since it was taken, else a new one (lock held)."""
        return await self.cache.whole_diff(s, self.watchers.get(s.id), self.git)

    async def _snapshot(self, s: Session) -> session_repo.Snapshot:
        snap = await self.git.snapshot(s)
        self.cache.seen_tip(s.id, s.base_commit, snap.tip)
        return snap

    def store_stat(self, s: Session, diff: Diff) -> None:
        """Remember the diff's stats; publish DiffChanged (and the session) if they moved."""
        files, added, removed = diff.stat()
        stat = {"files": files, "added": added, "removed": removed}
        old = self.stats.get(s.id)
        if old is not None and old.get("digest") == diff.digest:
            return
        self.stats[s.id] = {**stat, "digest": diff.digest, "at": time.time()}
        if s.id not in self.mgr.sessions:
            return
        self.mgr.bus.publish(DiffChanged(s, stat, diff.digest))
        if old is None or any(old.get(k) != v for k, v in stat.items()):
            self.mgr.publish_session(s)

    def describe(self, s: Session) -> dict[str, Any]:
        # Only sessions being watched have a diff and a check to show.
        out = self.describe_extra(s.id) if s.id in self.watchers else {}
        out.update(self.fix_rounds.describe(s))
        return out

    def describe_extra(self, sid: str) -> dict[str, Any]:
        """Keys added to the session's description (ls, session events)."""
        out: dict[str, Any] = {}
        st = self.stats.get(sid)
        if st is not None:
            out.update(added=st["added"], removed=st["removed"], files_changed=st["files"])
        rs = self.states.get(sid)
        out.update(self.checks.describe(sid, rs))
        if rs is not None:
            rej, com = rs.pending()
            out["review_pending"] = len(rej) + len(com)
        return out

    # review actions

    async def mark(self, s: Session, hunk: str | None, path: str | None, reviewed: bool) -> list[str]:
        """Mark a hunk or a whole file (un)reviewed; the keys whose mark changed."""
        async with self.lock(s.id):
            diff = await self._whole_diff(s)
            st = self.state(s.id)
            changed = rv.mark(st, diff, hunk=hunk, path=path, reviewed=reviewed)
            await asyncio.to_thread(st.save)
        if changed:
            self.mgr.record(s, "review_mark", {"hunk": hunk, "path": path, "reviewed": reviewed, "keys": changed})
        return changed

    async def reject(self, s: Session, hunk: str, reason: str) -> rv.Rejection:
        """Reverse the hunk in the worktree."""
        rej = await self._edit(s, rv.reject, hunk, reason)
        self.mgr.record(s, "review_reject", {"hunk": hunk, "path": rej.path, "reason": rej.reason,
                                             "header": rej.header, "whole_file": rej.whole_file})
        self.kick(s.id)
        return rej

    async def revert_file(self, s: Session, path: str, reason: str) -> rv.Rejection:
        """Put the whole file back as in base."""
        rej = await self._edit(s, rv.revert_file, path, reason)
        self.mgr.record(s, "review_revert_file", {"path": rej.path, "old_path": rej.old_path,
                                                  "reason": rej.reason})
        self.kick(s.id)
        return rej

    async def _edit(self, s: Session, plan: Callable[..., tuple[rv.Rejection, dict[str, Any]]],
                    *args: Any) -> rv.Rejection:
        """Plan a rejection on the imported snapshot, carry it out inside the sandbox, record it."""
        _no_in_place_edits(s)
        async with self.lock(s.id):
            snap = await self._snapshot(s)
            diff = await asyncio.to_thread(self.git.tree_diff, s, snap, rv.CONTEXT)
            st = self.state(s.id)
            tree = session_repo.SnapshotTree(Path(s.repo), snap.tip)
            rej, request = await asyncio.to_thread(plan, st, diff, *args, tree)
            reply = await self.git.edit(s, request)
            rv.applied(st, rej, reply)
            await asyncio.to_thread(st.save)
        return rej

    async def comment(self, s: Session, path: str, line: int, end_line: int | None, text: str) -> rv.Comment:
        _no_in_place_edits(s)
        async with self.lock(s.id):
            snap = await self._snapshot(s)
            diff = await asyncio.to_thread(self.git.tree_diff, s, snap, rv.CONTEXT, [path])
            st = self.state(s.id)
            tree = session_repo.SnapshotTree(Path(s.repo), snap.tip)
            cm = await asyncio.to_thread(rv.comment, st, diff, path, line, text, end_line, tree)
            await asyncio.to_thread(st.save)
        self.mgr.record(s, "review_comment", {"path": cm.path, "line": cm.line, "end_line": cm.end_line,
                                              "text": cm.text, "hunk": cm.hunk})
        self.mgr.publish_session(s)
        return cm

    async def undo(self, s: Session) -> dict[str, Any]:
        """Undo the last review action not yet sent to the agent; what was undone."""
        async with self.lock(s.id):
            st = self.state(s.id)
            request = rv.undo_request(st)
            if request is not None:
                _no_in_place_edits(s)
                await self.git.edit(s, request)
            res = rv.undo(st)
            await asyncio.to_thread(st.save)
        self.mgr.record(s, "review_undo", res)
        self.kick(s.id)
        self.mgr.publish_session(s)
        return res

    async def review_message(self, s: Session, *, send: bool) -> ReviewMessage:
        """The message of the pending comments and rejections; with `send` it goes to the
        agent and they count as sent."""
        async with self.lock(s.id):
            st = self.state(s.id)
            text = rv.build_message(st)
            rej, com = st.pending()
            msg = ReviewMessage(text, len(rej), len(com))
            if not send:
                return msg
            if not text:
                raise UsageError("nothing to send: no pending comments or rejections",
                                 hint="reject a hunk with a reason or comment on a line first")
            how = await self.mgr.deliver(s, text)
            rv.mark_sent(st)
            await asyncio.to_thread(st.save)
        self.mgr.record(s, "review_sent", {"text": text, "rejections": len(rej), "comments": len(com), "via": how})
        self.mgr.publish_session(s)
        return ReviewMessage(text, len(rej), len(com), how)

    # finish

    async def merge(self, s: Session, strategy: str | None, message: str | None, reviewed: str | None,
                    *, pr: bool) -> wire.MergeResult:
        """Land the session's snapshot on the main checkout's branch (or open a pull request);
        `reviewed` is the digest of the diff the user saw."""
        if s.in_place:
            raise UsageError(f"session {s.name} works in the main checkout; there is no branch to merge",
                             hint=f"commit in {s.repo} with git")
        cfg = await asyncio.to_thread(config_mod.load, Path(s.repo))
        strategy = strategy or cfg.worktree.merge_strategy
        if strategy not in merge.STRATEGIES:
            raise UsageError(f"unknown merge strategy {strategy!r}: use one of {', '.join(merge.STRATEGIES)}")
        message = (message or "").strip() or review_merge.agent_summary(self.d.store, s)
        async with self.lock(s.id):
            base_branch = await asyncio.to_thread(merge.base_branch_of, Path(s.repo))
            if base_branch is None:
                raise GitError(f"the main checkout {s.repo} has a detached HEAD; nothing changed",
                               hint="switch it to the branch to merge into, then merge again")
            snap = await self._snapshot(s)
            review_merge.check_mergeable(s, snap, reviewed)
            if pr:
                res = await asyncio.to_thread(review_merge.open_pr, s, snap, base_branch, message,
                                              cfg.review.ignore)
                self.mgr.record(s, "merge", {"pr": res["pr"], "branch": s.branch, "base_branch": base_branch,
                                             "message": message})
                return {"pr": res["pr"], "commit": res["commit"], "remote": res["remote"], "branch": s.branch,
                        "base_branch": base_branch, "message": message}
            result = await asyncio.to_thread(merge.merge_snapshot, Path(s.repo), s.base_commit, snap.tip,
                                             snap.head, base_branch, strategy, message, cfg.review.ignore)
            warning = await review_merge.after_merge(self.git, s, snap, result.commit, result.merged_snapshot)
            s.base_commit = result.commit
            await asyncio.to_thread(session_repo.set_ref, Path(s.repo), session_repo.ref(s.id, "base"),
                                    result.commit)
            self.d.store.save_session(s)
            st = self.state(s.id)
            st.reset()
            await asyncio.to_thread(st.save)
        data: wire.MergeResult = {"commit": result.commit, "strategy": result.strategy,
                                  "files_changed": result.files_changed, "base_branch": base_branch,
                                  "message": message}
        if warning:
            data["warning"] = warning
        self.mgr.record(s, "merge", data)
        self.kick(s.id)
        self.mgr.publish_session(s)
        return data

    async def discard(self, s: Session) -> wire.DiscardResult:
        """Drop every change of the session (worktree and branch back to its base)."""
        if s.in_place:
            raise UsageError(f"session {s.name} works in the main checkout; workbench will not reset it",
                             hint=f"use git in {s.repo}")
        async with self.lock(s.id):
            before = await self._whole_diff(s)
            await self.git.edit(s, {"op": "reset", "commit": s.base_commit, "keep": False})
            st = self.state(s.id)
            st.reset()
            await asyncio.to_thread(st.save)
        files, added, removed = before.stat()
        data: wire.DiscardResult = {"files": files, "added": added, "removed": removed, "base": s.base_commit}
        self.mgr.record(s, "discard", data)
        self.kick(s.id)
        return data


def _no_in_place_edits(s: Session) -> None:
    if s.in_place:
        raise UsageError(f"session {s.name} works in the main checkout; edit the files there",
                         hint="hunk rejection needs a session with its own worktree")
