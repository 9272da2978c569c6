"""Diff review in the daemon: live diffs, hunk actions, review messages, merge and
discard, the per-repo check, and attempts (N sessions on one prompt).

`setup(daemon)` returns a ReviewService, the daemon's extension (handlers find it with
`service(d)`); the socket methods register on import. The service watches every
session's worktree (core.watch), recomputes the diff off the event loop when files change
and publishes DiffChanged; it follows the bus (daemon/bus.py) to watch new sessions, drop
removed ones and start the check when a session goes to `review`. Feedback reaches the
agent through the manager's `deliver(session, text)`.

Over 600 lines because it holds the review service, its socket handlers and attempts; the
split along those seams is issue 13, item 4.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import time
from collections.abc import Callable, Coroutine, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import config as config_mod
from workbench.core import check as check_mod
from workbench.core import merge, session_repo
from workbench.core import review as rv
from workbench.core.diff_model import Diff, FileDiff
from workbench.core.diff_render import diff_stat_text
from workbench.core.escapes import strip_escapes
from workbench.core.git_paths import check_path
from workbench.core.git_runner import run_git, stderr_text
from workbench.core.models import Session, SessionState
from workbench.core.tree_diff import digest_of
from workbench.core.watch import TreeWatcher, ignored_dirs
from workbench.daemon.api import legacy_method as method
from workbench.daemon.bus import DiffChanged, SessionChanged, SessionRemoved
from workbench.daemon.extensions import Extension
from workbench.daemon.hub import Client
from workbench.daemon.protocol import Params
from workbench.daemon.sessions import CreateRequest
from workbench.errors import GitError, UsageError, WorkbenchError

if TYPE_CHECKING:
    from workbench.daemon.api import Daemon

log = logging.getLogger(__name__)

REPLY_BUDGET = 2_500_000  # bytes of hunk lines in one reply (the wire limit is 4 MiB)
MIN_BUDGET = 32_000
TAIL_IN_DESCRIBE = 1500
MAX_ATTEMPTS = 10
REFRESH_MIN_S = 0.3


def setup(daemon: Daemon) -> ReviewService:
    return ReviewService(daemon)


def service(d: Daemon) -> ReviewService:
    svc = d.manager.extension(ReviewService)
    if svc is None:
        raise WorkbenchError("diff review is not loaded in this daemon")
    return svc


class ReviewService(Extension):
    def __init__(self, daemon: Daemon) -> None:
        self.d = daemon
        self.mgr = daemon.manager
        self.git = daemon.manager.git
        self.states: dict[str, rv.ReviewState] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.watchers: dict[str, TreeWatcher] = {}
        self.stats: dict[str, dict[str, Any]] = {}  # files, added, removed, digest
        self._refreshing: set[str] = set()
        self._dirty: set[str] = set()
        self._check_locks: dict[str, asyncio.Lock] = {}
        self._check_again: set[str] = set()
        self._check_fp: dict[str, str] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.loop = asyncio.get_running_loop()
        daemon.manager.bus.subscribe(SessionChanged, self._on_session_changed)
        daemon.manager.bus.subscribe(SessionRemoved, lambda e: self.forget(e.session.id))

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
            self.on_turn_finished(s)

    async def ensure(self, s: Session) -> None:
        """Watch the session's worktree and publish its stats (idempotent)."""
        if s.id in self.watchers or s.id not in self.mgr.sessions:
            return
        root = Path(s.worktree)
        if not root.is_dir():
            return
        w = TreeWatcher(root, partial(self.kick, s.id))
        self.watchers[s.id] = w
        w.skip = await asyncio.to_thread(ignored_dirs, root)
        await w.start()
        if s.id not in self.mgr.sessions:  # removed meanwhile
            self.forget(s.id)
            return
        self.kick(s.id)

    def forget(self, sid: str) -> None:
        w = self.watchers.pop(sid, None)
        if w is not None:
            w.close()
        self.git.forget(sid)
        self.stats.pop(sid, None)
        self.states.pop(sid, None)
        self._check_fp.pop(sid, None)
        rv.ReviewState.delete(sid)

    def close(self) -> None:
        for w in self.watchers.values():
            w.close()
        self.watchers.clear()
        for t in list(self._tasks):
            t.cancel()

    # live diff

    def kick(self, sid: str) -> None:
        """Files changed (or a review action ran): recompute the diff soon."""
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
                diff = await self.git.diff(s)
        except WorkbenchError as e:
            log.info("review: diff of %s failed: %s", sid, e)
            return None
        self._store_stat(s, diff)
        return diff

    def _store_stat(self, s: Session, diff: Diff) -> None:
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
        return self.describe_extra(s.id) if s.id in self.watchers else {}

    def describe_extra(self, sid: str) -> dict[str, Any]:
        """Keys added to the session's description (ls, session events)."""
        out: dict[str, Any] = {}
        st = self.stats.get(sid)
        if st is not None:
            out.update(added=st["added"], removed=st["removed"], files_changed=st["files"])
        lk = self._check_locks.get(sid)
        out["check_running"] = bool(lk and lk.locked())
        rs = self.states.get(sid)
        chk = rs.check if rs is not None else None
        if chk:
            out.update(check_tail=str(chk.get("tail", ""))[-TAIL_IN_DESCRIBE:],
                       check_exit_code=chk.get("exit_code"), check_at=chk.get("finished_at"))
        if rs is not None:
            rej, com = rs.pending()
            out["review_pending"] = len(rej) + len(com)
        return out

    # checks

    def on_turn_finished(self, s: Session) -> None:
        """The agent finished a turn: run the repo's check if the worktree has changes
        that were not checked yet (the session went to `review`)."""
        self._spawn(self._auto_check(s.id))

    async def _auto_check(self, sid: str) -> None:
        s = self.mgr.sessions.get(sid)
        if s is None or not Path(s.worktree).is_dir():
            return
        try:
            cfg = await asyncio.to_thread(config_mod.load, Path(s.repo))
            if cfg.check.command:
                cfg.require_sandboxed("check.command", s.sandbox)
        except WorkbenchError as e:
            log.info("review: no check for %s: %s", sid, e)
            return
        if not cfg.check.command:
            return
        lk = self._check_locks.setdefault(sid, asyncio.Lock())
        if lk.locked():
            self._check_again.add(sid)
            return
        try:
            diff = await self.git.diff(s)
        except WorkbenchError:
            return
        if not diff.files or self._check_fp.get(sid) == diff.digest:
            return
        self._check_fp[sid] = diff.digest
        await self.run_check(s, cfg)
        if sid in self._check_again:
            self._check_again.discard(sid)
            self._spawn(self._auto_check(sid))

    async def run_check(self, s: Session, cfg: config_mod.Config | None = None) -> check_mod.CheckResult:
        if cfg is None:
            cfg = await asyncio.to_thread(config_mod.load, Path(s.repo))
        argv = check_mod.check_argv(cfg.check.command)
        cfg.require_sandboxed("check.command", s.sandbox)
        text = check_mod.command_text(cfg.check.command or "")
        if not Path(s.worktree).is_dir():
            raise WorkbenchError(f"worktree missing: {s.worktree}")
        lk = self._check_locks.setdefault(s.id, asyncio.Lock())
        async with lk:
            self.mgr.publish_session(s)  # check_running
            try:
                cmd = self.mgr.sandboxed(s, argv)
            except WorkbenchError as e:
                result = check_mod.CheckResult("failed", None, 0.0, "", text, reason=f"sandbox: {e}")
            else:
                result = await check_mod.run_check(cmd, Path(s.worktree), timeout_s=cfg.check.timeout_s,
                                                   command=text)
            st = self.state(s.id)
            st.check = result.to_json()
            await asyncio.to_thread(st.save)
            if s.id in self.mgr.sessions:
                s.check = result.status
                self.d.store.save_session(s)
                self.mgr.record(s, "check", {k: v for k, v in result.to_json().items() if k != "finished_at"})
        if s.id in self.mgr.sessions:
            self.mgr.publish_session(s)
        return result

