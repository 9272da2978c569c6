"""Between the server and the two wires: what a wire builds a reply from (`TurnToSend`),
the streamed reply it builds (`StreamedReply`), and sending that with the turn's `Fault`.

Both wire APIs fail the same ways at the HTTP level (an error status, a cut connection,
invalid JSON, a hang), so that lives here; only the in-stream error event differs by wire,
and each wire hands it in as `StreamedReply.failure`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.fakes.model_http import ModelRequestHandler
from workbench.fakes.model_script import Fault, ScriptedToolCall, Turn

Wait = Callable[[float], None]  # sleeps, unless the server is stopping or released


@dataclass
class TurnToSend:
    """A picked turn, ready for a wire to shape: the request `body`, each tool call with its
    id, the `usage` (input, output tokens) and `next_id` (makes the reply's ids)."""

    body: dict[str, Any]
    turn: Turn
    calls: list[tuple[ScriptedToolCall, str]]
    usage: tuple[int, int]
    next_id: Callable[[str], str]

    @property
    def model(self) -> str:
        return str(self.body.get("model") or "")


@dataclass
class StreamedReply:
    """A reply as SSE events: `head` (content), then `tail` (finish, usage, done). After `n`
    events of a failing stream, `failure(n)` is the wire's in-stream error event."""

    head: list[bytes]
    tail: list[bytes]
    failure: Callable[[int], bytes]


def send_status_fault(h: ModelRequestHandler, fault: Fault) -> None:
    """A `status` fault: the HTTP error, with the retry hints the fault names."""
    extra: dict[str, str] = {}
    if fault.retry_after_ms is not None:
        extra["retry-after-ms"] = str(fault.retry_after_ms)
    if fault.retry_after_s is not None:
        extra["retry-after"] = f"{fault.retry_after_s:g}"
    code = "rate_limit_exceeded" if fault.status == 429 else f"fake_{fault.status}"
    h.send_error_json(fault.status, f"scripted fault: HTTP {fault.status}", code, extra)


def send_reply(
    h: ModelRequestHandler,
    reply: StreamedReply | dict[str, Any],
    fault: Fault | None,
    pace: float,
    wait: Wait,
) -> None:
    """Send `reply` (a stream paced `pace` seconds an event, or one JSON object)."""
    if isinstance(reply, StreamedReply):
        _send_stream(h, reply, fault, pace, wait)
    else:
        _send_whole(h, reply, fault, wait)


def _send_whole(h: ModelRequestHandler, obj: dict[str, Any], fault: Fault | None, wait: Wait) -> None:
    if fault is None:
        h.send_json(200, obj)
    elif fault.kind == "stream_error":
        h.send_error_json(500, "scripted stream error", "server_error")
    elif fault.kind == "garbage":
        data = b'{"id": "broken", "choices": [{'
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
    else:  # cut or hang: no answer at all
        if fault.kind == "hang":
            wait(fault.delay_s)
        h.cut()


def _send_stream(
    h: ModelRequestHandler, reply: StreamedReply, fault: Fault | None, pace: float, wait: Wait
) -> None:
    """Send `head` then `tail`, unless `fault` says not to."""
    head, tail = reply.head, reply.tail
    h.start_sse()
    if fault is not None and fault.kind == "hang":
        wait(fault.delay_s)
        h.cut()
    if fault is not None and fault.kind in ("cut", "stream_error"):
        part = head[: max(1, (len(head) + 1) // 2)]
        for ev in part:
            h.chunk(ev)
            wait(pace)
        if fault.kind == "cut":
            h.cut()
        h.chunk(reply.failure(len(part)))
        h.end_chunks()
        return
    if fault is not None and fault.kind == "garbage":
        if head:
            h.chunk(head[0])
        h.chunk(b'data: {"choices": [{"delta": {"content": "oops"\n\n')
        h.end_chunks()
        return
    for ev in head + tail:
        h.chunk(ev)
        wait(pace)
    h.end_chunks()
