"""The daemon's only way into a session's repository: helpers run inside its sandbox.

`SessionGit.snapshot` runs `session_side/snapshot.py` in the session's sandbox, checks
its reply and imports the pack into the user's repository (verified by `git index-pack
--strict`) under `refs/workbench/<id>/snapshot`; diffs, merges and PR pushes then read
only that. `SessionGit.edit` runs `session_side/worktree_edit.py` for the review's edits
(reject a hunk, revert a file, undo, discard). Neither runs git on session-writable state
from the host (docs/security.md, "The host boundary").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from workbench import config as config_mod
from workbench.core import session_repo
from workbench.core.background import niced
from workbench.core.diff_model import Diff
from workbench.core.escapes import strip_escapes
from workbench.core.git_runner import run_git
from workbench.core.models import Session
from workbench.core.tree_diff import compute_tree_diff, update_tree_diff
from workbench.core.worktree_diff import compute_diff
from workbench.daemon.sandboxing import LaunchSpec
from workbench.errors import GitError, WorkbenchError
from workbench.session_side import launch

log = logging.getLogger(__name__)

# Files over this size are not imported: the diff names them as too large to review.
MAX_IMPORT_FILE = 50 << 20
MAX_PACK = 4 << 30
MAX_EDIT_REPLY = 8 << 20
HELPER_TIMEOUT_S = 600


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"


def _helper_error(what: str, err: bytes) -> GitError:
    text = strip_escapes(err.decode("utf-8", "replace")).strip().splitlines()
    return GitError(f"{what} failed inside the session: {(text[-1] if text else 'no message')[:300]}")


class Sandboxer(Protocol):
    """What SessionGit needs of the SessionManager: its sandbox for one session."""

    def sandboxed(
        self, s: Session, argv: list[str], spec: LaunchSpec | None = None, *, new_session: bool = False
    ) -> Any: ...


class SessionGit:
    def __init__(self, manager: Sandboxer) -> None:
        self.mgr = manager
        self._locks: dict[str, threading.Lock] = {}
        self._procs: dict[str, set[subprocess.Popen[bytes]]] = {}
        self._closing: set[str] = set()

    def _lock(self, sid: str) -> threading.Lock:
        return self._locks.setdefault(sid, threading.Lock())

    def close(self, sid: str) -> None:
        """Before the worktree is deleted: no new helper starts, running ones are killed and
        an import or edit in progress has finished (a helper writing into the worktree while
        it is removed would leave it half there)."""
        self._closing.add(sid)
        self._kill_helpers(sid)
        with self._lock(sid):
            pass
        self._kill_helpers(sid)  # one a worker thread spawned while the first kill ran

    def _kill_helpers(self, sid: str) -> None:
        for proc in list(self._procs.get(sid, ())):
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)

    def forget(self, sid: str) -> None:
        self._locks.pop(sid, None)
        self._procs.pop(sid, None)
        self._closing.discard(sid)

    def _done(self, sid: str, proc: subprocess.Popen[bytes]) -> None:
        self._procs.get(sid, set()).discard(proc)

    @staticmethod
    def check_layout(s: Session) -> None:
        if not Path(s.worktree).is_dir():
            raise WorkbenchError(f"worktree missing: {s.worktree}",
                                 hint=f"remove the session with `workbench rm {s.id}`")
        if not s.in_place and not session_repo.is_private(Path(s.worktree)):
            raise WorkbenchError(
                f"session {s.name} was made by an older workbench (its .git points into your repository)",
                hint=f"save what you need from {s.worktree}, then `workbench rm {s.id}` and start it again",
            )

    # ----------------------------------------------------------------- helpers in the sandbox

    def _spawn(self, s: Session, module: str, args: Sequence[str],
               background: bool = False) -> tuple[subprocess.Popen[bytes], Any]:
        if s.id in self._closing:
            raise WorkbenchError(f"session {s.name} is being removed")
        argv = launch.argv(module, *args)
        cmd = self.mgr.sandboxed(s, argv, LaunchSpec(argv, helper=True, ro_binds=launch.private_tmp_paths()),
                                 new_session=True)
        err = tempfile.TemporaryFile(prefix="wb-helper-err-")  # noqa: SIM115  closed by the caller
        try:
            proc = subprocess.Popen(
                niced(cmd.argv) if background else cmd.argv, cwd=s.worktree, env=cmd.env, pass_fds=cmd.pass_fds,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, start_new_session=True,
            )
        except BaseException:
            err.close()
            raise
        finally:
            cmd.close()
        self._procs.setdefault(s.id, set()).add(proc)
        return proc, err

    @staticmethod
    def _reap(proc: subprocess.Popen[bytes]) -> int:
        try:
            return proc.wait(HELPER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with_pg = proc.pid
            try:
                os.killpg(with_pg, signal.SIGKILL)
            except OSError:
                proc.kill()
            proc.wait()
            raise GitError(f"a helper inside the session took over {HELPER_TIMEOUT_S} s and was stopped") from None

    # ----------------------------------------------------------------- snapshot and diff

    async def snapshot(self, s: Session) -> session_repo.Snapshot:
        self.check_layout(s)
        proc, err = await asyncio.to_thread(self._spawn_snapshot, s)
        return await asyncio.to_thread(self._import, s, proc, err)

    def _spawn_snapshot(self, s: Session) -> tuple[subprocess.Popen[bytes], Any]:
        """In a worker thread: the sandbox's argv and the spawn (~2 ms of CPU a diff, which
        on the loop held other sessions' echo back). Under the session's lock, so `close`
        kills the helper or sees no spawn at all. The commits the user's repository has
        (`--have`) go on the helper's stdin once it runs: looked up while the sandbox starts."""
        with self._lock(s.id):
            return self._spawn(s, "snapshot", ["--max-file", str(MAX_IMPORT_FILE), "--have-stdin"], background=True)

    def _import(self, s: Session, proc: subprocess.Popen[bytes], err: Any) -> session_repo.Snapshot:
        repo = Path(s.repo)
        assert proc.stdin is not None and proc.stdout is not None
        with err, self._lock(s.id):
            try:
                name = session_repo.ref(s.id, "snapshot")
                last = session_repo.resolve(repo, name)  # set only here, under this lock
                with contextlib.suppress(OSError):  # a helper that died already: its stderr says why
                    proc.stdin.write("".join(f"{h}\n" for h in (s.base_commit, last) if h).encode())
                with contextlib.suppress(OSError):
                    proc.stdin.close()
                line = proc.stdout.readline(session_repo.MAX_META)
                if not line.endswith(b"\n"):
                    proc.stdout.close()
                    self._reap(proc)
                    err.seek(0)
                    raise _helper_error("taking a snapshot", err.read()[-4000:])
                snap, has_pack = session_repo.parse_meta(line)
                if has_pack:
                    with tempfile.TemporaryFile(prefix="wb-pack-") as spool:
                        total = 0
                        stdout = proc.stdout
                        for chunk in iter(lambda: stdout.read(1 << 16), b""):
                            total += len(chunk)
                            if total > MAX_PACK:
                                raise GitError(f"the session's work is over {_human(MAX_PACK)}; not imported")
                            spool.write(chunk)
                        if self._reap(proc) != 0:
                            err.seek(0)
                            raise _helper_error("taking a snapshot", err.read()[-4000:])
                        # git reads the file through its descriptor: flush, and rewind the
                        # descriptor itself (a buffered seek may not move it).
                        spool.flush()
                        count = session_repo.pack_object_count(os.pread(spool.fileno(), 12, 0))
                        os.lseek(spool.fileno(), 0, os.SEEK_SET)
                        session_repo.import_pack(repo, spool, count)
                elif self._reap(proc) != 0:
                    err.seek(0)
                    raise _helper_error("taking a snapshot", err.read()[-4000:])
                if has_pack or last != snap.tip:
                    # (an unchanged tip was checked when it was imported)
                    # The last snapshot was checked complete when its ref was set, and
                    # the ref keeps it: only what is new since is walked (its tree named
                    # too, as the helper does for the pack: our commits are dated 0).
                    known = [s.base_commit] + ([last, last + "^{tree}"] if last else [])
                    session_repo.check_imported(repo, snap, known)
                    session_repo.set_ref(repo, name, snap.tip)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                self._done(s.id, proc)
        return snap

    async def diff(self, s: Session, *, context: int = 3, paths: Sequence[str] | None = None) -> Diff:
        """The session's work against its base: a fresh snapshot, diffed in the user's repo."""
        if s.in_place:
            # The main checkout itself (strict sandbox: its .git is read-only to the session).
            ignore = await asyncio.to_thread(config_mod.review_ignore, Path(s.repo))
            return await asyncio.to_thread(compute_diff, Path(s.worktree), s.base_commit,
                                           context=context, paths=paths, ignore=ignore)
        snap = await self.snapshot(s)
        return await asyncio.to_thread(self.tree_diff, s, snap, context, paths)

    @staticmethod
    def tree_diff(s: Session, snap: session_repo.Snapshot, context: int = 3,
                  paths: Sequence[str] | None = None, previous: tuple[Diff, str] | None = None,
                  ignore: Sequence[str] | None = None) -> Diff:
        """The diff of `snap`; given the `previous` whole diff and its tip, only the paths
        that changed since are diffed again, where that gives the same diff. Review noise
        (`ignore`, by default the repo's `[review] ignore`) is listed apart."""
        if ignore is None:
            ignore = config_mod.review_ignore(Path(s.repo))
        if previous is not None and not paths and not snap.skipped_count:
            updated = update_tree_diff(Path(s.repo), previous[0], previous[1], s.base_commit, snap.tip,
                                       context=context, ignore=ignore)
            if updated is not None:
                return updated
        notes = [f"too large to review (not imported): {strip_escapes(p)} ({_human(n)})" if n >= 0
                 else f"could not be read inside the session (not imported): {strip_escapes(p)}"
                 for p, n in snap.skipped]
        if snap.skipped_count > len(snap.skipped):
            notes.append(f"... and {snap.skipped_count - len(snap.skipped)} more files that could not be imported")
        diff = compute_tree_diff(Path(s.repo), s.base_commit, snap.tip, context=context, paths=paths, notes=notes,
                                 ignore=ignore)
        if snap.skipped_count:
            diff.digest += f"+{snap.skipped_count}"
        return diff

    # ----------------------------------------------------------------- edits

    async def edit(self, s: Session, request: dict[str, Any]) -> dict[str, Any]:
        """Run one `worktree_edit` request inside the sandbox; a refusal raises GitError."""
        self.check_layout(s)
        proc, err = self._spawn(s, "worktree_edit", [])
        return await asyncio.to_thread(self._edit, s, proc, err, json.dumps(request).encode())

    def _edit(self, s: Session, proc: subprocess.Popen[bytes], err: Any, payload: bytes) -> dict[str, Any]:
        with err, self._lock(s.id):
            try:
                out, _ = proc.communicate(payload, timeout=HELPER_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise GitError("an edit inside the session timed out") from None
            finally:
                self._done(s.id, proc)
            if proc.returncode != 0 or len(out) > MAX_EDIT_REPLY:
                err.seek(0)
                raise _helper_error("editing the worktree", err.read()[-4000:])
        reply = session_repo.json_object(out, "edit helper")
        if not reply.get("ok"):
            raise GitError(strip_escapes(str(reply.get("error") or "the edit failed"))[:500],
                           hint="the file changed meanwhile; refresh the diff")
        after = reply.get("after")
        if after is not None and not (isinstance(after, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in after.items())):
            raise GitError("the session's edit helper sent a malformed reply")
        return reply


async def has_changes(git: SessionGit, s: Session) -> bool:
    """Whether the session has something to review: uncommitted work or commits past its
    base. Read from a snapshot (never by running git in the session's repository); for an
    in-place session, from the main checkout, whose .git the session cannot write."""
    try:
        if s.in_place:
            proc = await asyncio.to_thread(
                run_git, Path(s.worktree), ["status", "--porcelain", "--untracked-files=normal"], check=False)
            head = await asyncio.to_thread(
                run_git, Path(s.worktree), ["rev-parse", "--verify", "--quiet", "HEAD"], check=False)
            return bool(proc.stdout.strip()) or head.stdout.decode().strip() != s.base_commit
        snap = await git.snapshot(s)
    except WorkbenchError as e:
        log.info("no snapshot of %s to see whether it changed: %s", s.id, e)
        return False
    return snap.tip != s.base_commit