# --------------------------------------------------------------------------- helpers


def _session(d: Daemon, p: Params) -> Session:
    return d.manager.get(p.str("id", required=True))


def _worktree(s: Session) -> Path:
    wt = Path(s.worktree)
    if not wt.is_dir():
        raise WorkbenchError(f"worktree missing: {s.worktree}", hint=f"remove the session with `workbench rm {s.id}`")
    return wt


def _file_json(f: FileDiff, st: rv.ReviewState, with_hunks: bool, budget: list[int]) -> dict[str, Any]:
    j = f.to_json() if with_hunks else {**_file_head(f), "hunks": None}
    j["key"] = rv.file_key(f)
    j["review_status"] = rv.file_status(f, st)
    j["hunk_count"] = len(f.hunks)
    if with_hunks:
        j["omitted"] = False
        for hj, h in zip(j["hunks"], f.hunks, strict=True):
            hj["reviewed"] = h.id in st.reviewed
        # A file over the budget on its own: keep its first hunks, omit the rest.
        for hj, h in zip(j["hunks"], f.hunks, strict=True):
            budget[0] -= h.size_hint()
            if budget[0] < 0 and hj is not j["hunks"][0]:
                hj["lines"] = None
                hj["omitted"] = True
                j["omitted"] = True
    else:
        j["omitted"] = True
    return j


