"""The repo's check command for diff review: run after each agent turn that changed the
worktree, on request (`check`), and its failing output sent to the agent (`send_check`).

A check runs in the session's sandbox, one at a time per session; a turn that ends while
one runs queues a single rerun. The result is kept in the session's review state (shown
in its description) and in its event log. The review service (review_service.py) owns
one CheckRunner and hands it the review state and its task spawner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import config as config_mod
from workbench.core import check as check_mod
from workbench.core import review as rv
from workbench.core.models import Session
from workbench.errors import UsageError, WorkbenchError
from workbench.protocol import review as wire

if TYPE_CHECKING:
    from workbench.daemon.api import Daemon

log = logging.getLogger(__name__)

TAIL_IN_DESCRIBE = 1500


class CheckRunner:
    def __init__(
        self,
        daemon: Daemon,
        state: Callable[[str], rv.ReviewState],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self.d = daemon
        self.mgr = daemon.manager
        self._state = state
        self._spawn = spawn
        self._locks: dict[str, asyncio.Lock] = {}
        self._again: set[str] = set()
        self._checked: dict[str, str] = {}  # session id -> digest of the diff last checked

    def forget(self, sid: str) -> None:
        self._checked.pop(sid, None)
        self._again.discard(sid)
        self._locks.pop(sid, None)

    def describe(self, sid: str, rs: rv.ReviewState | None) -> dict[str, Any]:
        """The check's keys of a session's description."""
        lk = self._locks.get(sid)
        out: dict[str, Any] = {"check_running": bool(lk and lk.locked())}
        chk = rs.check if rs is not None else None
        if chk:
            out.update(check_tail=str(chk.get("tail", ""))[-TAIL_IN_DESCRIBE:],
                       check_exit_code=chk.get("exit_code"), check_at=chk.get("finished_at"))
        return out

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
        lk = self._locks.setdefault(sid, asyncio.Lock())
        if lk.locked():
            self._again.add(sid)
            return
        try:
            diff = await self.mgr.git.diff(s)
        except WorkbenchError:
            return
        if not diff.files or self._checked.get(sid) == diff.digest:
            return
        self._checked[sid] = diff.digest
        await self.run(s, cfg, digest=diff.digest)
        if sid in self._again:
            self._again.discard(sid)
            self._spawn(self._auto_check(sid))

    async def check_diff(self, s: Session, cfg: config_mod.Config) -> wire.CheckResult | None:
        """The check of the session's diff as it is now: the kept result if this very diff
        was checked already, else a new run. None when there is nothing to check."""
        try:
            diff = await self.mgr.git.diff(s)
        except WorkbenchError as e:
            log.info("review: no diff of %s to check: %s", s.id, e)
            return None
        if not diff.files:
            return None
        kept = self._state(s.id).check
        if kept and kept.get("digest") == diff.digest:
            return kept
        self._checked[s.id] = diff.digest  # the check after `review` need not run it again
        return (await self.run(s, cfg, digest=diff.digest)).to_json()

    async def run(self, s: Session, cfg: config_mod.Config | None = None, *,
                  digest: str | None = None) -> check_mod.CheckResult:
        """Run the check now (after the one running, if any); the result is stored with the
        digest of the diff it checked (`digest`, or the diff's now)."""
        if cfg is None:
            cfg = await asyncio.to_thread(config_mod.load, Path(s.repo))
        argv = check_mod.check_argv(cfg.check.command)
        cfg.require_sandboxed("check.command", s.sandbox)
        text = check_mod.command_text(cfg.check.command or "")
        if not Path(s.worktree).is_dir():
            raise WorkbenchError(f"worktree missing: {s.worktree}")
        if digest is None:
            try:
                digest = (await self.mgr.git.diff(s)).digest
            except WorkbenchError:
                digest = ""
        lk = self._locks.setdefault(s.id, asyncio.Lock())
        async with lk:
            self.mgr.publish_session(s)  # check_running
            try:
                cmd = self.mgr.sandboxed(s, argv)
            except WorkbenchError as e:
                result = check_mod.CheckResult("failed", None, 0.0, "", text, reason=f"sandbox: {e}")
            else:
                result = await check_mod.run_check(cmd, Path(s.worktree), timeout_s=cfg.check.timeout_s,
                                                   command=text)
            result.digest = digest
            st = self._state(s.id)
            st.check = result.to_json()
            await asyncio.to_thread(st.save)
            if s.id in self.mgr.sessions:
                s.check = result.status
                self.d.store.save_session(s)
                self.mgr.record(s, "check", {k: v for k, v in result.to_json().items() if k != "finished_at"})
        if s.id in self.mgr.sessions:
            self.mgr.publish_session(s)
        return result

    async def send(self, s: Session) -> tuple[str, str]:
        """Send the last failing check's output to the agent: (the message, how it went)."""
        chk = self._state(s.id).check
        if not chk:
            raise UsageError(f"session {s.name} has no check result yet", hint=f"`workbench check {s.id}`")
        if chk.get("status") == "passed":
            raise UsageError("the last check passed; nothing to send")
        text = failure_message(chk)
        how = await self.mgr.deliver(s, text)
        self.mgr.record(s, "check_sent", {"text": text, "via": how})
        return text, how


def failure_message(chk: wire.CheckResult) -> str:
    """The message that hands a failed check to the agent: the command, why, its output's end."""
    why = f"exit code {chk.get('exit_code')}" if chk.get("exit_code") is not None else chk.get("reason", "failed")
    return (f"The check command `{chk.get('command')}` failed ({why}). The end of its output:\n\n"
            f"{chk.get('tail', '')}\n\nPlease fix what makes it fail.")
