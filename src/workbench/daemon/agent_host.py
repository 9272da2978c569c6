"""The built-in agent's bridge into the daemon: what its loop (agent/loop.py) is handed
for one session. `DaemonHost` records its transcript, conversation and state through the
SessionManager; `SandboxRunner` runs the model's commands and patches in the session's
sandbox; `AgentRuntime` is what the manager keeps in `runtimes`. The extension that
launches agents with these is BuiltinAgents (agent_ext.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from workbench.agent.command_run import CommandResult, collect_output, spawn
from workbench.agent.conversation import Item
from workbench.agent.patch import PatchError, PatchResult
from workbench.agent.tools import PatchUnavailable
from workbench.core.escapes import strip_escapes
from workbench.core.models import Session, SessionState
from workbench.daemon.bus import AgentDelta
from workbench.daemon.session_git import has_changes
from workbench.daemon.sessions import SessionManager
from workbench.errors import WorkbenchError
from workbench.session_side import launch

if TYPE_CHECKING:
    from workbench.agent.loop import Agent, Status

BUILTIN = "builtin"  # the agent kind (`--agent builtin`) BuiltinAgents launches
MAX_CAPTURE_BYTES = 8 * 1024 * 1024
PATCH_TIMEOUT_S = 120
MAX_PATCH_REPLY = 4 << 20


# --------------------------------------------------------------------------- commands


class SandboxRunner:
    """Runs the model's commands in the session's sandbox (`manager.sandboxed`), each in
    its own process group, stdin /dev/null, output merged, the group killed at the end."""

    def __init__(self, manager: SessionManager, session: Session, hide_env: tuple[str, ...] = ()) -> None:
        self.manager = manager
        self.session = session
        self.hide_env = hide_env

    async def run(self, argv: list[str], cwd: Path, timeout_ms: int) -> CommandResult:
        start = time.monotonic()

        def elapsed() -> int:
            return int((time.monotonic() - start) * 1000)

        if not argv:
            return CommandResult(127, "empty command", False, 0)
        root = Path(os.path.realpath(self.session.worktree))
        if Path(os.path.realpath(cwd)) != root:
            # The sandbox starts in the worktree; a shell hop reaches the subdirectory.
            argv = ["/bin/sh", "-c", 'cd -- "$0" || exit 126; exec "$@"', str(cwd), *argv]
        try:
            cmd = self.manager.sandboxed(self.session, argv, new_session=True)
        except WorkbenchError as e:
            return CommandResult(126, f"the sandbox cannot run this command: {e}", False, elapsed())
        env = dict(cmd.env)
        for name in self.hide_env:  # the model's API key stays out of its own commands
            env.pop(name, None)
        try:
            spawned = await spawn(
                cmd.argv,
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=tuple(cmd.pass_fds),
            )
        except FileNotFoundError:
            return CommandResult(127, f"command not found: {argv[0]}", False, elapsed())
        except PermissionError:
            return CommandResult(126, f"permission denied: {argv[0]}", False, elapsed())
        except OSError as e:
            return CommandResult(126, f"cannot run {argv[0]}: {e.strerror or e}", False, elapsed())
        finally:
            cmd.close()
        return await collect_output(spawned, timeout_ms, MAX_CAPTURE_BYTES, elapsed)

    async def apply_patch(self, patch: str, root: Path, cwd: Path) -> PatchResult:
        """Apply a patch inside the session's sandbox (`session_side/apply_patch.py`), as the
        session: it can write only where the session's own commands can."""
        worktree = Path(os.path.realpath(self.session.worktree))
        try:
            workdir = Path(os.path.realpath(cwd)).relative_to(worktree).as_posix()
        except ValueError:
            raise PatchError(f"working directory {str(cwd)!r} is outside the workspace root") from None
        code, out, err = await self._helper(["--cwd", workdir], patch.encode("utf-8", "surrogatepass"))
        return patch_reply(code, out, err)

    async def remove_stale_patch_temps(self) -> list[str]:
        """Delete, inside the sandbox, the temporaries of an apply_patch cut off by a killed
        daemon (tagged with another daemon's pid): they would show in the diff and be merged."""
        code, out, err = await self._helper(["--remove-stale"], b"")
        try:
            reply = json.loads(out) if code == 0 else None
        except ValueError:
            reply = None
        removed = reply.get("removed") if isinstance(reply, dict) else None
        if not isinstance(removed, list) or not all(isinstance(p, str) for p in removed):
            why = strip_escapes(err.decode("utf-8", "replace")).strip().splitlines() or ["malformed reply"]
            raise PatchUnavailable(f"cleaning up after apply_patch failed: {why[-1][:300]}")
        return removed

    async def _helper(self, args: list[str], data: bytes) -> tuple[int | None, bytes, bytes]:
        """Run `session_side/apply_patch.py ARGS` in the session's sandbox, `data` on stdin."""
        worktree = Path(os.path.realpath(self.session.worktree))
        try:
            argv = launch.argv("apply_patch", *args, "--tag", str(os.getpid()))
            cmd = self.manager.sandboxed(self.session, argv, new_session=True)
        except WorkbenchError as e:
            raise PatchUnavailable(f"the sandbox cannot run it: {e}") from None
        env = dict(cmd.env)
        for name in self.hide_env:
            env.pop(name, None)
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd.argv, cwd=worktree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True, pass_fds=tuple(cmd.pass_fds),
            )
        except OSError as e:
            raise PatchUnavailable(f"cannot start the patch helper: {e.strerror or e}") from None
        finally:
            cmd.close()
        try:
            out, err = await asyncio.wait_for(proc.communicate(data), PATCH_TIMEOUT_S)
        except TimeoutError:
            raise PatchUnavailable(f"the patch helper took over {PATCH_TIMEOUT_S} s and was stopped") from None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.returncode is None:
                await proc.wait()
        return proc.returncode, out, err