def _file_head(f: FileDiff) -> dict[str, Any]:
    full = FileDiff(f.path, f.old_path, f.status, f.binary, f.added, f.removed, [],
                    f.mode_change, f.old_mode, f.new_mode, f.similarity, f.index)
    return full.to_json()


def _file_size(f: FileDiff) -> int:
    return sum(h.size_hint() for h in f.hunks) + 200


def diff_reply(
    diff: Diff, st: rv.ReviewState, *, stat_only: bool, unified: bool, offset: int, budget_bytes: int = REPLY_BUDGET
) -> dict[str, Any]:
    """The `diff` result; over the budget, files from `next` on come without hunks."""
    files, added, removed = diff.stat()
    out: dict[str, Any] = {
        "base": diff.base,
        "digest": diff.digest,
        "stat": {"files": files, "added": added, "removed": removed},
        "notes": list(diff.notes),
        "review": st.to_json(),
        "check": st.check,
        "offset": offset,
        "next": None,
    }
    if stat_only:
        out["files"] = [_file_json(f, st, False, [0]) for f in diff.files]
        out["text"] = diff_stat_text(diff)
        return out
    budget = [budget_bytes]
    chosen: list[int] = []
    for i, f in enumerate(diff.files[offset:], offset):
        size = _file_size(f)
        if chosen and size > budget[0]:
            out["next"] = i
            break
        chosen.append(i)
        budget[0] -= size
    if unified:
        text = "".join(diff.files[i].render() for i in chosen)
        out["text"] = text if len(text) < 3 * REPLY_BUDGET // 2 else text[: REPLY_BUDGET] + "\n[truncated]\n"
        out["files"] = [_file_json(f, st, False, [0]) for f in diff.files]
        return out
    window = set(chosen)
    budget = [budget_bytes]
    out["files"] = [_file_json(f, st, i in window, budget) for i, f in enumerate(diff.files)]
    return out


def _agent_summary(d: Daemon, s: Session) -> str:
    """Default merge message: the agent's last words (built-in agent) or the session name."""
    if s.agent == "builtin":
        last = ""
        after = 0
        while True:
            page = d.store.events(s.id, after=after, limit=5000)
            for e in page:
                if e["kind"] == "assistant" and str(e["data"].get("text") or "").strip():
                    last = str(e["data"]["text"]).strip()
            if len(page) < 5000:
                break
            after = page[-1]["seq"]
        if last:
            last = last[:5000]
            first = last.splitlines()[0]
            return last if len(first) <= 72 else f"workbench: {s.name}\n\n{last}"
    return f"workbench: {s.name}"


def _open_pr(s: Session, snap: session_repo.Snapshot, base_branch: str, message: str) -> dict[str, Any]:
    import subprocess

    gh = shutil.which("gh")
    if gh is None:
        raise UsageError("gh (the GitHub CLI) is not installed", hint="install gh, or merge without --pr")
    repo = Path(s.repo)
    remotes = run_git(repo, ["remote"]).stdout.decode().split()
    if not remotes:
        raise UsageError(f"{repo} has no remote; a pull request needs one", hint="merge without --pr")
    remote = "origin" if "origin" in remotes else remotes[0]
    # What is pushed is the imported snapshot (verified objects), as the session's branch.
    commit = merge.landing_commit(repo, snap.tip, snap.head, message)
    proc = run_git(repo, ["push", "--quiet", remote, f"{commit}:refs/heads/{s.branch}"], check=False)
    if proc.returncode != 0:
        raise GitError(f"git push to {remote} failed: {stderr_text(proc)}")
    title, _, body = message.partition("\n")
    res = subprocess.run(
        [gh, "pr", "create", "--head", s.branch, "--base", base_branch, "--title", title.strip(),
         "--body", body.strip() or title.strip()],
        cwd=repo, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120, check=False,
    )
    if res.returncode != 0:
        raise WorkbenchError(f"gh pr create failed: {(res.stderr or res.stdout).strip()[:500]}")
    return {"pr": res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "", "commit": commit,
            "remote": remote}


