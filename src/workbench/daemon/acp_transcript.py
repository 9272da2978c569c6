"""How an ACP agent's session updates become transcript entries, the same kinds the built-in
agent records (docs/agents.md, "ACP", has the table): message chunks stream as `delta`
events and are recorded whole as `assistant` when something else comes; thought chunks
likewise as `thought`; tool calls as `tool_call` / `tool_output` with their diffs (`diff`,
and a unified diff as the output text) and `locations`; plans, usage and modes.
"""

from __future__ import annotations

import difflib
import os
from typing import Any

from acp.schema import (
    AgentMessageChunk,
    AgentPlanUpdate,
    AgentThoughtChunk,
    CurrentModeUpdate,
    FileEditToolCallContent,
    TerminalToolCallContent,
    ToolCallProgress,
    ToolCallStart,
    UsageUpdate,
)

from workbench.core.models import Session
from workbench.daemon.acp_client import SandboxTerminals
from workbench.daemon.bus import AgentDelta
from workbench.daemon.sessions import SessionManager

MAX_OUTPUT = 64_000  # characters of a tool's output kept in the transcript


def _text(content: Any) -> str:
    return str(getattr(content, "text", "") or "")


class TranscriptWriter:
    """Records one ACP session's updates through the manager."""

    def __init__(self, manager: SessionManager, s: Session, terminals: SandboxTerminals) -> None:
        self.manager = manager
        self.s = s
        self.terminals = terminals
        self.context: tuple[int, int] | None = None
        self._text: list[str] = []
        self._thought: list[str] = []

    def record(self, kind: str, data: dict[str, Any]) -> None:
        self.manager.record(self.s, kind, data)

    def update(self, u: Any) -> None:
        if isinstance(u, AgentMessageChunk):
            self._flush_thought()
            text = _text(u.content)
            self._text.append(text)
            self.manager.bus.publish(AgentDelta(self.s, text))
        elif isinstance(u, AgentThoughtChunk):
            self._thought.append(_text(u.content))
        elif isinstance(u, ToolCallStart):
            self.flush()
            self.record("tool_call", {
                "call_id": u.tool_call_id, "name": u.kind or "tool", "describe": u.title,
                "status": u.status or "pending", **self._content(u)})
        elif isinstance(u, ToolCallProgress):
            if u.status in ("completed", "failed") or u.content:
                out = self._content(u)
                self.record("tool_output", {
                    "call_id": u.tool_call_id, "output": out.pop("text", ""), "is_error": u.status == "failed",
                    "status": u.status or "", **out})
        elif isinstance(u, AgentPlanUpdate):
            self.flush()
            steps = [{"step": e.content, "status": e.status, "priority": e.priority} for e in u.entries]
            self.record("plan", {"steps": steps, "explanation": ""})
        elif isinstance(u, UsageUpdate):
            self.context = (u.used, u.size)
            cost = u.cost.amount if u.cost and u.cost.currency == "USD" else 0.0
            if cost:
                self.s.cost_usd = round(cost, 8)
                self.manager.store.save_session(self.s)
            self.record("usage", {"context_tokens": u.used, "context_window": u.size,
                                                  "cost_usd": cost})
        elif isinstance(u, CurrentModeUpdate):
            self.record("mode", {"mode": u.current_mode_id})

    def _content(self, u: ToolCallStart | ToolCallProgress) -> dict[str, Any]:
        out: dict[str, Any] = {}
        texts: list[str] = []
        for c in u.content or []:
            if isinstance(c, FileEditToolCallContent):
                out.setdefault("diff", []).append({"path": c.path, "old_text": c.old_text, "new_text": c.new_text})
                texts.append(unified(self.s.worktree, c))
            elif isinstance(c, TerminalToolCallContent):
                term = self.terminals.terms.get(c.terminal_id)
                texts.append(term.output() if term else f"(terminal {c.terminal_id})")
            else:
                texts.append(_text(getattr(c, "content", None)))
        if u.locations:
            out["locations"] = [{"path": loc.path, "line": loc.line} for loc in u.locations]
        if not any(texts) and u.raw_output is not None:  # some agents report output only raw
            raw = u.raw_output
            texts.append(str(raw.get("formatted_output") or raw.get("output") or raw) if isinstance(raw, dict)
                         else str(raw))
        if texts:
            out["text"] = "\n".join(t for t in texts if t)[:MAX_OUTPUT]
        return out

    def _flush_thought(self) -> None:
        if self._thought:
            self.record("thought", {"text": "".join(self._thought)})
            self._thought = []

    def flush(self) -> None:
        self._flush_thought()
        if self._text:
            self.record("assistant", {"text": "".join(self._text)})
            self._text = []


def unified(worktree: str, d: FileEditToolCallContent) -> str:
    rel = os.path.relpath(d.path, worktree) if os.path.isabs(d.path) else d.path
    old = (d.old_text or "").splitlines(keepends=True)
    new = d.new_text.splitlines(keepends=True)
    src = "/dev/null" if d.old_text is None else f"a/{rel}"
    return "".join(difflib.unified_diff(old, new, src, f"b/{rel}"))


