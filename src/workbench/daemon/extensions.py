"""Optional parts of the daemon (built-in agent, diff review, ...) and the hooks they get.

An extension module exposes `setup(daemon) -> Extension` (`daemon` is an `api.Daemon`); the
server (`server.load_extensions`) registers what it returns with its SessionManager, in
EXTENSIONS order, before sessions are recovered. The manager calls the hooks below (each
optional: the base class does nothing) in that same order; no extension replaces a manager
method. docs/architecture.md ("Extensions") lists when each hook runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from workbench.config import Config
    from workbench.core.models import Session, SessionState
    from workbench.core.screen import ScreenEvent
    from workbench.daemon.pty_runtime import PtyRuntime
    from workbench.daemon.sandboxing import LaunchSpec

log = logging.getLogger(__name__)

# Diff review's entry is its methods module: it holds the review and attempts handlers, and
# its `setup` builds the ReviewService.
EXTENSIONS: list[str] = [
    "workbench.daemon.agent_ext", "workbench.daemon.profiles_ext", "workbench.daemon.review_methods",
    "workbench.daemon.acp_ext",
    "workbench.daemon.suggest_methods",
]

# (session, config, resume) -> None: starts a session whose agent is not a PTY command.
Launcher = Callable[["Session", "Config", bool], Awaitable[None]]


class NewRequest(Protocol):
    """What `new` asks for, as the `check_new` hook sees it (session_create.CreateRequest)."""

    agent: str | None
    provider: str | None
    model: str | None
    base_url: str | None
    wire_api: str | None
    extra: dict[str, Any]


class PtyObserver(Protocol):
    """Watches one PTY session's runtime (waiting detection); dropped when it exits."""

    def on_output(self) -> None: ...
    def on_screen_event(self, ev: ScreenEvent) -> None: ...
    def on_exit(self) -> None: ...


class Extension:
    """A feature plugged into the SessionManager. Override only the hooks you need."""

    def launchers(self) -> Mapping[str, Launcher]:
        """Agent kinds (the first word of `--agent`) this extension starts itself; read once
        at registration."""
        return {}

    def resolve_command(self, s: Session, cfg: Config, resume: bool) -> LaunchSpec | None:
        """What to run in a PTY session's terminal; the first extension to answer wins.
        Creation asks with a probe session (id "probe") to validate the agent name."""
        return None

    def check_new(self, req: NewRequest, cfg: Config, agent: str) -> None:
        """Check a new session's request before its worktree exists: raise a WorkbenchError
        to refuse it; keys added to `req.extra` are stored with the session."""

    def observe(self, s: Session, rt: PtyRuntime, cfg: Config) -> PtyObserver | None:
        """An observer for a PTY runtime that has just started; `cfg` is the configuration it
        was launched with (read again, the repo's file may already be the session's own)."""
        return None

    def answer_pty(self, s: Session, action: str, text: str | None) -> bool:
        """Answer a PTY agent's approval prompt (approve | approve_always | deny); True if
        handled. The first extension to handle it wins."""
        return False

    async def deliver(self, s: Session, text: str) -> str | None:
        """Give `text` (review feedback, a failing check) to the session's agent as the user's
        next message if this extension runs that agent; returns how ("message"), else None.
        The first to answer wins; when none does, the manager types it into the terminal."""
        return None

    async def interrupt(self, s: Session) -> bool | None:
        """Stop the turn in progress of an agent this extension runs (not the built-in one):
        True if one was stopped, False if none was running, None if not this extension's."""
        return None

    def describe(self, s: Session) -> dict[str, Any]:
        """Keys added to a session's description (`ls`, `session` events)."""
        return {}

    async def after_recover(self, prior: Mapping[str, SessionState]) -> None:
        """Sessions are loaded and lost ones marked stopped; `prior` is each session's state
        as the store had it before (to resume what was live)."""

    def on_remove(self, s: Session) -> None:
        """The session is gone: its worktree removed and `removed` published."""

    def on_shutdown(self) -> None:
        """The daemon stops: sessions are stopped and the manager's tasks cancelled."""
