"""The built-in agent inside the daemon: its launcher, socket methods, resume and the demo.

Each built-in session gets an `Agent` (agent/loop.py) whose host is the session: transcript
entries go to the event log (and to subscribers as `log` events), conversation items and
the pending approval to the store, streamed text to subscribers as `delta` events.
Commands the model runs go through the session's sandbox (`SandboxRunner`).

Over 600 lines because it holds the built-in agent's extension, its sandbox runner and its
socket methods; they split along those three seams (issue 13, item 4).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from workbench.agent.conversation import AssistantMessage, Item, SystemMessage, item_from_dict
from workbench.agent.patch import PatchError, PatchResult
from workbench.agent.prompts import PromptContext
from workbench.agent.tools import CommandResult, PatchUnavailable, collect_output
from workbench.config import Config
from workbench.core.escapes import strip_escapes
from workbench.core.models import Session, SessionState
from workbench.daemon.api import legacy_method as method
from workbench.daemon.bus import AgentDelta
from workbench.daemon.extensions import Extension, Launcher
from workbench.daemon.hub import Client
from workbench.daemon.protocol import Params
from workbench.daemon.session_git import has_changes
from workbench.daemon.sessions import LIVE_STATES, CreateRequest, SessionManager
from workbench.errors import UsageError, WorkbenchError
from workbench.session_side import launch

if TYPE_CHECKING:
    # The loop pulls in the openai SDK (~0.3 s): imported on the first built-in launch.
    from workbench.agent.loop import Agent, Decision, Status
    from workbench.agent.providers import ProviderConfig
    from workbench.daemon.api import Daemon
    from workbench.demo.script import FakeOpenAI

log = logging.getLogger(__name__)

BUILTIN = "builtin"
# Event-log kinds that make up a transcript (`log` returns only these).
TRANSCRIPT_KINDS = frozenset({
    "agent", "user", "assistant", "tool_call", "tool_output", "plan", "approval_request",
    "approval", "error", "usage", "compaction", "retry", "interrupted", "send",
})  # fmt: skip
MAX_CAPTURE_BYTES = 8 * 1024 * 1024
STARTING_WAIT_S = 30.0


def is_builtin(s: Session) -> bool:
    return (s.agent.split() or [""])[0] == BUILTIN


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
            proc = await asyncio.create_subprocess_exec(
                *cmd.argv,
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
        return await collect_output(proc, timeout_ms, MAX_CAPTURE_BYTES, elapsed)

    async def apply_patch(self, patch: str, root: Path, cwd: Path) -> PatchResult:
        """Apply a patch inside the session's sandbox (`session_side/apply_patch.py`), as the
        session: it can write only where the session's own commands can."""
        worktree = Path(os.path.realpath(self.session.worktree))
        try:
            workdir = Path(os.path.realpath(cwd)).relative_to(worktree).as_posix()
        except ValueError:
            raise PatchError(f"working directory {str(cwd)!r} is outside the workspace root") from None
        code, out, err = await self._helper(["--cwd", workdir], patch.encode("utf-8", "surrogatepass"))
        return _patch_reply(code, out, err)

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

PATCH_TIMEOUT_S = 120
MAX_PATCH_REPLY = 4 << 20


def _patch_reply(code: int | None, out: bytes, err: bytes) -> PatchResult:
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

    def __init__(self, ext: BuiltinAgents, s: Session) -> None:
        self.ext = ext
        self.manager = ext.manager
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

    def __init__(self, ext: BuiltinAgents, s: Session, agent: Agent) -> None:
        self.ext = ext
        self.s = s
        self.agent = agent
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
        if self.ext.daemon.stopping.is_set():
            # Stopped because the daemon stops: come back as it was on its next start.
            self.s.extra["resume_on_start"] = {"state": str(self.s.state), "reason": self.s.reason}
        self.s.extra.pop("stop_reason", None)
        self.alive = False
        await self.agent.stop()
        await self.agent.provider.close()

    def close(self) -> None:
        self.alive = False


# --------------------------------------------------------------------------- extension


