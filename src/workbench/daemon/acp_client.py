"""What an ACP agent may ask of its client, served inside the session's sandbox: files
(`fs/*`, through the `session_side/acp_fs.py` helper) and terminals (`terminal/*`, commands
run like the built-in agent's, with `manager.sandboxed`). Nothing here touches the worktree
as the daemon. Also the line transport under the SDK's connection (it says when a line is
not JSON instead of skipping it). acp_session.py plugs these into the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acp import RequestError
from acp.schema import EnvVariable, TerminalExitStatus

from workbench.errors import WorkbenchError
from workbench.session_side import launch

if TYPE_CHECKING:
    from workbench.core.models import Session
    from workbench.daemon.sessions import SessionManager

FS_TIMEOUT_S = 60
MAX_LINE = 64 << 20
DEFAULT_OUTPUT_LIMIT = 1 << 20


class LineTransport:
    """Newline-delimited JSON over the agent's stdio (acp's `Transport` protocol). A line
    that is not a JSON object ends the connection and is reported to `on_malformed`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_malformed: Callable[[str], None]) -> None:
        self.reader = reader
        self.writer = writer
        self.on_malformed = on_malformed

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(json.dumps(message).encode() + b"\n")
        await self.writer.drain()

    async def receive(self) -> dict[str, Any] | None:
        while True:
            try:
                line = await self.reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as e:
                line = e.partial
            except asyncio.LimitOverrunError:
                self.on_malformed(f"a line longer than {MAX_LINE} bytes")
                return None
            if not line:
                return None
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                msg = None
            if not isinstance(msg, dict):
                self.on_malformed(repr(line[:200].decode("utf-8", "replace")))
                return None
            return msg

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def inside(worktree: str, path: str) -> str:
    """`path` relative to the worktree, or a RequestError when it is elsewhere (checked
    again, symlinks resolved, inside the sandbox)."""
    root = os.path.normpath(worktree)
    full = os.path.normpath(path if os.path.isabs(path) else os.path.join(root, path))
    if full == root or not full.startswith(root + os.sep):
        raise RequestError.invalid_params({"path": path, "reason": f"outside the session's worktree {root}"})
    rel = os.path.relpath(full, root)
    if rel.split(os.sep)[0] == ".git":
        raise RequestError.invalid_params({"path": path, "reason": "the repository's .git is not the agent's"})
    return rel


class SandboxFiles:
    """`fs/read_text_file` and `fs/write_text_file` for one session."""

    def __init__(self, manager: SessionManager, s: Session) -> None:
        self.manager = manager
        self.s = s

    async def read(self, path: str, line: int | None, limit: int | None) -> str:
        reply = await self._helper({"op": "read", "path": inside(self.s.worktree, path), "line": line, "limit": limit})
        return str(reply.get("content", ""))

    async def write(self, path: str, content: str) -> None:
        await self._helper({"op": "write", "path": inside(self.s.worktree, path), "content": content})

    async def _helper(self, req: dict[str, Any]) -> dict[str, Any]:
        try:
            cmd = self.manager.sandboxed(self.s, launch.argv("acp_fs"), new_session=True)
        except WorkbenchError as e:
            raise RequestError.internal_error({"reason": f"the sandbox cannot run the file helper: {e}"}) from None
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd.argv, cwd=self.s.worktree, env=cmd.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True, pass_fds=tuple(cmd.pass_fds),
            )
        finally:
            cmd.close()
        try:
            out, err = await asyncio.wait_for(proc.communicate(json.dumps(req).encode()), FS_TIMEOUT_S)
        except TimeoutError:
            raise RequestError.internal_error({"reason": "the file helper timed out"}) from None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        try:
            reply = json.loads(out)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no reply"]
            raise RequestError.internal_error({"reason": f"the file helper failed: {tail[0][:300]}"})
        if not reply.get("ok"):
            raise RequestError.invalid_params({"path": req["path"], "reason": str(reply.get("error"))})
        return reply


class Terminal:
    """One `terminal/create` command: its output (the last `limit` bytes) and exit."""

    def __init__(self, proc: asyncio.subprocess.Process, limit: int) -> None:
        self.proc = proc
        self.limit = limit
        self.buf = bytearray()
        self.truncated = False
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(65536):
            self.buf += chunk
            if len(self.buf) > self.limit:
                del self.buf[: len(self.buf) - self.limit]
                self.truncated = True

    def output(self) -> str:
        return self.buf.decode("utf-8", "replace")

    def exit_status(self) -> TerminalExitStatus | None:
        code = self.proc.returncode
        if code is None:
            return None
        return TerminalExitStatus(exit_code=code if code >= 0 else None,
                                  signal=signal.Signals(-code).name if code < 0 else None)

    async def wait(self) -> TerminalExitStatus:
        await self.proc.wait()
        with contextlib.suppress(Exception):
            await self.reader
        status = self.exit_status()
        assert status is not None
        return status

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


class SandboxTerminals:
    """`terminal/*` for one session: each command in the session's sandbox, its own process
    group, stdin /dev/null, output merged."""

    def __init__(self, manager: SessionManager, s: Session) -> None:
        self.manager = manager
        self.s = s
        self.terms: dict[str, Terminal] = {}

    async def create(self, command: str, args: list[str] | None, env: list[EnvVariable] | None,
                     cwd: str | None, limit: int | None) -> str:
        argv = [command, *args] if args else (["/bin/sh", "-c", command] if " " in command else [command])
        if env:
            argv = ["/usr/bin/env", *(f"{e.name}={e.value}" for e in env), *argv]
        if cwd and os.path.normpath(cwd) != os.path.normpath(self.s.worktree):
            sub = inside(self.s.worktree, cwd)
            argv = ["/bin/sh", "-c", 'cd -- "$0" || exit 126; exec "$@"', sub, *argv]
        try:
            cmd = self.manager.sandboxed(self.s, argv, new_session=True)
        except WorkbenchError as e:
            raise RequestError.internal_error({"reason": f"the sandbox cannot run this command: {e}"}) from None
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd.argv, cwd=Path(self.s.worktree), env=cmd.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                pass_fds=tuple(cmd.pass_fds),
            )
        except OSError as e:
            raise RequestError.internal_error({"reason": f"cannot run {command}: {e.strerror or e}"}) from None
        finally:
            cmd.close()
        tid = "term-" + uuid.uuid4().hex[:12]
        self.terms[tid] = Terminal(proc, limit or DEFAULT_OUTPUT_LIMIT)
        return tid

    def get(self, tid: str) -> Terminal:
        term = self.terms.get(tid)
        if term is None:
            raise RequestError.invalid_params({"terminalId": tid, "reason": "no such terminal"})
        return term

    def release(self, tid: str) -> None:
        term = self.terms.pop(tid, None)
        if term is not None:
            term.kill()

    def close(self) -> None:
        for tid in list(self.terms):
            self.release(tid)