async def _after_merge(svc: ReviewService, s: Session, snap: session_repo.Snapshot, new: str) -> str | None:
    """Move the session's branch onto the merged commit so its diff starts empty (inside
    the sandbox; files the session changed since the snapshot are never overwritten)."""
    if snap.head == new:
        return None
    try:
        reply = await svc.git.edit(s, {"op": "reset", "commit": new, "keep": True, "from": snap.tip})
    except WorkbenchError as e:
        return f"the session branch stays where it was ({e})"
    warning = reply.get("warning")
    return f"the session branch stays where it was ({strip_escapes(str(warning))[:300]})" if warning else None


# --------------------------------------------------------------------------- methods: diff


@method("diff")
async def diff_method(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, stat?, format?: json|unified, offset?, paths?, max_bytes?}` -> see docs/review.md."""
    svc = service(d)
    s = _session(d, p)
    fmt = p.str("format", "json")
    if fmt not in ("json", "unified"):
        raise UsageError(f"unknown diff format {fmt!r} (json or unified)")
    offset = p.int("offset", 0) or 0
    if offset < 0:
        raise UsageError("offset must be 0 or more")
    budget = max(MIN_BUDGET, min(REPLY_BUDGET, p.int("max_bytes", REPLY_BUDGET) or REPLY_BUDGET))
    paths = p.list_str("paths")
    for path in paths or []:
        check_path(path)
    async with svc.lock(s.id):
        diff = await svc.git.diff(s, paths=paths or None)
    if not paths:
        svc._store_stat(s, diff)
    st = svc.state(s.id)
    out = await asyncio.to_thread(diff_reply, diff, st, stat_only=p.bool("stat"), unified=fmt == "unified",
                                  offset=offset, budget_bytes=budget)
    out["session"] = s.id
    return out


@method("mark_reviewed")
async def mark_reviewed(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, hunk? | path?, reviewed?: true}`"""
    svc = service(d)
    s = _session(d, p)
    hunk, path = p.str("hunk"), p.str("path")
    reviewed = p.bool("reviewed", True)
    async with svc.lock(s.id):
        diff = await svc.git.diff(s)
        st = svc.state(s.id)
        changed = rv.mark(st, diff, hunk=hunk, path=path, reviewed=reviewed)
        await asyncio.to_thread(st.save)
    if changed:
        d.manager.record(s, "review_mark", {"hunk": hunk, "path": path, "reviewed": reviewed, "keys": changed})
    return {"changed": changed, "reviewed": reviewed, "review": st.summary()}


@method("reject")
async def reject(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, hunk, reason?}`: reverse the hunk in the worktree."""
    svc = service(d)
    s = _session(d, p)
    hunk = p.str("hunk", required=True)
    reason = p.str("reason", "") or ""
    st, rej = await _review_edit(svc, s, rv.reject, hunk, reason)
    d.manager.record(s, "review_reject", {"hunk": hunk, "path": rej.path, "reason": rej.reason,
                                          "header": rej.header, "whole_file": rej.whole_file})
    svc.kick(s.id)
    return {"rejection": _rej_json(rej), "review": st.summary()}


