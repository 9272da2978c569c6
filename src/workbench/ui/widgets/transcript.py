"""The built-in agent's transcript: streaming text, tool calls with collapsible output,
plan steps, errors and compaction notes. For PTY sessions it shows the event log."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Collapsible, Static

from workbench.core.escapes import one_line, strip_escapes

MAX_OUTPUT = 20_000


def _clean(value: Any, limit: int = MAX_OUTPUT) -> str:
    text = strip_escapes(str(value or ""))
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters)"


def note_text(kind: str, data: dict[str, Any]) -> tuple[str, str]:
    """(text, style) for entries that are one line."""
    if kind == "approval_request":
        return f"approval requested: {one_line(str(data.get('describe', '')))}", "$wb-waiting"
    if kind == "approval":
        reason = f" ({one_line(str(data.get('reason')))})" if data.get("reason") else ""
        return f"{data.get('decision', '?')}{reason}", "$text-muted"
    if kind == "compaction":
        return (f"context compacted: {data.get('before', '?')} → {data.get('after', '?')} tokens;"
                " the task is kept", "italic $text-muted")
    if kind == "retry":
        return (f"retrying (attempt {data.get('attempt', '?')}) in {data.get('delay_s', '?')} s: "
                f"{one_line(str(data.get('reason', '')))}", "$warning")
    if kind == "agent":
        bits = [f"{k} {one_line(str(data[k]), 60)}" for k in ("model", "approval", "sandbox") if data.get(k)]
        return "agent: " + (" · ".join(bits) or "started"), "$text-muted"
    if kind == "usage":
        total = f"{data.get('tokens_in', 0)} in · {data.get('tokens_out', 0)} out"
        ctx = (f" · context {data.get('context_tokens')}/{data.get('context_window')}"
               if data.get("context_tokens") and data.get("context_window") else "")
        cost = f" · ${float(data.get('cost_usd') or 0):.4f}" if data.get("cost_usd") else ""
        return f"tokens {total}{ctx}{cost}", "dim"
    if kind == "thought":
        return f"thinking: {one_line(str(data.get('text', '')), 300)}", "italic $text-muted"
    if kind == "stop":
        return f"turn ended: {data.get('stop_reason', '?')}", "$text-muted"
    if kind == "mode":
        return f"mode: {one_line(str(data.get('mode', '')), 60)}", "$text-muted"
    if kind == "resumed":
        return "the agent loaded its previous session", "$text-muted"
    if kind == "state":
        reason = f": {one_line(str(data.get('reason')))}" if data.get("reason") else ""
        return f"state {data.get('from', '?')} → {data.get('to', '?')}{reason}", "$text-muted"
    detail = one_line(str(data.get("value") or data.get("message") or ""), 120)
    return f"{kind}{': ' + detail if detail else ''}", "$text-muted"


class Transcript(VerticalScroll, can_focus=True):
    DEFAULT_CSS = """
    Transcript { height: 1fr; padding: 0 1; background: $background; }
    Transcript > .user { color: $accent; margin-top: 1; }
    Transcript > .assistant { margin-top: 1; }
    Transcript > .streaming { margin-top: 1; color: $foreground 80%; }
    Transcript > .error { color: $error; text-style: bold; }
    Transcript > .note { color: $text-muted; }
    Transcript > .usage { color: $text-muted; text-style: dim; text-align: right; }
    Transcript > .plan { border-left: thick $secondary; padding-left: 1; }
    Transcript Collapsible { border: none; padding: 0; margin: 0; background: $background; }
    Transcript Collapsible.-error CollapsibleTitle { color: $error; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.last_seq = 0
        self._outputs: dict[str, Static] = {}
        self._calls: dict[str, Collapsible] = {}
        self._stream: Static | None = None
        self._stream_text = ""
        self.entries = 0

    def _mount(self, widget: Any) -> None:
        at_end = self.is_vertical_scroll_end or self.max_scroll_y == 0
        if self._stream is not None and widget is not self._stream:
            self.mount(widget, before=self._stream)
        else:
            self.mount(widget)
        if at_end:
            self.call_after_refresh(self.scroll_end, animate=False)

    def add_entry(self, entry: Mapping[str, Any]) -> None:
        seq = int(entry.get("seq") or 0)
        if seq and seq <= self.last_seq:
            return
        self.last_seq = max(self.last_seq, seq)
        self.entries += 1
        kind = str(entry.get("kind", ""))
        data = entry.get("data") if isinstance(entry.get("data"), dict) else {}
        assert isinstance(data, dict)
        if kind == "user":
            self._mount(Static(Content("> " + _clean(data.get("text"))), classes="user"))
        elif kind == "assistant":
            self._end_stream()
            self._mount(Static(Content(_clean(data.get("text"))), classes="assistant"))
        elif kind == "tool_call":
            cid = str(data.get("call_id", ""))
            out = Static(Content(""), classes="output")
            name = one_line(str(data.get("name") or "tool"), 40)
            describe = one_line(str(data.get("describe", "")), 100)
            title = describe if describe.startswith(name) else f"{name}: {describe}"
            box = Collapsible(out, title=title, collapsed=True)
            self._outputs[cid], self._calls[cid] = out, box
            self._mount(box)
        elif kind == "tool_output":
            cid = str(data.get("call_id", ""))
            text = _clean(data.get("output"))
            if cid in self._outputs:
                self._outputs[cid].update(Content(text))
                if data.get("is_error"):
                    self._calls[cid].add_class("-error")
                    self._calls[cid].title = "✖ " + self._calls[cid].title
            else:
                self._mount(Static(Content(text), classes="note"))
        elif kind == "plan":
            steps = data.get("steps") if isinstance(data.get("steps"), list) else []
            marks = {"completed": "☑", "in_progress": "▶", "pending": "☐"}
            lines = [f"{marks.get(str(st.get('status')), '☐')} {one_line(str(st.get('step', '')))}"
                     for st in steps or [] if isinstance(st, dict)]
            self._mount(Static(Content("plan\n" + "\n".join(lines)), classes="plan"))
        elif kind == "error":
            self._end_stream()
            self._mount(Static(Content("error: " + _clean(data.get("message"), 2000)), classes="error"))
        else:
            text, style = note_text(kind, data)
            self._mount(Static(Content.assemble((text, style)), classes="usage" if kind == "usage" else "note"))

    def add_delta(self, text: str) -> None:
        self._stream_text += strip_escapes(text)
        if self._stream is None:
            self._stream = Static(Content(self._stream_text), classes="streaming")
            self._mount(self._stream)
        else:
            self._stream.update(Content(self._stream_text))
            if self.is_vertical_scroll_end:
                self.call_after_refresh(self.scroll_end, animate=False)

    def _end_stream(self) -> None:
        if self._stream is not None:
            self._stream.remove()
        self._stream, self._stream_text = None, ""

    def show_message(self, text: str) -> None:
        self._mount(Static(Content.assemble((text, "italic $text-muted")), classes="note"))
