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


def _s(data: dict[str, Any], key: str, limit: int = 120) -> str:
    return one_line(str(data.get(key) or ""), limit)


def _with(text: str, detail: str, sep: str = ": ") -> str:
    return f"{text}{sep}{detail}" if detail else text


def _review(kind: str, d: dict[str, Any]) -> str:
    where = _s(d, "path", 80) or "a file"
    if kind == "review_mark":
        return f"{'marked' if d.get('reviewed', True) else 'unmarked'} a hunk of {where} as reviewed"
    if kind == "review_reject":
        return _with(f"rejected a hunk of {where}", _s(d, "reason"))
    if kind == "review_revert_file":
        return _with(f"reverted {where} to the base version", _s(d, "reason"))
    if kind == "review_comment":
        return _with(f"commented on {where}" + (f" line {d['line']}" if d.get("line") else ""), _s(d, "text"))
    if kind == "review_undo":
        return f"undid the last review action ({_s(d, 'undone', 40).replace('_', ' ') or 'action'})"
    n_rej, n_com = d.get("rejections", 0), d.get("comments", 0)
    return f"sent the review to the agent ({n_rej} rejected, {n_com} comments)"


# (text, style) for each kind the daemon and the agents record that is one line; every
# entry reads as a sentence, never as the raw event id.
_NOTES: dict[str, Any] = {
    "approval_request": lambda d: (f"approval requested: {_s(d, 'describe', 300)}", "$wb-waiting"),
    "approval": lambda d: (_with({"approve": "approved", "always": "approved always", "deny": "denied"}
                                 .get(str(d.get("decision")), f"answered {_s(d, 'decision', 20)}"),
                                 _s(d, "reason"), " — "), "$text-muted"),
    "compaction": lambda d: (f"context compacted: {d.get('before', '?')} → {d.get('after', '?')} tokens;"
                             " the task is kept", "italic $text-muted"),
    "retry": lambda d: (f"retrying (attempt {d.get('attempt', '?')}) in {d.get('delay_s', '?')} s: "
                        f"{_s(d, 'reason')}", "$warning"),
    "agent": lambda d: (_with("agent started", " · ".join(
        f"{k} {_s(d, k, 60)}" for k in ("model", "approval", "sandbox") if d.get(k))), "$text-muted"),
    "thought": lambda d: (f"thinking: {_s(d, 'text', 300)}", "italic $text-muted"),
    "stop": lambda d: (f"turn ended: {_s(d, 'stop_reason', 40).replace('_', ' ') or 'done'}", "$text-muted"),
    "mode": lambda d: (f"mode set to {_s(d, 'mode', 60)}", "$text-muted"),
    "resumed": lambda d: ("the agent loaded its previous session", "$text-muted"),
    "resume": lambda d: (_with("the session resumed", _s(d, "reason")), "$text-muted"),
    "state": lambda d: (_with(f"now {_s(d, 'to', 20) or '?'} (was {_s(d, 'from', 20) or '?'})", _s(d, "reason")),
                        "$text-muted"),
    "notice": lambda d: (_s(d, "message", 300) or "a notice without text", "$warning"),
    "interrupted": lambda d: (_s(d, "reason") or "interrupted", "$warning"),
    "created": lambda d: (_with(f"session created on branch {_s(d, 'branch', 60) or '?'}",
                                "; ".join(one_line(str(w), 100) for w in d.get("warnings") or [])), "$text-muted"),
    "setup": lambda d: (f"the setup command exited with {d.get('exit_code', '?')}", "$text-muted"),
    "title": lambda d: (f"the terminal title is now {_s(d, 'value', 80)!r}", "$text-muted"),
    "notify": lambda d: (_with("the program sent a notification", _s(d, "value")), "$text-muted"),
    "bell": lambda d: ("the program rang the bell", "$text-muted"),
    "send": lambda d: (f"sent: {_s(d, 'text', 200)}", "$text-muted"),
    "restart": lambda d: ("the session was restarted", "$text-muted"),
    "removed": lambda d: ("the session was removed", "$text-muted"),
    "merge": lambda d: ((f"opened pull request {_s(d, 'pr', 100)}" if d.get("pr") else
                         f"merged into {_s(d, 'base_branch', 40) or 'the base branch'}"
                         + (f" ({_s(d, 'strategy', 20)}, {str(d['commit'])[:10]})" if d.get("commit") else "")),
                        "$success"),
    "discard": lambda d: (_with("every change was discarded", _s(d, "reason"), " — "), "$warning"),
    "pick": lambda d: (_with("picked as the winning attempt", ", ".join(
        one_line(str(n), 30) for n in d.get("removed") or []), "; removed "), "$success"),
    "notify_rejected": lambda d: (f"a notification could not be read: {_s(d, 'error')}", "$warning"),
    "auto_answer_setting": lambda d: (f"auto-approve turned {'on' if d.get('enabled') else 'off'}",
                                      "$text-muted"),
    "auto_answer": lambda d: ("approved automatically", "$text-muted"),
    "check": lambda d: (f"the check {_s(d, 'status', 20) or 'ran'}"
                        + (f" (exit {d['exit_code']})" if d.get("exit_code") not in (None, 0) else ""),
                        "$success" if d.get("status") == "passed" else "$warning"),
    "check_sent": lambda d: ("sent the failing check to the agent", "$text-muted"),
    "detect": lambda d: (_with("the screen shows the session is " + (_s(d, "to", 20) or "busy"),
                               _s(d, "action", 60) or _s(d, "ignored", 60)), "$text-muted"),
}


def note_text(kind: str, data: dict[str, Any]) -> tuple[str, str]:
    """(text, style) for entries that are one line: a sentence for every kind."""
    if kind.startswith("review_"):
        return _review(kind, data), "$text-muted"
    if kind == "usage":
        total = f"{data.get('tokens_in', 0)} in · {data.get('tokens_out', 0)} out"
        ctx = (f" · context {data.get('context_tokens')}/{data.get('context_window')}"
               if data.get("context_tokens") and data.get("context_window") else "")
        cost = f" · ${float(data.get('cost_usd') or 0):.4f}" if data.get("cost_usd") else ""
        return f"tokens {total}{ctx}{cost}", "dim"
    if kind in _NOTES:
        text, style = _NOTES[kind](data)
        return str(text), str(style)
    # An event this UI does not know yet: its name as words, never the raw id.
    words = " ".join(w for w in kind.replace("-", "_").split("_") if w) or "event"
    detail = one_line(str(data.get("value") or data.get("message") or data.get("text") or ""), 120)
    return _with(f"{words.capitalize()} happened", detail), "$text-muted"


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
            self._mount(Static(Content("the agent's plan:\n" + "\n".join(lines)), classes="plan"))
        elif kind == "error":
            self._end_stream()
            self._mount(Static(Content("error: " + _clean(data.get("message"), 2000)), classes="error"))
        else:
            text, style = note_text(kind, data)
            self._mount(Static(Content.assemble((text, style)), classes="usage" if kind == "usage" else "note"))

    def add_delta(self, text: str) -> None:
        self._stream_text += strip_escapes(text)
        if self._stream is None:
            if not self.is_mounted:  # a pane still being built (`workbench demo` streams at once)
                return  # kept: the next delta shows it all
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