@method("revert_file")
async def revert_file(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, path, reason?}`: the whole file back as in base."""
    svc = service(d)
    s = _session(d, p)
    path = p.str("path", required=True)
    reason = p.str("reason", "") or ""
    st, rej = await _review_edit(svc, s, rv.revert_file, path, reason)
    d.manager.record(s, "review_revert_file", {"path": rej.path, "old_path": rej.old_path, "reason": rej.reason})
    svc.kick(s.id)
    return {"rejection": _rej_json(rej), "review": st.summary()}


@method("comment")
async def comment(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, path, line, end_line?, text}`"""
    svc = service(d)
    s = _session(d, p)
    path = p.str("path", required=True)
    line = p.int("line", required=True)
    end_line = p.int("end_line")
    text = p.str("text", required=True)
    _no_in_place_edits(s)
    async with svc.lock(s.id):
        snap = await svc.git.snapshot(s)
        diff = await asyncio.to_thread(svc.git.tree_diff, s, snap, rv.CONTEXT, [path])
        st = svc.state(s.id)
        tree = session_repo.SnapshotTree(Path(s.repo), snap.tip)
        cm = await asyncio.to_thread(rv.comment, st, diff, path, line, text, end_line, tree)
        await asyncio.to_thread(st.save)
    d.manager.record(s, "review_comment", {"path": cm.path, "line": cm.line, "end_line": cm.end_line,
                                           "text": cm.text, "hunk": cm.hunk})
    d.manager.publish_session(s)
    return {"comment": {k: v for k, v in vars(cm).items()}, "review": st.summary()}


@method("undo")
async def undo(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id}`: undo the last review action not yet sent to the agent."""
    svc = service(d)
    s = _session(d, p)
    async with svc.lock(s.id):
        st = svc.state(s.id)
        request = rv.undo_request(st)
        if request is not None:
            _no_in_place_edits(s)
            await svc.git.edit(s, request)
        res = rv.undo(st)
        await asyncio.to_thread(st.save)
    d.manager.record(s, "review_undo", res)
    svc.kick(s.id)
    d.manager.publish_session(s)
    return {**res, "review": st.summary()}


