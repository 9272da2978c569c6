"""Waiting detection for PTY agents: when does a CLI need the human?

Signals, most reliable first:
1. the CLI's own hooks / notify program (`hook:<event>`), through the notify channel or
   the `notify` socket method;
2. desktop notifications (OSC 9 / 777, signal `osc9`), the terminal title (`title`), and
   the bell (`bell`, only while the screen shows no work);
3. screen patterns from the profile (`pattern:<name>`), and output silence (`silence`).

A screen pattern never brings back an approval prompt that was already answered: an
answer records how many prompt matches the screen holds, and only a further match (a new
prompt drawn, or the old one gone and drawn again) counts as a new prompt. Stale text of
an answered prompt (aider leaves its question on screen) therefore never asks twice.

Every transition is logged as a `detect` event naming its signal, so a wrong detection
can be traced to the pattern or hook that caused it. Nothing here answers a prompt unless
auto-answer was turned on for the session (or its profile, in config.toml).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from workbench.core.keys import decode_escapes
from workbench.core.models import Session, SessionState
from workbench.core.screen import ScreenEvent
from workbench.daemon.attention_screen import (
    APPROVAL_HINTS,
    RUNNING_EVENTS,
    WAITING_EVENTS,
    Verdict,
    classify,
    normalize_event,
    prompt_matches,
)
from workbench.daemon.session_git import has_changes
from workbench.profiles import Profile
from workbench.protocol.session import AttentionReport

if TYPE_CHECKING:
    from workbench.daemon.sessions import SessionManager

log = logging.getLogger(__name__)

# A screen scan decodes every row, so it waits for output to pause: a prompt is drawn
# and then the CLI waits, so the scan after a short quiet catches it. A screen that never
# stops changing is still scanned every EVAL_MAX_WAIT.
EVAL_INTERVAL = 0.05  # at least this long between two scans
EVAL_QUIET = 0.08  # scan once output has been quiet this long ...
EVAL_MAX_WAIT = 0.5  # ... or this long after the first unscanned output at the latest
DONE_GRACE = 0.15  # a "finished" signal waits this long and is dropped if the CLI is busy
ANSWER_GRACE = 0.5  # after workbench answers a prompt, the CLI gets this long to close it
SNAPSHOT_DELAY = 0.3  # after entering waiting/review, when the reference screen is taken
MAX_AUTO_ANSWERS = 200  # per run: a runaway prompt loop must not hammer the CLI forever

ACTIVE = (SessionState.RUNNING, SessionState.WAITING, SessionState.REVIEW)


class AttentionObserver:
    """Watches one PTY session and moves it between running, waiting and review."""

    def __init__(self, manager: SessionManager, session: Session, runtime: Any, profile: Profile) -> None:
        self.m = manager
        self.s = session
        self.rt = runtime
        self.p = profile
        self.loop = asyncio.get_running_loop()
        self.closed = False
        self._eval: asyncio.TimerHandle | None = None
        self._silence: asyncio.TimerHandle | None = None
        self._last_eval = 0.0
        self._eval_wanted = 0.0  # when the first output not yet scanned arrived
        self.cause = ""  # "pattern" | "idle" | "hook" | "notify" | "answered" | ""
        self.signal = ""
        self.snapshot: str | None = None
        self.snapshot_at = 0.0
        self.gen = 0
        self.busy_at = 0.0
        self.auto_answers = 0
        self.hooks_seen = 0
        self.last_verdict = Verdict("unknown")
        self.answered_at = 0.0
        # An approval prompt (hook, notification or screen) no answer has closed yet.
        self.pending = False
        # Prompt matches on screen when the last answer was sent; None: no answer to hold.
        self.answered_matches: int | None = None
        self.answered_title: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # observer interface

    def on_output(self) -> None:
        if self.closed:
            return
        self._schedule_eval()
        if self._silence is None and self.p.detect_silence:
            self._silence = self.loop.call_later(self.p.silence_ms / 1000, self._silence_due)

    def on_screen_event(self, ev: ScreenEvent) -> None:
        if self.closed:
            return
        if ev.kind == "notify":
            self._notification(ev.value)
        elif ev.kind == "bell" and self.p.detect_silence:
            self._bell()
        elif ev.kind == "title":
            self._schedule_eval()

    def on_exit(self) -> None:
        self.closed = True
        for h in (self._eval, self._silence):
            if h is not None:
                h.cancel()
        self._eval = self._silence = None
        for t in list(self._tasks):
            t.cancel()

    # inputs from outside

    def on_hook(self, event: str, detail: str = "", source: str = "channel") -> str:
        """A callback from the CLI (notify channel) or `workbench notify`; returns the event."""
        e = normalize_event(event)
        self.hooks_seen += 1
        data = {"event": e, "source": source, "detail": detail[:300]}
        if e in WAITING_EVENTS:
            approval = e.startswith("approval") or any(h in detail.lower() for h in APPROVAL_HINTS)
            self._to(SessionState.WAITING, f"hook:{e}", "approval requested" if approval else "waiting for input",
                     cause="hook", approval=approval, **data)
        elif e in RUNNING_EVENTS:
            self._to(SessionState.RUNNING, f"hook:{e}", "", cause="hook", **data)
        else:
            self._done_later(f"hook:{e}", data)
        return e

    def answered(self, action: str) -> None:
        scr = self.rt.screen
        self.answered_at = time.monotonic()
        self.pending = False
        self.answered_matches = prompt_matches(self.p, scr.lines())
        self.answered_title = scr.title or ""
        self._to(SessionState.RUNNING, f"answered:{action}", "", cause="answered")

    def verdict(self) -> Verdict:
        scr = self.rt.screen
        lines, title = scr.lines(), scr.title or ""
        stale = False
        if self.answered_matches is not None:
            n = prompt_matches(self.p, lines)
            # Fewer matches: the answered prompt went (or scrolled) away, so the baseline
            # drops with it; more: a new prompt was drawn.
            self.answered_matches = min(self.answered_matches, n)
            stale = n <= self.answered_matches and n > 0
            if not stale:
                self.answered_matches = None if n > 0 else self.answered_matches
        if self.answered_title is not None and title != self.answered_title:
            self.answered_title = None
        v = classify(self.p, lines, title, stale=stale, stale_title=self.answered_title is not None)
        self.last_verdict = v
        if v.kind == "busy":
            self.busy_at = time.monotonic()
        return v

    def approval_pending(self) -> bool:
        """An approval prompt that no answer has closed: from a hook, or new on screen."""
        return not self.closed and (self.pending or self.verdict().kind == "waiting")

    def diagnose(self) -> AttentionReport:
        v = self.verdict() if not self.closed else self.last_verdict
        return {
            "profile": self.p.name,
            "state": str(self.s.state),
            "cause": self.cause,
            "signal": self.signal,
            "screen": {"kind": v.kind, "signal": v.signal, "pattern": v.pattern},
            "quiet_ms": int((time.monotonic() - self.rt.last_output) * 1000),
            "silence_ms": self.p.silence_ms,
            "hooks_seen": self.hooks_seen,
            "auto_answer": self.auto_answer_enabled(),
        }

    def auto_answer_enabled(self) -> bool:
        on = self.s.extra.get("auto_answer")
        return bool(self.p.auto_answer if on is None else on)

    # screen evaluation

    def _schedule_eval(self) -> None:
        # One timer per burst of output: on_output runs for every PTY read, so pushing the
        # timer back on each read would cost more than it saves.
        if self._eval is not None:
            return
        now = time.monotonic()
        self._eval_wanted = now
        delay = max(EVAL_QUIET, self._last_eval + EVAL_INTERVAL - now)
        self._eval = self.loop.call_later(delay, self._eval_due)

    def _eval_due(self) -> None:
        self._eval = None
        if self.closed:
            return
        now = time.monotonic()
        quiet = now - self.rt.last_output
        waited = now - self._eval_wanted
        if quiet < EVAL_QUIET and waited < EVAL_MAX_WAIT:
            # Still streaming: wait for the pause, but not past the deadline.
            delay = min(EVAL_QUIET - quiet, EVAL_MAX_WAIT - waited)
            self._eval = self.loop.call_later(max(0.005, delay), self._eval_due)
            return
        self._run_eval()

    def _run_eval(self) -> None:
        if self._eval is not None:  # a scan now makes the pending one redundant
            self._eval.cancel()
            self._eval = None
        self._last_eval = time.monotonic()
        try:
            self.evaluate()
        except Exception:  # detection must never break the session
            log.exception("attention evaluation failed for %s", self.s.id)

    def _silence_due(self) -> None:
        self._silence = None
        if self.closed:
            return
        quiet = time.monotonic() - self.rt.last_output
        left = self.p.silence_ms / 1000 - quiet
        if left > 0.005:
            self._silence = self.loop.call_later(left, self._silence_due)
            return
        self._run_eval()

    def _screen_text(self) -> str:
        return "\n".join(line.rstrip() for line in self.rt.screen.lines())

    def evaluate(self) -> None:
        if self.closed or self.s.state not in ACTIVE:
            return
        v = self.verdict()
        quiet_ms = (time.monotonic() - self.rt.last_output) * 1000
        state = self.s.state
        if v.kind == "blocked":
            if state != SessionState.WAITING or self.signal != v.signal:
                reason = self.p.reasons.get(v.pattern) or f"blocked: {v.pattern}"
                self._to(SessionState.WAITING, v.signal, reason, cause="blocked", pattern=v.pattern)
            return
        if v.kind == "waiting":
            since = time.monotonic() - self.answered_at
            if since < ANSWER_GRACE:
                # The prompt we just answered may still be on screen for a frame or two.
                self.loop.call_later(ANSWER_GRACE - since + 0.01, self._schedule_eval)
                return
            if state != SessionState.WAITING or self.cause not in ("pattern", "hook", "notify") \
                    or not self.pending:
                self._to(SessionState.WAITING, v.signal, "approval requested", cause="pattern",
                         pattern=v.pattern, approval=True)
            return
        if state == SessionState.RUNNING:
            if v.kind == "idle" and quiet_ms >= self.p.silence_ms:
                signal = "silence" if v.signal in ("", "silence") else v.signal
                self._finished(signal, {"pattern": v.pattern, "quiet_ms": int(quiet_ms)})
            return
        # waiting or review: does the CLI work again?
        if v.kind == "busy":
            self._to(SessionState.RUNNING, v.signal, "", cause="", pattern=v.pattern)
        elif self.cause in ("pattern", "blocked") and state == SessionState.WAITING:
            # The prompt (or login / network screen) is gone: it was dealt with in the terminal.
            self._to(SessionState.RUNNING, "output", "", cause="", detail="prompt gone")
        elif (v.kind == "unknown" or v.signal == "silence") and self._screen_changed():
            # No pattern tells idle from busy: new output on the screen means work again.
            self._to(SessionState.RUNNING, "output", "", cause="", detail="screen changed")

    def _screen_changed(self) -> bool:
        # The reference screen is taken a moment after the transition, so the rest of the
        # redraw that carried the signal does not count as new activity.
        now = time.monotonic()
        if now < self.snapshot_at:
            self.loop.call_later(self.snapshot_at - now + 0.01, self._schedule_eval)
            return False
        text = self._screen_text()
        if self.snapshot is None:
            self.snapshot = text
            return False
        return text != self.snapshot

    # notifications and "finished"

    def _notification(self, text: str) -> None:
        data = {"text": text[:300]}
        if any(p.search(text) for p in self.p.notify_done):
            self._done_later("osc9", data)
            return
        approval = any(h in text.lower() for h in APPROVAL_HINTS)
        self._to(SessionState.WAITING, "osc9", "approval requested" if approval else "needs your attention",
                 cause="notify", approval=approval, **data)

    def _bell(self) -> None:
        # A bell asks for the human, but CLIs also ring it on a bad key: it counts only in
        # a running session whose screen shows no work (shells, detect_silence off, never).
        if self.s.state != SessionState.RUNNING or self.verdict().kind == "busy":
            return
        self._to(SessionState.WAITING, "bell", "needs your attention", cause="notify")

    def _done_later(self, signal: str, data: dict[str, Any]) -> None:
        # Some CLIs report side tasks (Codex names the thread with a sub-request) as a
        # finished turn while the main turn still runs: trust the screen if it says busy.
        gen = self.gen

        def check() -> None:
            if self.closed or gen != self.gen:
                return
            v = self.verdict()
            if v.kind == "busy":
                self.m.record(self.s, "detect", {"signal": signal, "ignored": "screen shows busy",
                                                 "screen": v.signal, **data})
                return
            if v.kind in ("waiting", "blocked"):
                self.evaluate()
                return
            self._finished(signal, data)

        self.loop.call_later(DONE_GRACE, check)

    def _finished(self, signal: str, data: dict[str, Any]) -> None:
        if self.p.prompt_mode == "type" and self.s.prompt and not self.s.extra.get("prompt_sent"):
            # The CLI is ready for its first message: type the task instead of waiting.
            self.s.extra["prompt_sent"] = True
            self.m.store.save_session(self.s)
            self.m.record(self.s, "detect", {"signal": signal, "action": "typed the prompt", **data})
            self.m.send_to_pty(self.s, self.s.prompt)
            return
        gen = self.gen
        started = time.monotonic()

        async def decide() -> None:
            dirty = await has_changes(self.m.git, self.s)
            if self.closed or gen != self.gen or self.busy_at > started or self.s.state not in ACTIVE:
                return
            if dirty:
                self._to(SessionState.REVIEW, signal, "finished; changes to review", cause="idle", **data)
            else:
                self._to(SessionState.WAITING, signal, "idle: waiting for your next message", cause="idle", **data)

        task = self.loop.create_task(decide())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # transitions

    def _to(self, state: SessionState, signal: str, reason: str, *, cause: str, **data: Any) -> None:
        old = self.s.state
        if old not in ACTIVE:
            return
        if old == state:
            # Already there: a more specific cause (an approval prompt after an idle wait,
            # a hook after a pattern) replaces the old one, so the right signal can undo it.
            refine = cause in ("hook", "notify", "pattern", "blocked") and \
                (cause != self.cause or bool(data.get("approval")) > self.pending or signal != self.signal)
            if state == SessionState.WAITING and refine:
                self.cause, self.signal = cause, signal
                self.pending = self.pending or bool(data.get("approval"))
                self.m.record(self.s, "detect", {"signal": signal, "from": str(old), "to": str(state),
                                                 "refined": True, **data})
                if reason and reason != self.s.reason:
                    self.m.set_state(self.s, state, reason, signal=signal)
                if data.get("approval") and self.auto_answer_enabled():
                    self.loop.call_later(0.2, self._auto_answer, self.gen)
            return
        self.gen += 1
        self.cause, self.signal = cause, signal
        self.pending = state == SessionState.WAITING and bool(data.get("approval"))
        self.snapshot = None
        self.snapshot_at = time.monotonic() + SNAPSHOT_DELAY
        entry = {"signal": signal, "from": str(old), "to": str(state), **data}
        self.m.record(self.s, "detect", entry)
        self.m.set_state(self.s, state, reason, signal=signal)
        if state == SessionState.WAITING and data.get("approval") and self.auto_answer_enabled():
            self.loop.call_later(0.2, self._auto_answer, self.gen)

    def _auto_answer(self, gen: int) -> None:
        keys = self.p.answers.get("approve")
        if self.closed or gen != self.gen or not keys or self.auto_answers >= MAX_AUTO_ANSWERS:
            return
        if not self.approval_pending():
            return
        self.auto_answers += 1
        self.rt.write(decode_escapes(keys))
        self.m.record(self.s, "auto_answer", {"decision": "approve", "keys": keys, "signal": self.signal})
        self.answered("approve")