class BuiltinAgents(Extension):
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.manager = daemon.manager
        self.store = daemon.store
        self.demo = DemoServers()

    def launchers(self) -> Mapping[str, Launcher]:
        return {BUILTIN: self.launch}

    # -- launching -----------------------------------------------------------------------

    def provider_config(self, s: Session, cfg: Config) -> ProviderConfig:
        from workbench.agent.providers import make_provider_config

        if s.extra.get("demo"):
            return self.demo.provider_config(s.id)
        return make_provider_config(cfg.provider(s.provider or None), os.environ)

    async def launch(self, s: Session, cfg: Config, resume: bool) -> None:
        from workbench.agent.loop import Agent, Grants, LoopOptions
        from workbench.agent.providers import Provider

        old = self.manager.runtimes.get(s.id)
        if isinstance(old, AgentRuntime) and old.alive:
            await old.stop()
        if not Path(s.worktree).is_dir():
            raise WorkbenchError(f"worktree missing: {s.worktree}; remove the session with `workbench rm`")
        if s.sandbox != "off":
            self.manager.require_sandbox(s.sandbox)
        pcfg = self.provider_config(s, cfg)
        gen, raw = self.store.conversation(s.id)
        try:
            items = [item_from_dict(d) for d in raw]
        except WorkbenchError as e:
            raise WorkbenchError(f"the stored conversation of session {s.name} is damaged: {e}") from None
        if items:
            try:
                stale = await SandboxRunner(self.manager, s).remove_stale_patch_temps()
            except PatchUnavailable as e:
                stale = []
                log.warning("session %s: %s", s.id, e)
            if stale:
                log.info("session %s: removed %d temporaries of a cut-off apply_patch", s.id, len(stale))
        provider = Provider(pcfg)
        s.model = pcfg.model
        s.pid = None
        s.exit_code = None
        prev = s.extra.pop("resume_on_start", None)
        prev_state = prev.get("state") if isinstance(prev, dict) else None
        opts = LoopOptions(
            root=Path(s.worktree),
            prompt=PromptContext(
                worktree=Path(s.worktree), branch=s.branch, sandbox=s.sandbox,
                network=s.network, approval=s.approval, model=pcfg.model,
            ),
            compact_threshold=cfg.agent.compact_threshold,
            max_output_bytes=cfg.agent.max_tool_output_bytes,
            command_timeout_ms=cfg.agent.command_timeout_ms,
            max_turns=cfg.agent.max_turns,
        )
        queued = s.extra.get("queued")
        agent = Agent(
            provider,
            DaemonHost(self, s),
            SandboxRunner(self.manager, s, hide_env=(pcfg.api_key_env,)),
            opts,
            items=items,
            generation=gen,
            pending=self.store.approval(s.id) if items else None,
            grants=Grants.from_dict(s.extra.get("approval_grants")),
            queued=[q for q in queued if isinstance(q, str)] if isinstance(queued, list) else None,
        )
        rt = AgentRuntime(self, s, agent)
        self.manager.runtimes[s.id] = rt
        self.store.save_session(s)
        if not items:
            self.manager.set_state(s, SessionState.RUNNING, "")
            self.manager.record(s, "agent", {
                "model": pcfg.model, "provider": "demo" if s.extra.get("demo") else s.provider,
                "endpoint": provider.endpoint, "wire_api": pcfg.wire_api,
                "approval": s.approval, "sandbox": s.sandbox,
            })
            agent.begin(s.prompt)
            return
        if agent.resume():
            return
        if prev_state == SessionState.ERROR:
            reason = str(prev.get("reason") or "") if isinstance(prev, dict) else ""
            s.reason = reason
            self.manager.set_state(s, SessionState.ERROR, reason or "error before the daemon restarted")
            return
        if not _finished(items):
            self.manager.record(s, "interrupted", {
                "reason": "the previous turn did not finish (the session stopped or the daemon "
                "restarted); send a message to continue",
            })
        changed = await DaemonHost(self, s).worktree_changed()
        s.reason = ""
        self.manager.set_state(s, SessionState.REVIEW if changed else SessionState.RUNNING, "")

    async def deliver(self, s: Session, text: str) -> str | None:
        if not is_builtin(s):
            return None
        (await self.agent_for(s)).send(text)
        return "message"

    async def agent_for(self, s: Session) -> Agent:
        """The session's agent, loading it from the store if it is not running."""
        rt = self.manager.runtimes.get(s.id)
        if isinstance(rt, AgentRuntime) and rt.alive:
            return rt.agent
        if s.state == SessionState.STARTING:
            # Just created (or running its set-up command): the launcher is on its way.
            deadline = time.monotonic() + STARTING_WAIT_S
            while s.state == SessionState.STARTING and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                rt = self.manager.runtimes.get(s.id)
                if isinstance(rt, AgentRuntime) and rt.alive:
                    return rt.agent
            if s.state == SessionState.STARTING:
                raise UsageError(f"session {s.name} is still starting; try again in a moment")
            if s.state == SessionState.ERROR and s.id not in self.manager.runtimes:
                raise WorkbenchError(f"session {s.name} failed to start: {s.reason}")
        await self.manager.launch(s, resume=True)
        rt = self.manager.runtimes.get(s.id)
        if not isinstance(rt, AgentRuntime):
            raise WorkbenchError(f"session {s.name}: the built-in agent did not start")
        return rt.agent

    # -- description and recovery --------------------------------------------------------

    def describe(self, s: Session) -> dict[str, Any]:
        return self.stats(s) if is_builtin(s) else {}

    def stats(self, s: Session) -> dict[str, Any]:
        """What a built-in session's description adds: the pending approval and more."""
        rt = self.manager.runtimes.get(s.id)
        if isinstance(rt, AgentRuntime) and rt.agent is not None:
            return rt.stats()
        # Not loaded (stopped, or finished before a restart): the store has the approval.
        return {"approval_pending": self.store.approval(s.id), "turn_active": False}

    async def after_recover(self, prior: Mapping[str, SessionState]) -> None:
        """Relaunch the built-in sessions that were live (or stopped with the daemon)."""
        for s in list(self.manager.sessions.values()):
            if not is_builtin(s) or s.id not in prior:
                continue
            if not (prior[s.id] in LIVE_STATES or s.extra.get("resume_on_start")):
                continue
            if not Path(s.worktree).is_dir():
                continue
            try:
                await self.manager.launch(s, resume=True)
            except WorkbenchError as e:
                self.manager.set_state(s, SessionState.ERROR, f"could not resume: {e}")
            except Exception as e:
                log.exception("resuming session %s failed", s.id)
                self.manager.set_state(s, SessionState.ERROR, f"internal error while resuming: {e}")

    def on_shutdown(self) -> None:
        self.demo.stop_all()


