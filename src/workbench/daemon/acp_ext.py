"""ACP sessions as a daemon extension: `--agent 'acp:COMMAND ARGS'` (or `acp:gemini` and the
other profiles in profiles/acp.py) starts the agent in the session's sandbox and worktree
and drives it over the Agent Client Protocol (acp_session.py). Its sessions describe
themselves like built-in ones (`transcript`, `approval_pending`, `turn_active`), so the UI
and CLI show, answer and review them the same way.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import profiles
from workbench.config import Config
from workbench.core.models import Session, SessionState
from workbench.daemon.extensions import Extension, Launcher
from workbench.daemon.sandboxing import LaunchSpec, session_home
from workbench.daemon.sessions import LIVE_STATES
from workbench.errors import WorkbenchError
from workbench.profiles import acp as acp_profiles
from workbench.profiles import integrations

if TYPE_CHECKING:
    from workbench.daemon.acp_session import AcpRuntime
    from workbench.daemon.api import Daemon



def is_acp(s: Session) -> bool:
    return acp_profiles.is_acp(s.agent)


class AcpAgents(Extension):
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.manager = daemon.manager
        self.store = daemon.store

    def launchers(self) -> Mapping[str, Launcher]:
        return {acp_profiles.PREFIX: self.launch}

    def runtime(self, s: Session) -> AcpRuntime | None:
        if not is_acp(s):
            return None
        from workbench.daemon.acp_session import AcpRuntime

        rt = self.manager.runtimes.get(s.id)
        return rt if isinstance(rt, AcpRuntime) and rt.alive else None

    async def launch(self, s: Session, cfg: Config, resume: bool) -> None:
        # The ACP SDK's schema costs ~0.4 s of CPU to import: a daemon that runs no ACP
        # session never pays it.
        from workbench.daemon.acp_session import AcpRuntime

        argv = acp_profiles.command(s.agent)
        old = self.manager.runtimes.get(s.id)
        if isinstance(old, AcpRuntime) and old.alive:
            await old.stop()
        if not Path(s.worktree).is_dir():
            raise WorkbenchError(f"worktree missing: {s.worktree}; remove the session with `workbench rm`")
        if s.sandbox != "off":
            self.manager.require_sandbox(s.sandbox)
        if "/" not in argv[0] and shutil.which(argv[0]) is None:
            prof = acp_profiles.profile_of(argv)
            hint = f"; install it: {prof.install_hint}" if prof else ""
            raise WorkbenchError(f"the ACP agent `{argv[0]}` is not installed (not on PATH){hint}")
        s.extra.pop("resume_on_start", None)
        if self.store.approval(s.id) is not None:  # an old request died with its agent
            self.store.set_approval(s.id, None)
        rt = AcpRuntime(self.manager, s, self.spec(s, cfg, argv), self.daemon.stopping)
        self.manager.runtimes[s.id] = rt
        s.exit_code = None
        await rt.start(resume)
        self.store.save_session(s)
        if not resume and s.prompt:
            rt.send(s.prompt)
        else:
            await rt.settle()

    def spec(self, s: Session, cfg: Config, argv: list[str]) -> LaunchSpec:
        """What the sandbox must show the agent: for a profile (`acp:codex`), the credentials,
        variables and network of the terminal profile of the same name (the same CLI's login)."""
        prof = acp_profiles.profile_of(argv)
        term = profiles.resolve(prof.name, cfg) if prof is not None else None
        if term is None or s.sandbox == "off":
            return LaunchSpec(argv=argv)
        binds, _missing = integrations.link_credentials(term, session_home(s))
        return LaunchSpec(argv=argv, ro_binds=binds, pass_env=list(term.pass_env), network=term.network or None)

    async def deliver(self, s: Session, text: str) -> str | None:
        if not is_acp(s):
            return None
        rt = self.runtime(s)
        if rt is None:
            await self.manager.launch(s, resume=True)
            rt = self.runtime(s)
            if rt is None:
                raise WorkbenchError(f"session {s.name}: the ACP agent did not start")
        rt.send(text)
        return "message"

    async def interrupt(self, s: Session) -> bool | None:
        if not is_acp(s):
            return None
        rt = self.runtime(s)
        return await rt.interrupt() if rt is not None else False

    def answer_pty(self, s: Session, action: str, text: str | None) -> bool:
        rt = self.runtime(s) if is_acp(s) else None
        return rt is not None and rt.answer(action, text or "")

    def describe(self, s: Session) -> dict[str, Any]:
        if not is_acp(s):
            return {}
        rt = self.runtime(s)
        d: dict[str, Any] = {"transcript": True, "turn_active": bool(rt and rt.busy),
                             "approval_pending": dict(rt.pending) if rt and rt.pending else None}
        if rt is not None and rt.transcript.context is not None:
            d["context_tokens"], d["context_window"] = rt.transcript.context
        return d

    async def after_recover(self, prior: Mapping[str, SessionState]) -> None:
        """Relaunch the ACP sessions that were live when the daemon stopped."""
        for s in list(self.manager.sessions.values()):
            if not is_acp(s) or s.id not in prior or not Path(s.worktree).is_dir():
                continue
            if not (prior[s.id] in LIVE_STATES or s.extra.get("resume_on_start")):
                continue
            await self.manager.resume(s)


def setup(daemon: Daemon) -> AcpAgents:
    return AcpAgents(daemon)