# --------------------------------------------------------------------------- patches


def patch_reply(code: int | None, out: bytes, err: bytes) -> PatchResult:
    """The helper's JSON reply as a PatchResult; anything else is PatchUnavailable."""
    if code != 0:
        lines = strip_escapes(err.decode("utf-8", "replace")).strip().splitlines()
        why = lines[-1] if lines else f"exit status {code}"
        raise PatchUnavailable(f"the patch helper failed inside the sandbox: {why[:300]}")
    try:
        reply = json.loads(out) if len(out) <= MAX_PATCH_REPLY else None
    except ValueError:
        reply = None
    if isinstance(reply, dict) and reply.get("ok") is False and isinstance(reply.get("error"), str):
        raise PatchError(reply["error"])
    if isinstance(reply, dict) and reply.get("ok") is True:
        lists = [reply.get(k) for k in ("added", "modified", "deleted")]
        moved = reply.get("moved")
        if all(isinstance(x, list) and all(isinstance(p, str) for p in x) for x in lists) and (
            isinstance(moved, list)
            and all(isinstance(m, list) and len(m) == 2 and all(isinstance(p, str) for p in m) for m in moved)
        ):
            added, modified, deleted = (cast("list[str]", x) for x in lists)
            return PatchResult(added, modified, deleted, [(a, b) for a, b in moved])
    raise PatchUnavailable("the patch helper sent a malformed reply")


# --------------------------------------------------------------------------- host


class DaemonHost:
    """The agent loop's view of its session."""

    def __init__(self, manager: SessionManager, s: Session) -> None:
        self.manager = manager
        self.s = s

    def record(self, kind: str, data: dict[str, Any]) -> None:
        self.manager.record(self.s, kind, data)

    def delta(self, text: str) -> None:
        self.manager.bus.publish(AgentDelta(self.s, text))

    def set_status(self, status: Status, reason: str = "") -> None:
        state = SessionState(status)
        if self.s.state == state:
            if self.s.reason != reason:
                self.s.reason = reason
                self.manager.store.save_session(self.s)
                self.manager.publish_session(self.s)
            return
        self.s.reason = reason
        self.manager.set_state(self.s, state, reason)

    def append_items(self, items: list[Item], generation: int) -> None:
        self.manager.store.append_items(self.s.id, [i.to_dict() for i in items], generation)

    def replace_items(self, items: list[Item], generation: int) -> None:
        self.manager.store.replace_conversation(self.s.id, [i.to_dict() for i in items], generation)

    def set_approval(self, data: dict[str, Any] | None) -> None:
        self.manager.store.set_approval(self.s.id, data)
        self.manager.publish_session(self.s)

    def add_usage(self, tokens_in: int, tokens_out: int, cost: float) -> None:
        self.s.tokens_in += tokens_in
        self.s.tokens_out += tokens_out
        self.s.cost_usd = round(self.s.cost_usd + cost, 8)
        self.manager.store.save_session(self.s)
        self.manager.publish_session(self.s)

    def save_meta(self, key: str, value: Any) -> None:
        if not value and key not in self.s.extra:
            return
        self.s.extra[key] = value
        self.manager.store.save_session(self.s)

    async def worktree_changed(self) -> bool:
        return await has_changes(self.manager.git, self.s)


class AgentRuntime:
    """What SessionManager keeps in `runtimes` for a built-in session."""

    def __init__(self, s: Session, agent: Agent, daemon_stopping: asyncio.Event) -> None:
        self.s = s
        self.agent = agent
        self.daemon_stopping = daemon_stopping
        self.alive = True

    def stats(self) -> dict[str, Any]:
        a = self.agent
        return {
            "approval_pending": dict(a.pending) if a.pending else None,
            "turn_active": a.busy,
            "context_tokens": a.context_tokens,
            "context_window": a.provider.cfg.context_window,
        }

    async def stop(self) -> None:
        if self.daemon_stopping.is_set():
            # Stopped because the daemon stops: come back as it was on its next start.
            self.s.extra["resume_on_start"] = {"state": str(self.s.state), "reason": self.s.reason}
        self.s.extra.pop("stop_reason", None)
        self.alive = False
        await self.agent.stop()
        await self.agent.provider.close()

    def close(self) -> None:
        self.alive = False
