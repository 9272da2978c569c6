"""Validated before reviewed: a failing check goes back to the agent before the person sees it.

When an agent that takes messages (the built-in agent, ACP agents) finishes a turn with
changes, the manager publishes `TurnFinished` (daemon/bus.py) before the session would go
to `review`. If the repository has a `[check]` command and `check.fix_rounds` is above 0,
this module holds the session in `running` ("running the check"), runs the check on the
diff as it is, and

- passed: the session goes to `review` ("check passed", with the rounds it took);
- failed, rounds left: the failure goes to the agent as its next message and the session
  shows "check failed, fixing (1/2)"; the agent's next turn end is checked again;
- failed, no rounds left: `review` with "check failed after 2 fix rounds".

The person taking over ends the rounds: a message of theirs while they run (the answer
to it goes straight to `review`), an interrupt, or a stop. Terminal (PTY) agents have no
turn end workbench can trust, so nothing here runs for them. The check itself is
review_checks.CheckRunner's: same sandbox, same stored result, beside the diff.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import config as config_mod
from workbench.core.models import Session, SessionState
from workbench.daemon.bus import LogRecorded, SessionChanged, SessionRemoved, TurnFinished
from workbench.daemon.review_checks import CheckRunner, failure_message
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.daemon.api import Daemon

log = logging.getLogger(__name__)

CHECKING = "running the check"


@dataclass
class Rounds:
    """One session's automatic rounds since its agent's turn ended with changes."""

    limit: int
    done: int = 0  # failures sent to the agent so far
    fixing: bool = False  # the agent has the failure (else the check is running)
    sent: str = ""  # the failure as sent: its `user` log entry is ours, not the person's

    def reason(self) -> str:
        if self.fixing:
            return f"check failed, fixing ({self.done}/{self.limit})"
        return f"{CHECKING} ({self.done}/{self.limit} fix rounds)" if self.done else CHECKING


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class FixRounds:
    def __init__(self, daemon: Daemon, checks: CheckRunner,
                 spawn: Callable[[Coroutine[Any, Any, Any]], None]) -> None:
        self.mgr = daemon.manager
        self.checks = checks
        self._spawn = spawn
        self.rounds: dict[str, Rounds] = {}
        self._skip: set[str] = set()  # the person took over: their turn's end goes to review
        bus = daemon.manager.bus
        bus.subscribe(TurnFinished, self._on_turn)
        bus.subscribe(LogRecorded, self._on_log)
        bus.subscribe(SessionChanged, self._on_changed)
        bus.subscribe(SessionRemoved, lambda e: self._forget(e.session.id))

    def describe(self, s: Session) -> dict[str, Any]:
        """`check_fix` ("1/2") while rounds run; the agent's own `running` (no reason of its
        own) shows the round's reason."""
        r = self.rounds.get(s.id)
        if r is None:
            return {}
        out: dict[str, Any] = {"check_fix": f"{r.done}/{r.limit}"}
        if s.state == SessionState.RUNNING and not s.reason:
            out["reason"] = r.reason()
        return out

    def _forget(self, sid: str) -> None:
        self.rounds.pop(sid, None)
        self._skip.discard(sid)

    # -- the bus ---------------------------------------------------------------------------

    def _on_turn(self, e: TurnFinished) -> None:
        s = e.session
        if s.id in self._skip:
            self._skip.discard(s.id)
            self.rounds.pop(s.id, None)
            return
        if "turn_active" not in self.mgr.describe(s):  # a terminal agent: no turn end to trust
            return
        try:
            cfg = config_mod.load(Path(s.repo))  # small files, cached by the OS: fine on the loop
            if cfg.check.command:
                cfg.require_sandboxed("check.command", s.sandbox)
        except WorkbenchError as err:
            log.info("fix rounds: no check for %s: %s", s.id, err)
            self.rounds.pop(s.id, None)
            return
        if not cfg.check.command or cfg.check.fix_rounds <= 0:
            self.rounds.pop(s.id, None)
            return
        r = self.rounds.get(s.id)
        if r is None:
            r = self.rounds[s.id] = Rounds(cfg.check.fix_rounds)
        r.fixing = False
        e.hold(r.reason())
        self._spawn(self._validate(s.id, r, cfg))

    def _on_log(self, e: LogRecorded) -> None:
        sid = e.session.id
        if e.kind == "interrupted":  # stopped by the person: no rounds for this turn's end
            self.rounds.pop(sid, None)
            self._skip.add(sid)
        elif e.kind == "user":
            r = self.rounds.get(sid)
            if r is not None and r.sent and e.data.get("text") == r.sent:
                r.sent = ""  # our own message
            elif r is not None:
                self.rounds.pop(sid)  # the person took over
                self._skip.add(sid)
                self.mgr.publish_session(e.session)
            else:
                self._skip.discard(sid)  # a later message of theirs: its turn is checked again

    def _on_changed(self, e: SessionChanged) -> None:
        if e.new_state in (SessionState.STOPPED, SessionState.ERROR):
            self._forget(e.session.id)

    # -- a round ---------------------------------------------------------------------------

    async def _validate(self, sid: str, r: Rounds, cfg: config_mod.Config) -> None:
        try:
            await self._round(sid, r, cfg)
        except Exception as e:  # a bug here must not leave the session held in `running`
            log.exception("fix rounds of %s failed", sid)
            s = self.mgr.sessions.get(sid)
            if s is not None and self.rounds.get(sid) is r:
                self._release(s, f"the automatic check failed: {type(e).__name__}: {e}")

    async def _round(self, sid: str, r: Rounds, cfg: config_mod.Config) -> None:
        s = self.mgr.sessions.get(sid)
        if s is None:
            return
        why = ""
        try:
            chk = await self.checks.check_diff(s, cfg)
        except WorkbenchError as e:
            chk, why = None, f"the check could not run: {e}"
        if self.rounds.get(sid) is not r or s.state != SessionState.RUNNING:
            return  # the person took over (or the session stopped) meanwhile
        if chk is not None and str(chk.get("reason", "")).startswith("sandbox:"):
            why = f"the check could not run: {chk.get('reason')}"  # nothing the agent can fix
            chk = None
        if chk is None:
            self._release(s, why)
        elif chk.get("status") == "passed":
            self._release(s, "check passed" + (f" after {plural(r.done, 'fix round')}" if r.done else ""))
        elif r.done >= r.limit:
            self._release(s, f"check failed after {plural(r.limit, 'fix round')}")
        else:
            await self._send(s, r, failure_message(chk))

    async def _send(self, s: Session, r: Rounds, text: str) -> None:
        r.done += 1
        r.fixing = True
        r.sent = f"{text}\n\n(workbench: automatic fix round {r.done} of {r.limit})"
        self.mgr.set_state(s, SessionState.RUNNING, r.reason())
        try:
            how = await self.mgr.deliver(s, r.sent)
        except WorkbenchError as e:
            if self.rounds.get(s.id) is r:
                self._release(s, f"check failed; it could not be sent to the agent: {e}")
            return
        self.mgr.record(s, "check_sent", {"text": r.sent, "via": how, "round": r.done, "of": r.limit})

    def _release(self, s: Session, reason: str) -> None:
        """Rounds over: on to `review` (the check result is stored beside the diff)."""
        self.rounds.pop(s.id, None)
        s.reason = reason
        self.mgr.set_state(s, SessionState.REVIEW, reason, gate=False)
