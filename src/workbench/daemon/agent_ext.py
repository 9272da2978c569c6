"""The built-in agent inside the daemon: its extension (launcher, resume, delivery of
review text) and its socket methods; the demo's scripted model servers are in agent_demo.py.

Each built-in session gets an `Agent` (agent/loop.py) whose host is the session
(agent_host.py): transcript entries go to the event log (and to subscribers as `log`
events), conversation items and the pending approval to the store, streamed text to
subscribers as `delta` events. Commands the model runs go through the session's sandbox
(`agent_host.SandboxRunner`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from workbench.agent.conversation import AssistantMessage, Item, SystemMessage, item_from_dict
from workbench.agent.prompts import PromptContext
from workbench.agent.tools import PatchUnavailable
from workbench.config import PROVIDER_OVERRIDES, Config
from workbench.core.models import Session, SessionState
from workbench.daemon.agent_demo import DemoServers, start_demo
from workbench.daemon.agent_host import BUILTIN, AgentRuntime, DaemonHost, SandboxRunner
from workbench.daemon.api import method
from workbench.daemon.extensions import Extension, Launcher, NewRequest
from workbench.daemon.hub import Client
from workbench.daemon.sessions import LIVE_STATES
from workbench.errors import UsageError, WorkbenchError
from workbench.protocol import agent as pa
from workbench.protocol import session as ps
from workbench.protocol.session import EventsParams, IdParams, LogEntry

if TYPE_CHECKING:
    # The loop pulls in the openai SDK (~0.3 s): imported on the first built-in launch.
    from workbench.agent.loop import Agent
    from workbench.agent.providers import ProviderConfig
    from workbench.daemon.api import Daemon

log = logging.getLogger(__name__)

# Event-log kinds that make up a transcript (`log` returns only these).
TRANSCRIPT_KINDS = frozenset({
    "agent", "user", "assistant", "tool_call", "tool_output", "plan", "approval_request",
    "approval", "error", "usage", "compaction", "retry", "interrupted", "send",
    "thought", "stop", "mode", "resumed",  # ACP sessions (acp_session.py)
    "notice",  # e.g. the endpoint refused streaming
})  # fmt: skip
# Where a session's one-off provider settings (`new --model/--base-url/--wire-api`) are kept.
OVERRIDES_KEY = "provider_overrides"
STARTING_WAIT_S = 30.0


def is_builtin(s: Session) -> bool:
    return is_builtin_agent(s.agent)


def is_builtin_agent(agent: str) -> bool:
    return (agent.split() or [""])[0] == BUILTIN


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

    def check_new(self, req: NewRequest, cfg: Config, agent: str) -> None:
        """A built-in session's provider must resolve now (a bad name or model is the `new`
        command's error); its one-off settings are kept for every launch of the session."""
        overrides = {k: v for k in PROVIDER_OVERRIDES if (v := getattr(req, k))}
        if not is_builtin_agent(agent):
            if overrides:
                opts = ", ".join(PROVIDER_OVERRIDES[k] for k in overrides)
                raise UsageError(f"{opts}: only for the built-in agent (--agent builtin)")
            return
        if req.extra.get("demo"):
            return
        from workbench.agent.providers import make_provider_config

        choice = cfg.choose_provider(req.provider, overrides)
        pcfg = make_provider_config(choice.settings, os.environ, choice.sources)
        if pcfg.base_url is None and pcfg.api_key is None:
            # The public API without a key can only fail (and the SDK would retry DNS or 401s).
            raise UsageError(
                f"the built-in agent has no API key: ${pcfg.api_key_env} is not set in the daemon's "
                f"environment (provider {choice.name!r})",
                hint=f"export {pcfg.api_key_env}=... and restart the daemon (`workbench daemon stop`), "
                "or use a local server: --base-url http://127.0.0.1:11434/v1 --model NAME (docs/agent.md)",
            )
        if overrides:
            req.extra[OVERRIDES_KEY] = overrides

    def provider_config(self, s: Session, cfg: Config) -> ProviderConfig:
        """The session's provider: config.toml as it is now (a new provider needs no daemon
        restart) with the session's own settings on top."""
        from workbench.agent.providers import make_provider_config

        if s.extra.get("demo"):
            return self.demo.provider_config(s.id)
        stored = s.extra.get(OVERRIDES_KEY)
        overrides = {k: v for k, v in stored.items() if isinstance(v, str)} if isinstance(stored, dict) else {}
        choice = cfg.choose_provider(s.provider or None, overrides)
        return make_provider_config(choice.settings, os.environ, choice.sources)

    async def launch(self, s: Session, cfg: Config, resume: bool) -> None:
        from workbench.agent.loop import IDLE_REASON, Agent, Grants, LoopOptions
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
            DaemonHost(self.manager, s),
            SandboxRunner(self.manager, s, hide_env=(pcfg.api_key_env,)),
            opts,
            items=items,
            generation=gen,
            pending=self.store.approval(s.id) if items else None,
            grants=Grants.from_dict(s.extra.get("approval_grants")),
            queued=[q for q in queued if isinstance(q, str)] if isinstance(queued, list) else None,
        )
        rt = AgentRuntime(s, agent, self.daemon.stopping)
        self.manager.runtimes[s.id] = rt
        self.store.save_session(s)
        if not items:
            self.manager.set_state(s, SessionState.RUNNING, "")
            self.manager.record(s, "agent", {
                "model": pcfg.model, "provider": "demo" if s.extra.get("demo") else s.provider,
                "endpoint": provider.endpoint, "wire_api": pcfg.wire_api,
                "approval": s.approval, "sandbox": s.sandbox, "sources": pcfg.sources,
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
        changed = await DaemonHost(self.manager, s).worktree_changed()
        if changed:
            s.reason = ""
            self.manager.set_state(s, SessionState.REVIEW, "")
        else:
            self.manager.set_state(s, SessionState.WAITING, IDLE_REASON)

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
            await self.manager.resume(s)

    def on_shutdown(self) -> None:
        self.demo.stop_all()


def _finished(items: list[Item]) -> bool:
    last = items[-1] if items else None
    return isinstance(last, SystemMessage) or (isinstance(last, AssistantMessage) and not last.tool_calls)


# --------------------------------------------------------------------------- methods


def _ext(d: Daemon) -> BuiltinAgents:
    return d.manager.require_extension(BuiltinAgents, "the built-in agent extension")


@method(pa.SEND)
async def send(d: Daemon, c: Client, p: pa.SendParams) -> pa.SendResult:
    s = d.manager.get(p["id"])
    text = p["text"]
    if not text.strip():
        raise UsageError("the message is empty")
    if not is_builtin(s):
        busy = bool(d.manager.describe(s).get("turn_active"))
        for ext in d.manager.extensions:
            if await ext.deliver(s, text) is not None:  # an agent an extension runs (ACP)
                return {"id": s.id, "queued": busy}
        n = d.manager.send_to_pty(s, text)
        return {"id": s.id, "queued": False, "bytes": n}
    agent = await _ext(d).agent_for(s)
    queued = agent.send(text)
    return {"id": s.id, "queued": queued}


async def _answer(d: Daemon, sid: str, decision: pa.Decision, reason: str) -> pa.AnswerResult:
    s = d.manager.get(sid)
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


@method(pa.APPROVE)
async def approve(d: Daemon, c: Client, p: pa.ApproveParams) -> pa.AnswerResult:
    return await _answer(d, p["id"], "approve_always" if p.get("always") else "approve", "")


@method(pa.DENY)
async def deny(d: Daemon, c: Client, p: pa.DenyParams) -> pa.AnswerResult:
    return await _answer(d, p["id"], "deny", p.get("reason", ""))


@method(pa.LOG)
async def log_entries(d: Daemon, c: Client, p: EventsParams) -> list[LogEntry]:
    s = d.manager.get(p["id"])
    evs = d.store.events(s.id, after=p.get("after", 0), limit=p.get("limit", 100_000) or 100_000)
    return [e for e in evs if e["kind"] in TRANSCRIPT_KINDS]


@method(pa.INTERRUPT)
async def interrupt(d: Daemon, c: Client, p: IdParams) -> pa.InterruptResult:
    s = d.manager.get(p["id"])
    if not is_builtin(s):
        for ext in d.manager.extensions:
            done = await ext.interrupt(s)
            if done is not None:
                return {"id": s.id, "interrupted": done}
        raise UsageError(
            f"session {s.name} runs {s.agent!r} in a terminal; interrupt it with its own key",
            hint=f"e.g. `workbench keys {s.id} '\\x1b'` (Esc) or '\\x03' (Ctrl-C)",
        )
    rt = d.manager.runtimes.get(s.id)
    if not (isinstance(rt, AgentRuntime) and rt.alive):
        return {"id": s.id, "interrupted": False}
    return {"id": s.id, "interrupted": await rt.agent.interrupt()}


@method(pa.COMPACT)
async def compact(d: Daemon, c: Client, p: IdParams) -> pa.CompactResult:
    s = d.manager.get(p["id"])
    if not is_builtin(s):
        raise UsageError(f"session {s.name} is not a built-in agent session; only those can be compacted")
    agent = await _ext(d).agent_for(s)
    done = await agent.compact()
    return cast(pa.CompactResult, {"id": s.id, **done})


@method(ps.DEMO)
async def demo(d: Daemon, c: Client, p: ps.DemoParams) -> ps.DemoResult:
    """`workbench demo` on the scripted servers this extension owns (agent_demo.py)."""
    return await start_demo(d, _ext(d).demo, p)


# --------------------------------------------------------------------------- setup


def setup(daemon: Daemon) -> BuiltinAgents:
    return BuiltinAgents(daemon)