def _finished(items: list[Item]) -> bool:
    last = items[-1] if items else None
    return isinstance(last, SystemMessage) or (isinstance(last, AssistantMessage) and not last.tool_calls)


# --------------------------------------------------------------------------- demo


class DemoServers:
    """Scripted model servers for `workbench demo`, one per demo run, inside the daemon so
    they live as long as the sessions. Nothing here touches the user's config."""

    def __init__(self) -> None:
        self.servers: list[FakeOpenAI] = []
        self.by_session: dict[str, FakeOpenAI] = {}

    def start(self) -> FakeOpenAI:
        from workbench.demo.script import FakeOpenAI, demo_scripts

        fake = FakeOpenAI(demo_scripts())
        fake.start()
        self.servers.append(fake)
        return fake

    def provider_config(self, session_id: str) -> ProviderConfig:
        from workbench.demo.script import demo_provider_config

        fake = self.by_session.get(session_id)
        if fake is None:  # a demo session resumed after a daemon restart
            fake = self.by_session[session_id] = self.start()
        return demo_provider_config(fake.base_url)

    def stop_all(self) -> None:
        for fake in self.servers:
            fake.stop()
        self.servers.clear()
        self.by_session.clear()


# --------------------------------------------------------------------------- methods


def _ext(d: Daemon) -> BuiltinAgents:
    ext = d.manager.extension(BuiltinAgents)
    if ext is None:
        raise WorkbenchError("the built-in agent extension is not loaded in this daemon")
    return ext


