"""One ACP session: the agent process in the session's sandbox, spoken to over its stdio
with the SDK's client-side connection (`acp.connect_to_agent`).

What the agent reports becomes the same transcript the built-in agent writes (see
docs/agents.md, "ACP"): message chunks stream as `delta` events and are recorded whole as
`assistant`; thoughts as `thought`; tool calls as `tool_call` / `tool_output` with their
diffs and locations; plans, usage, modes, stop reasons (`stop`). A permission request is a
workbench approval (`approval_pending`, the session `waiting`). Files and terminals the
agent asks for are served in the sandbox (acp_client.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from typing import Any, cast

from acp import PROTOCOL_VERSION, Client, RequestError, connect_to_agent, text_block
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    CreateTerminalResponse,
    DeniedOutcome,
    EnvVariable,
    FileEditToolCallContent,
    FileSystemCapabilities,
    Implementation,
    PermissionOption,
    ReadTextFileResponse,
    RequestPermissionResponse,
    TerminalOutputResponse,
    ToolCallUpdate,
    WaitForTerminalExitResponse,
)

from workbench.core.models import IDLE_REASON, Session, SessionState
from workbench.daemon.acp_client import MAX_LINE, LineTransport, SandboxFiles, SandboxTerminals
from workbench.daemon.acp_transcript import TranscriptWriter, unified
from workbench.daemon.sandboxing import LaunchSpec
from workbench.daemon.session_git import has_changes
from workbench.daemon.sessions import SessionManager
from workbench.errors import WorkbenchError

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
# Our decision -> the permission option kinds that carry it, in order of preference.
OPTION_KINDS = {
    "approve": ("allow_once", "allow_always"),
    "approve_always": ("allow_always", "allow_once"),
    "deny": ("reject_once", "reject_always"),
}


class AcpRuntime:
    """What the manager keeps in `runtimes` for an ACP session."""

    def __init__(self, manager: SessionManager, s: Session, spec: LaunchSpec, stopping: asyncio.Event) -> None:
        self.manager = manager
        self.s = s
        self.spec = spec
        self.argv = spec.argv
        self.daemon_stopping = stopping
        self.alive = False
        self.busy = False
        self.pending: dict[str, Any] | None = None
        self.acp_id = ""
        self._options: list[PermissionOption] = []
        self._answer: asyncio.Future[tuple[str, str]] | None = None
        self._queue: list[str] = []
        self._worker: asyncio.Task[None] | None = None
        self.replaying = False
        self._stopping = False
        self._failed = False
        self._stderr = bytearray()
        self._tasks: list[asyncio.Task[Any]] = []
        self.files = SandboxFiles(manager, s)
        self.terminals = SandboxTerminals(manager, s)
        self.transcript = TranscriptWriter(manager, s, self.terminals)
        self.proc: asyncio.subprocess.Process | None = None

    # -- start ---------------------------------------------------------------------------

    async def start(self, resume: bool) -> None:
        cmd = self.manager.sandboxed(self.s, self.argv, self.spec, new_session=True)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *cmd.argv, cwd=self.s.worktree, env=cmd.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, start_new_session=True, pass_fds=tuple(cmd.pass_fds), limit=MAX_LINE,
            )
        except OSError as e:
            raise WorkbenchError(f"cannot start the ACP agent {self.argv[0]}: {e.strerror or e}") from None
        finally:
            cmd.close()
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.alive = True
        self.s.pid = self.proc.pid
        transport = LineTransport(self.proc.stdout, self.proc.stdin, self._malformed)
        # _Client serves the stable protocol's methods; elicitation (unstable) is not offered.
        self.conn = connect_to_agent(cast("Client", _Client(self)), transport)
        self._tasks = [asyncio.get_running_loop().create_task(t) for t in (self._drain_stderr(), self._watch_exit())]
        try:
            await asyncio.wait_for(self._handshake(resume), START_TIMEOUT_S)
        except (ConnectionError, RequestError, TimeoutError, ValueError) as e:
            why = self._why(e)
            await self.stop()
            raise WorkbenchError(f"the ACP agent did not start: {why}") from None

    async def _handshake(self, resume: bool) -> None:
        init = await self.conn.initialize(
            protocol_version=PROTOCOL_VERSION,
            client_capabilities=ClientCapabilities(
                fs=FileSystemCapabilities(read_text_file=True, write_text_file=True), terminal=True),
            client_info=Implementation(name="workbench", version="1"),
        )
        caps = init.agent_capabilities
        can_load = bool(caps and caps.load_session)
        info = init.agent_info
        self.manager.record(self.s, "agent", {
            "protocol": "acp", "model": info.name if info else self.argv[0],
            "version": info.version if info else "", "command": self.argv,
            "wire_api": "acp", "endpoint": " ".join(self.argv)[:200],
            "load_session": can_load, "approval": self.s.approval, "sandbox": self.s.sandbox,
        })
        self.s.model = info.name if info else self.argv[0]
        prev = str(self.s.extra.get("acp_session_id") or "")
        if resume and prev and can_load:
            self.replaying = True  # the agent replays the conversation: the transcript has it
            try:
                await self.conn.load_session(cwd=self.s.worktree, session_id=prev, mcp_servers=[])
            finally:
                self.replaying = False
            self.acp_id = prev
            self.manager.record(self.s, "resumed", {"acp_session_id": prev})
            return
        if resume and prev:
            self.manager.record(self.s, "interrupted", {
                "reason": "this agent cannot load a session (no loadSession capability): a new "
                "conversation started and the agent does not remember the previous one"})
        new = await self.conn.new_session(cwd=self.s.worktree, mcp_servers=[])
        self.acp_id = new.session_id
        self.s.extra["acp_session_id"] = new.session_id
        self.manager.store.save_session(self.s)

    # -- turns ---------------------------------------------------------------------------

    def send(self, text: str) -> bool:
        """Queue `text` as the next prompt; True when it waits for the turn in progress."""
        queued = self.busy
        self._queue.append(text)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._turns())
        return queued

    async def _turns(self) -> None:
        # A message sent while the worker settles (an await, the worker not done yet) is
        # queued for this worker: it must look at the queue again after settling.
        while await self._turns_once():
            pass

    async def _turns_once(self) -> bool:
        """Run the queued turns, then settle; True when more were queued meanwhile."""
        while self._queue and self.alive and not self._failed:
            text = self._queue.pop(0)
            self.busy = True
            self.manager.record(self.s, "user", {"text": text})
            self._set(SessionState.RUNNING, "")
            try:
                resp = await self.conn.prompt(session_id=self.acp_id, prompt=[text_block(text)])
            except (ConnectionError, RequestError, ValueError) as e:
                self.transcript.flush()
                self.busy = False
                if self.proc is not None and not isinstance(e, RequestError):
                    with contextlib.suppress(TimeoutError):  # a dying agent: say how it ended
                        await asyncio.wait_for(self.proc.wait(), 2)
                if not self._stopping:
                    self._fail(self._why(e))
                return False
            self.transcript.flush()
            self.busy = False
            stop = str(resp.stop_reason)
            self.manager.record(self.s, "stop", {"stop_reason": stop})
            if resp.usage is not None:
                u = resp.usage
                self.s.tokens_in += u.input_tokens
                self.s.tokens_out += u.output_tokens
                self.manager.store.save_session(self.s)
                self.manager.record(self.s, "usage", {"tokens_in": u.input_tokens, "tokens_out": u.output_tokens,
                                                      "cached_tokens": u.cached_read_tokens or 0})
            if stop == "cancelled":
                self.manager.record(self.s, "interrupted", {"reason": "interrupted by the user"})
        if self.alive and not self._failed:
            await self.settle()
        return bool(self._queue) and self.alive and not self._failed

    async def settle(self) -> None:
        """Between turns: review if the worktree changed, else waiting for the person's next
        message (as the built-in agent)."""
        try:
            changed = await has_changes(self.manager.git, self.s)
        except Exception:
            log.exception("checking the worktree of %s failed", self.s.id)
            changed = False
        if not self.busy and self.alive:
            if changed:
                self._set(SessionState.REVIEW, "")
            else:
                self._set(SessionState.WAITING, IDLE_REASON)

    async def interrupt(self) -> bool:
        if not self.busy:
            return False
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(("cancel", ""))
        await self.conn.cancel(session_id=self.acp_id)
        return True

    # -- approvals -----------------------------------------------------------------------

    async def ask(self, call: ToolCallUpdate, options: list[PermissionOption]) -> RequestPermissionResponse:
        self.transcript.flush()
        diffs = [c for c in call.content or [] if isinstance(c, FileEditToolCallContent)]
        raw = call.raw_input if isinstance(call.raw_input, dict) else {}
        describe = call.title or str(raw.get("command") or call.tool_call_id)
        data: dict[str, Any] = {"call_id": call.tool_call_id, "kind": "patch" if diffs or call.kind == "edit"
                                else "command", "describe": describe, "requested_at": time.time()}
        if diffs:
            data["patch"] = "".join(unified(self.s.worktree, d) for d in diffs)
        command = raw.get("command")
        if isinstance(command, list) and all(isinstance(a, str) for a in command):
            data["argv"] = command
        elif isinstance(command, str):
            data["argv"] = ["/bin/sh", "-c", command]
        self.pending, self._options = data, options
        self._answer = asyncio.get_running_loop().create_future()
        self.manager.store.set_approval(self.s.id, data)
        self.manager.record(self.s, "approval_request", {k: v for k, v in data.items() if k != "requested_at"})
        self._set(SessionState.WAITING, f"approve {describe.splitlines()[0][:200] if describe else ''}")
        try:
            decision, reason = await self._answer
        finally:
            self.pending, self._answer = None, None
            self.manager.store.set_approval(self.s.id, None)
        if decision == "cancel":
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        self._set(SessionState.RUNNING, "")
        if decision == "deny" and reason:
            self._queue.append(reason)  # said to the agent as the next prompt, after this turn
        for kind in OPTION_KINDS[decision]:
            opt = next((o for o in options if o.kind == kind), None)
            if opt is not None:
                return RequestPermissionResponse(outcome=AllowedOutcome(outcome="selected", option_id=opt.option_id))
        return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))

    def answer(self, decision: str, reason: str) -> bool:
        if self._answer is None or self._answer.done():
            return False
        self._answer.set_result((decision, reason))
        return True

    # -- failures and stopping -----------------------------------------------------------

    def _set(self, state: SessionState, reason: str) -> None:
        if self.s.state != state or self.s.reason != reason:
            self.s.reason = reason
            self.manager.set_state(self.s, state, reason)

    def _why(self, e: BaseException) -> str:
        if isinstance(e, RequestError):
            return f"the agent answered with an error: {e}"
        if isinstance(e, TimeoutError):
            return f"no answer within {START_TIMEOUT_S:.0f} s"
        code = self.proc.returncode if self.proc else None
        tail = self._stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        said = f" (it said: {tail[0][:300]})" if tail else ""
        if code is not None:
            return f"the agent exited with code {code}{said}"
        return f"{e or type(e).__name__}{said}"

    def _fail(self, why: str) -> None:
        if self._failed:
            return
        self._failed = True
        self.busy = False
        self.manager.record(self.s, "error", {"message": why})
        self._set(SessionState.ERROR, why[:500])
        self.manager.spawn(self.stop())

    def _malformed(self, line: str) -> None:
        self._fail(f"the agent sent a malformed message (not JSON-RPC): {line}")

    async def _drain_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(65536):
            self._stderr += chunk
            del self._stderr[:-8192]

    async def _watch_exit(self) -> None:
        assert self.proc is not None
        code = await self.proc.wait()
        self.s.pid = None
        self.s.exit_code = code
        if not self._stopping and self.alive:
            await asyncio.sleep(0.1)  # let stderr's last words arrive
            self._fail(self._why(ConnectionError("the agent exited")))

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self.s.extra.pop("stop_reason", None)
        if self.daemon_stopping.is_set():
            self.s.extra["resume_on_start"] = {"state": str(self.s.state), "reason": self.s.reason}
        self.alive = False
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(("cancel", ""))
        self.terminals.close()
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 3)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await self.proc.wait()
        with contextlib.suppress(Exception):
            await self.conn.close()
        for t in [*self._tasks, *([self._worker] if self._worker else [])]:
            if t is not asyncio.current_task():
                t.cancel()

    def close(self) -> None:
        self.alive = False


class _Client:
    """The SDK's Client side for one runtime: updates, permissions, files, terminals."""

    def __init__(self, rt: AcpRuntime) -> None:
        self.rt = rt

    def _check(self, session_id: str) -> None:
        if session_id != self.rt.acp_id and self.rt.acp_id:
            raise RequestError.invalid_params({"sessionId": session_id, "reason": "not this session"})

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        # Updates replayed by session/load are already in the transcript.
        if (session_id == self.rt.acp_id or not self.rt.acp_id) and not self.rt.replaying:
            self.rt.transcript.update(update)

    async def request_permission(self, session_id: str, tool_call: ToolCallUpdate,
                                 options: list[PermissionOption], **kwargs: Any) -> RequestPermissionResponse:
        self._check(session_id)
        return await self.rt.ask(tool_call, options)

    async def read_text_file(self, session_id: str, path: str, line: int | None = None,
                             limit: int | None = None, **kwargs: Any) -> ReadTextFileResponse:
        self._check(session_id)
        return ReadTextFileResponse(content=await self.rt.files.read(path, line, limit))

    async def write_text_file(self, session_id: str, path: str, content: str, **kwargs: Any) -> None:
        self._check(session_id)
        await self.rt.files.write(path, content)

    async def create_terminal(self, session_id: str, command: str, args: list[str] | None = None,
                              env: list[EnvVariable] | None = None, cwd: str | None = None,
                              output_byte_limit: int | None = None, **kwargs: Any) -> CreateTerminalResponse:
        self._check(session_id)
        tid = await self.rt.terminals.create(command, args, env, cwd, output_byte_limit)
        return CreateTerminalResponse(terminal_id=tid)

    async def terminal_output(self, session_id: str, terminal_id: str, **kwargs: Any) -> TerminalOutputResponse:
        term = self.rt.terminals.get(terminal_id)
        return TerminalOutputResponse(output=term.output(), truncated=term.truncated, exit_status=term.exit_status())

    async def wait_for_terminal_exit(self, session_id: str, terminal_id: str,
                                     **kwargs: Any) -> WaitForTerminalExitResponse:
        st = await self.rt.terminals.get(terminal_id).wait()
        return WaitForTerminalExitResponse(exit_code=st.exit_code, signal=st.signal)

    async def kill_terminal(self, session_id: str, terminal_id: str, **kwargs: Any) -> None:
        self.rt.terminals.get(terminal_id).kill()

    async def release_terminal(self, session_id: str, terminal_id: str, **kwargs: Any) -> None:
        self.rt.terminals.release(terminal_id)

    async def ext_method(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        raise RequestError.method_not_found(method)

    async def ext_notification(self, method: str, params: dict[str, Any]) -> None:
        return None
