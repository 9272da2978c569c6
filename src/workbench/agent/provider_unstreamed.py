"""Turns requested without streaming: when an endpoint refuses a streamed request, which
endpoints have (for the daemon's lifetime), and a whole reply turned into the same events a
streamed one gives (providers.py sends the requests and classifies their errors).

Some OpenAI-compatible servers cannot stream a reply that may call tools (llama-cpp-python
answers HTTP 500 "Automatic streaming tool choice is not supported"; older vLLM and some
proxies do the same); they answer the same request unstreamed.
"""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

from workbench.agent.events import Event, TextDelta, ToolCallDone, ToolCallStart, TurnDone, Usage

# What a refusal of streaming says: streaming named together with "not supported" or the
# tools that cannot be streamed.
_STREAM = re.compile(r"stream", re.I)
_REFUSAL = re.compile(
    r"not (?:yet )?supported|unsupported|does not support|doesn't support|cannot|can't|"
    r"not allowed|not implemented|tool|function",
    re.I,
)


def refuses_streaming(status: int | None, message: str) -> bool:
    """Whether an HTTP error answering a streamed request says the server cannot stream it."""
    return status is not None and status >= 400 and bool(_STREAM.search(message)) and bool(
        _REFUSAL.search(message)
    )


class StreamMemory:
    """Endpoints (base URL, wire API, model) found to refuse streaming, and why; shared by
    every session of the daemon so only the first one pays for the refused request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._why: dict[tuple[str, str, str], str] = {}

    def remember(self, key: tuple[str, str, str], why: str) -> None:
        with self._lock:
            self._why.setdefault(key, why)

    def reason(self, key: tuple[str, str, str]) -> str | None:
        with self._lock:
            return self._why.get(key)

    def forget(self) -> None:
        with self._lock:
            self._why.clear()


NO_STREAMING = StreamMemory()


def _num(v: Any) -> int:
    return v if isinstance(v, int) else 0


def _call_events(calls: list[tuple[str | None, str, str]]) -> list[Event]:
    out: list[Event] = []
    for i, (cid, name, args) in enumerate(calls):
        call_id = cid or f"call_{uuid.uuid4().hex[:12]}"
        out.append(ToolCallStart(call_id, name, i))
        out.append(ToolCallDone(call_id, name, args or "{}"))
    return out


def chat_reply_events(reply: Any) -> list[Event]:
    """A whole Chat Completions reply as stream events; ValueError for a malformed one."""
    choices = getattr(reply, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise ValueError("the reply has no choices")
    choice = next((c for c in choices if getattr(c, "index", 0) in (0, None)), choices[0])
    msg = getattr(choice, "message", None)
    if msg is None:
        raise ValueError("the reply's choice has no message")
    out: list[Event] = []
    text = getattr(msg, "content", None)
    if isinstance(text, str) and text:
        out.append(TextDelta(text))
    calls: list[tuple[str | None, str, str]] = []
    for tc in getattr(msg, "tool_calls", None) or []:
        fn = getattr(tc, "function", None)
        name = getattr(fn, "name", None) if fn is not None else None
        if not isinstance(name, str) or not name:
            raise ValueError("a tool call of the reply has no function name")
        args = getattr(fn, "arguments", None)
        calls.append((getattr(tc, "id", None) or None, name, args if isinstance(args, str) else "{}"))
    out += _call_events(calls)
    u = getattr(reply, "usage", None)
    if u is not None:
        details = getattr(u, "prompt_tokens_details", None)
        out.append(Usage(
            input_tokens=_num(getattr(u, "prompt_tokens", 0)),
            output_tokens=_num(getattr(u, "completion_tokens", 0)),
            cached_tokens=_num(getattr(details, "cached_tokens", 0)) if details is not None else 0,
        ))
    finish = getattr(choice, "finish_reason", None) or "stop"
    if calls and finish == "stop":
        finish = "tool_calls"  # as for a stream: some servers say "stop" after calling tools
    out.append(TurnDone(str(finish)))
    return out


def responses_reply_events(resp: Any) -> list[Event]:
    """A whole Responses API reply (status completed or incomplete) as stream events."""
    out: list[Event] = []
    calls: list[tuple[str | None, str, str]] = []
    for item in getattr(resp, "output", None) or []:
        kind = getattr(item, "type", None)
        if kind == "message":
            for part in getattr(item, "content", None) or []:
                text = getattr(part, "text", None)
                if getattr(part, "type", None) == "output_text" and isinstance(text, str) and text:
                    out.append(TextDelta(text))
        elif kind == "function_call":
            name = getattr(item, "name", None)
            if not isinstance(name, str) or not name:
                raise ValueError("a function_call of the reply has no name")
            args = getattr(item, "arguments", None)
            calls.append((getattr(item, "call_id", None) or None, name, args if isinstance(args, str) else "{}"))
    out += _call_events(calls)
    u = getattr(resp, "usage", None)
    if u is not None:
        details = getattr(u, "input_tokens_details", None)
        out.append(Usage(
            input_tokens=_num(getattr(u, "input_tokens", 0)),
            output_tokens=_num(getattr(u, "output_tokens", 0)),
            cached_tokens=_num(getattr(details, "cached_tokens", 0)) if details is not None else 0,
        ))
    if getattr(resp, "status", "completed") == "incomplete":
        details = getattr(resp, "incomplete_details", None)
        why = getattr(details, "reason", None) if details is not None else None
        out.append(TurnDone("length" if why in (None, "max_output_tokens") else str(why)))
    else:
        out.append(TurnDone("tool_calls" if calls else "stop"))
    return out