@method("send")
async def send(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    s = d.manager.get(p.str("id", required=True))
    text = p.str("text", required=True)
    if not text.strip():
        raise UsageError("the message is empty")
    if not is_builtin(s):
        n = d.manager.send_to_pty(s, text)
        return {"id": s.id, "queued": False, "bytes": n}
    agent = await _ext(d).agent_for(s)
    queued = agent.send(text)
    return {"id": s.id, "queued": queued}


async def _answer(d: Daemon, p: Params, decision: Decision, reason: str) -> dict[str, Any]:
    s = d.manager.get(p.str("id", required=True))
    if not is_builtin(s):
        d.manager.answer_pty(s, decision, reason or None)
        return {"id": s.id, "decision": decision}
    ext = _ext(d)
    rt = d.manager.runtimes.get(s.id)
    loaded = isinstance(rt, AgentRuntime) and rt.alive
    if not loaded and d.store.approval(s.id) is None:
        raise UsageError(f"no approval is pending for session {s.name}")
    agent = await ext.agent_for(s)
    pending = agent.answer(decision, reason)
    return {"id": s.id, "decision": decision, "call_id": pending.get("call_id"),
            "describe": pending.get("describe", "")}


@method("approve")
async def approve(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    return await _answer(d, p, "approve_always" if p.bool("always") else "approve", "")


@method("deny")
async def deny(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    return await _answer(d, p, "deny", p.str("reason", "") or "")


@method("log")
async def log_entries(d: Daemon, c: Client, p: Params) -> list[Any]:
    s = d.manager.get(p.str("id", required=True))
    after = p.int("after", 0) or 0
    limit = p.int("limit", 100_000) or 100_000
    evs = d.store.events(s.id, after=after, limit=limit)
    return [e for e in evs if e["kind"] in TRANSCRIPT_KINDS]


@method("interrupt")
async def interrupt(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    s = d.manager.get(p.str("id", required=True))
    if not is_builtin(s):
        raise UsageError(
            f"session {s.name} runs {s.agent!r} in a terminal; interrupt it with its own key",
            hint=f"e.g. `workbench keys {s.id} '\\x1b'` (Esc) or '\\x03' (Ctrl-C)",
        )
    rt = d.manager.runtimes.get(s.id)
    if not (isinstance(rt, AgentRuntime) and rt.alive):
        return {"id": s.id, "interrupted": False}
    return {"id": s.id, "interrupted": await rt.agent.interrupt()}


@method("compact")
async def compact(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    s = d.manager.get(p.str("id", required=True))
    if not is_builtin(s):
        raise UsageError(f"session {s.name} is not a built-in agent session; only those can be compacted")
    agent = await _ext(d).agent_for(s)
    return {"id": s.id, **await agent.compact()}


@method("demo")
async def demo(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """Three built-in sessions on `repo`, driven by a scripted model served in the daemon."""
    from workbench.demo.script import DEMO_MODEL, DEMO_SESSIONS

    ext = _ext(d)
    repo = p.str("repo", required=True)
    ok = bool(d.sandbox_status.get("ok"))
    sandbox = "workspace" if ok else "off"
    notice = "" if ok else (
        f"bubblewrap cannot run here ({d.sandbox_status.get('reason')}), so the demo sessions "
        "run with sandbox OFF (shown in red); they only touch the demo repo"
    )
    fake = ext.demo.start()
    sessions = []
    for spec in DEMO_SESSIONS:
        name = spec.name
        n = 2
        while d.store.name_taken(name):
            name = f"{spec.name}-{n}"
            n += 1
        s, warnings = await d.manager.create(CreateRequest(
            repo=repo, agent=BUILTIN, name=name, sandbox=sandbox, approval=spec.approval,
            prompt=spec.prompt, provider="demo", extra={"demo": True},
        ))
        # No await since create() returned: the launcher has not run yet.
        ext.demo.by_session[s.id] = fake
        sessions.append({**d.manager.describe(s), "warnings": warnings, "role": spec.role})
    return {"repo": repo, "sandbox": sandbox, "notice": notice, "model": DEMO_MODEL,
            "base_url": fake.base_url, "sessions": sessions}


# --------------------------------------------------------------------------- setup


def setup(daemon: Daemon) -> BuiltinAgents:
    return BuiltinAgents(daemon)