@method("review")
async def review(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, send?}`: the review message of the pending comments and rejections; with
    `send` it goes to the agent and they count as sent."""
    svc = service(d)
    s = _session(d, p)
    send = p.bool("send")
    async with svc.lock(s.id):
        st = svc.state(s.id)
        text = rv.build_message(st)
        rej, com = st.pending()
        out: dict[str, Any] = {"message": text, "rejections": len(rej), "comments": len(com), "sent": False,
                               "review": st.to_json()}
        if not send:
            return out
        if not text:
            raise UsageError("nothing to send: no pending comments or rejections",
                             hint="reject a hunk with a reason or comment on a line first")
        how = await d.manager.deliver(s, text)
        rv.mark_sent(st)
        await asyncio.to_thread(st.save)
    d.manager.record(s, "review_sent", {"text": text, "rejections": len(rej), "comments": len(com), "via": how})
    d.manager.publish_session(s)
    return {**out, "sent": True, "via": how, "review": st.to_json()}


def _no_in_place_edits(s: Session) -> None:
    if s.in_place:
        raise UsageError(f"session {s.name} works in the main checkout; edit the files there",
                         hint="hunk rejection needs a session with its own worktree")


async def _review_edit(
    svc: ReviewService, s: Session, plan: Callable[..., tuple[rv.Rejection, dict[str, Any]]], *args: Any
) -> tuple[rv.ReviewState, rv.Rejection]:
    """Plan a rejection on the imported snapshot, carry it out inside the sandbox, record it."""
    _no_in_place_edits(s)
    async with svc.lock(s.id):
        snap = await svc.git.snapshot(s)
        diff = await asyncio.to_thread(svc.git.tree_diff, s, snap, rv.CONTEXT)
        st = svc.state(s.id)
        tree = session_repo.SnapshotTree(Path(s.repo), snap.tip)
        rej, request = await asyncio.to_thread(plan, st, diff, *args, tree)
        reply = await svc.git.edit(s, request)
        rv.applied(st, rej, reply)
        await asyncio.to_thread(st.save)
    return st, rej


def _rej_json(r: rv.Rejection) -> dict[str, Any]:
    return {k: v for k, v in vars(r).items() if k not in ("patch", "snapshots", "after")}


# --------------------------------------------------------------------------- methods: finish


@method("merge")
async def merge_method(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, strategy?: ff|squash|rebase, message?, pr?}`"""
    svc = service(d)
    s = _session(d, p)
    if s.in_place:
        raise UsageError(f"session {s.name} works in the main checkout; there is no branch to merge",
                         hint=f"commit in {s.repo} with git")
    cfg = await asyncio.to_thread(config_mod.load, Path(s.repo))
    strategy = p.str("strategy") or cfg.worktree.merge_strategy
    if strategy not in merge.STRATEGIES:
        raise UsageError(f"unknown merge strategy {strategy!r}: use one of {', '.join(merge.STRATEGIES)}")
    message = (p.str("message") or "").strip() or _agent_summary(d, s)
    reviewed = p.str("digest")
    async with svc.lock(s.id):
        base_branch = await asyncio.to_thread(merge.base_branch_of, Path(s.repo))
        if base_branch is None:
            raise GitError(f"the main checkout {s.repo} has a detached HEAD; nothing changed",
                           hint="switch it to the branch to merge into, then merge again")
        snap = await svc.git.snapshot(s)
        _check_mergeable(s, snap, reviewed)
        if p.bool("pr"):
            res = await asyncio.to_thread(_open_pr, s, snap, base_branch, message)
            d.manager.record(s, "merge", {"pr": res["pr"], "branch": s.branch, "base_branch": base_branch,
                                          "message": message})
            return {**res, "branch": s.branch, "base_branch": base_branch, "message": message}
        result = await asyncio.to_thread(merge.merge_snapshot, Path(s.repo), s.base_commit, snap.tip, snap.head,
                                         base_branch, strategy, message)
        warning = await _after_merge(svc, s, snap, result.commit)
        s.base_commit = result.commit
        await asyncio.to_thread(session_repo.set_ref, Path(s.repo), session_repo.ref(s.id, "base"), result.commit)
        d.store.save_session(s)
        st = svc.state(s.id)
        st.reset()
        await asyncio.to_thread(st.save)
    data = {"commit": result.commit, "strategy": result.strategy, "files_changed": result.files_changed,
            "base_branch": base_branch, "message": message}
    if warning:
        data["warning"] = warning
    d.manager.record(s, "merge", data)
    svc.kick(s.id)
    d.manager.publish_session(s)
    return data


def _check_mergeable(s: Session, snap: session_repo.Snapshot, reviewed: str | None) -> None:
    """Refuse a merge that would land something other than what the user saw."""
    if snap.skipped_count:
        names = ", ".join(strip_escapes(p) for p, _ in snap.skipped[:5])
        raise UsageError(
            f"{snap.skipped_count} file(s) could not be imported for review, too large or unreadable"
            f" ({names}); nothing changed",
            hint="remove them from the session's worktree (or add them to .gitignore), then merge again",
        )
    if reviewed and reviewed != digest_of(s.base_commit, snap.tip):
        raise UsageError(
            f"session {s.name} changed since the diff you reviewed; nothing changed",
            hint="look at the diff again, then merge",
        )


@method("discard")
async def discard(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id}`: drop every change of the session (worktree and branch back to its base)."""
    svc = service(d)
    s = _session(d, p)
    if s.in_place:
        raise UsageError(f"session {s.name} works in the main checkout; workbench will not reset it",
                         hint=f"use git in {s.repo}")
    async with svc.lock(s.id):
        before = await svc.git.diff(s)
        await svc.git.edit(s, {"op": "reset", "commit": s.base_commit, "keep": False})
        st = svc.state(s.id)
        st.reset()
        await asyncio.to_thread(st.save)
    files, added, removed = before.stat()
    data = {"files": files, "added": added, "removed": removed, "base": s.base_commit}
    d.manager.record(s, "discard", data)
    svc.kick(s.id)
    return data


# --------------------------------------------------------------------------- methods: check


@method("check")
async def check(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id}`: run the repo's check command in the session's sandbox now; the result."""
    svc = service(d)
    s = _session(d, p)
    result = await svc.run_check(s)
    return result.to_json()


@method("send_check")
async def send_check(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id}`: send the last failing check's output to the agent."""
    svc = service(d)
    s = _session(d, p)
    chk = svc.state(s.id).check
    if not chk:
        raise UsageError(f"session {s.name} has no check result yet", hint=f"`workbench check {s.id}`")
    if chk.get("status") == "passed":
        raise UsageError("the last check passed; nothing to send")
    why = f"exit code {chk.get('exit_code')}" if chk.get("exit_code") is not None else chk.get("reason", "failed")
    text = (f"The check command `{chk.get('command')}` failed ({why}). The end of its output:\n\n"
            f"{chk.get('tail', '')}\n\nPlease fix what makes it fail.")
    how = await d.manager.deliver(s, text)
    d.manager.record(s, "check_sent", {"text": text, "via": how})
    return {"message": text, "via": how}


# --------------------------------------------------------------------------- methods: attempts


