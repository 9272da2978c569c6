"""A pending approval: the exact command or patch, and keys that arm only after a moment.

The card's keys count only while it has focus and has been on screen for `arm_ms`, so a
keystroke meant for something else never approves a command.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from workbench.core.escapes import strip_escapes


def card_content(pending: Mapping[str, Any]) -> Content:
    kind = str(pending.get("kind") or "command")
    describe = strip_escapes(str(pending.get("describe") or ""))
    # The exact command comes first: in a small pane it is the line that must show.
    parts: list[Content] = [
        Content.assemble(("$ " if kind == "command" else "", "dim"), (describe, "bold")),
    ]
    argv = pending.get("argv")
    if kind == "command" and isinstance(argv, list) and argv:
        exact = shlex.join(strip_escapes(str(a)) for a in argv)
        if exact != describe.strip():  # the summary is not the exact command: show what runs
            parts.append(Content.assemble(("runs: ", "dim"), (exact, "bold")))
    patch = pending.get("patch")
    if isinstance(patch, str) and patch:
        for line in strip_escapes(patch).splitlines()[:400]:
            style = ("$wb-diff-added" if line.startswith("+") else
                     "$wb-diff-removed" if line.startswith("-") else
                     "$wb-diff-hunk" if line.startswith(("@@", "***")) else "")
            parts.append(Content.assemble((line, style)))
    parts.append(Content.assemble(("y approve · a always · n deny · r deny with a reason · esc leave", "dim")))
    return Content("\n").join(parts)


class ApprovalCard(VerticalScroll, can_focus=True):
    DEFAULT_CSS = """
    ApprovalCard { height: auto; max-height: 60%; border: round $wb-waiting; padding: 0 1;
                   border-title-color: $wb-waiting; border-title-style: bold;
                   background: $surface; display: none; }
    ApprovalCard.-shown { display: block; }
    ApprovalCard:focus { border: heavy $wb-waiting; }
    ApprovalCard.-armed:focus { border: heavy $success; }
    """
    BINDINGS = [
        Binding("y", "decide('approve')", "Approve", id="approval.approve"),
        Binding("a", "decide('always')", "Always", id="approval.always"),
        Binding("n", "decide('deny')", "Deny", id="approval.deny"),
        Binding("r", "decide('deny_reason')", "Deny with a reason", id="approval.deny_reason"),
        Binding("escape", "leave", "Leave", id="approval.close"),
    ]

    @dataclass
    class Decision(Message):
        card: ApprovalCard
        session_id: str
        call_id: str
        decision: str  # approve | always | deny | deny_reason (ask for the reason first)

        @property
        def control(self) -> ApprovalCard:
            return self.card

    @dataclass
    class NotArmed(Message):
        card: ApprovalCard
        remaining_ms: int

        @property
        def control(self) -> ApprovalCard:
            return self.card

    @dataclass
    class Left(Message):
        card: ApprovalCard

        @property
        def control(self) -> ApprovalCard:
            return self.card

    def __init__(self, session_id: str, arm_ms: int = 400, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session_id = session_id
        self.arm_ms = arm_ms
        self.pending: Mapping[str, Any] | None = None
        self._shown_at = 0.0
        self._focused_at = 0.0
        self._body = Static("", classes="approval-body")

    def compose(self) -> Any:
        yield self._body

    def show_pending(self, pending: Mapping[str, Any] | None) -> None:
        same = bool(pending and self.pending and pending.get("call_id") == self.pending.get("call_id"))
        self.pending = pending or None
        self.set_class(self.pending is not None, "-shown")
        if self.pending is None:
            return
        self.border_title = f"needs approval: {self.pending.get('kind') or 'command'}"
        if not same:
            self._shown_at = time.monotonic()  # a new request re-arms from zero
            self.set_class(False, "-armed")
            self._arm_later()
        self._body.update(card_content(self.pending))

    def on_focus(self) -> None:
        self._focused_at = time.monotonic()
        self.set_class(False, "-armed")
        self._arm_later()

    def on_blur(self) -> None:
        self.set_class(False, "-armed")

    def _arm_later(self) -> None:
        self.set_timer(self.arm_ms / 1000 + 0.01, self._update_armed)

    def _update_armed(self) -> None:
        self.set_class(self.armed_in() == 0 and self.has_focus, "-armed")

    def armed_in(self) -> int:
        """Milliseconds until the keys count (0 = armed)."""
        since = max(self._shown_at, self._focused_at)
        return max(0, int(since * 1000 + self.arm_ms - time.monotonic() * 1000))

    def action_decide(self, decision: str) -> None:
        if self.pending is None:
            return
        visible = self.display and self.region.area > 0
        remaining = self.armed_in()
        if not self.has_focus or not visible or remaining > 0:
            self.post_message(self.NotArmed(self, remaining))
            return
        self.post_message(self.Decision(self, self.session_id, str(self.pending.get("call_id") or ""),
                                        decision))

    def action_leave(self) -> None:
        self.post_message(self.Left(self))