@method("new_attempts")
async def new_attempts(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`new` params plus `attempts: N`: N sessions `<name>-1..N` on the same prompt."""
    from workbench.core import worktree as wt_mod

    n = p.int("attempts", required=True)
    if not 1 <= n <= MAX_ATTEMPTS:
        raise UsageError(f"--attempts must be from 1 to {MAX_ATTEMPTS}, not {n}")
    repo = p.str("repo", required=True)
    agent = p.str("agent")
    name = p.str("name")
    if name:
        base = wt_mod.validate_name(name)
    else:
        info = await asyncio.to_thread(wt_mod.inspect_repo, Path(repo))
        default_agent = agent or config_mod.load(info.root).session.agent
        base = d.manager.free_name(default_agent)
    names = [f"{base}-{i}" for i in range(1, n + 1)]
    taken = [x for x in names if d.store.name_taken(x)]
    if taken:
        raise UsageError(f"session name {taken[0]!r} is taken", hint="pick another --name")
    group = f"{base}-{secrets.token_hex(3)}"
    network, in_place = p.raw.get("network"), p.raw.get("in_place")
    if in_place:
        raise UsageError("attempts need their own worktrees; --in-place cannot be used with --attempts")
    created: list[Session] = []
    warnings: list[str] = []
    try:
        for i, nm in enumerate(names, 1):
            req = CreateRequest(
                repo=repo, agent=agent, name=nm, base=p.str("base"), sandbox=p.str("sandbox"),
                network=bool(network) if isinstance(network, bool) else None, approval=p.str("approval"),
                prompt=p.str("prompt", "") or "", in_place=False, cols=p.int("cols"), rows=p.int("rows"),
                provider=p.str("provider"), extra={"attempt_group": group, "attempt": i, "attempts": n},
            )
            s, warns = await d.manager.create(req)
            created.append(s)
            warnings.extend(w for w in warns if w not in warnings)
    except BaseException:
        for s in created:
            with contextlib.suppress(Exception):
                await d.manager.remove(s, keep_branch=False)
        raise
    return {"group": group, "sessions": [d.manager.describe(s) for s in created], "warnings": warnings}


def _group_of(d: Daemon, p: Params) -> tuple[str, list[Session]]:
    group = p.str("group")
    if not group:
        s = _session(d, p)
        group = s.extra.get("attempt_group")
        if not group:
            raise UsageError(f"session {s.name} is not one of several attempts")
    members = [x for x in d.manager.sessions.values() if x.extra.get("attempt_group") == group]
    if not members:
        raise UsageError(f"no sessions in attempt group {group!r}")
    members.sort(key=lambda x: int(x.extra.get("attempt") or 0))
    return str(group), members


@method("compare")
async def compare(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{group}` or `{id}`: the attempts' diff stats, files and check results side by side."""
    svc = service(d)
    group, members = _group_of(d, p)
    out = []
    for s in members:
        entry: dict[str, Any] = {"id": s.id, "name": s.name, "state": str(s.state), "check": s.check}
        if Path(s.worktree).is_dir():
            try:
                diff = await svc.git.diff(s)
            except WorkbenchError as e:
                entry["error"] = str(e)
            else:
                svc._store_stat(s, diff)
                files, added, removed = diff.stat()
                entry["stat"] = {"files": files, "added": added, "removed": removed}
                entry["files"] = [{"path": f.path, "status": f.status, "added": f.added, "removed": f.removed,
                                   "binary": f.binary} for f in diff.files]
        chk = svc.state(s.id).check
        if chk:
            entry["check_result"] = chk
        out.append(entry)
    return {"group": group, "sessions": out}


@method("pick")
async def pick(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id}`: this attempt wins; the other attempts of its group are removed."""
    s = _session(d, p)
    group, members = _group_of(d, Params({"id": s.id}))
    losers = [x for x in members if x.id != s.id]
    removed = []
    for x in losers:
        d.manager.record(x, "discard", {"reason": f"attempt {s.name} was picked"})
        await d.manager.remove(x, keep_branch=False)
        removed.append({"id": x.id, "name": x.name})
    s.extra["picked"] = True
    d.store.save_session(s)
    d.manager.record(s, "pick", {"group": group, "removed": [x["name"] for x in removed]})
    d.manager.publish_session(s)
    return {"winner": s.id, "group": group, "removed": removed}
