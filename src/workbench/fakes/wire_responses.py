"""A scripted turn as a Responses API reply: a `response` object, or its event stream.

The stream is the API's typed, numbered events (`response.created`, an `output_item.added`
... `output_item.done` run for the message and for each function call, `response.completed`
with the usage); the whole reply is the completed response those events end in.
"""

from __future__ import annotations

import json
import time
from typing import Any

from workbench.fakes.model_script import ScriptedToolCall, Turn
from workbench.fakes.wire_delivery import StreamedReply, TurnToSend


def responses_reply(t: TurnToSend) -> StreamedReply | dict[str, Any]:
    """`t.turn` answering the responses request `t.body`, streamed if the request asks."""
    events = _ResponseEvents(t.next_id("resp"), t.model, t.usage)
    if t.turn.text:
        events.add_message(t.next_id("msg"), t.turn)
    for c, call_id in t.calls:
        events.add_function_call(t.next_id("fc"), c, call_id)
    final = events.response("completed", events.output, True)
    if not t.body.get("stream"):
        return final
    tail = [events.sse("response.completed", response=final)]
    return StreamedReply(events.head, tail, lambda seq: _responses_failure(seq, final))


class _ResponseEvents:
    """One response's stream, built in order: events numbered as sent, items as output."""

    def __init__(self, rid: str, model: str, usage: tuple[int, int]) -> None:
        self.rid = rid
        self.model = model
        self.usage = usage
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self.head = [self.sse("response.created", response=self.response("in_progress", [], False))]

    def sse(self, kind: str, **data: Any) -> bytes:
        obj = {"type": kind, "sequence_number": self.seq, **data}
        self.seq += 1
        return f"event: {kind}\ndata: {json.dumps(obj)}\n\n".encode()

    def response(self, status: str, output: list[dict[str, Any]], with_usage: bool) -> dict[str, Any]:
        return {
            "id": self.rid,
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": self.model,
            "output": output,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "metadata": {},
            "parallel_tool_calls": True,
            "temperature": None,
            "top_p": None,
            "tool_choice": "auto",
            "tools": [],
            "usage": _responses_usage(self.usage) if with_usage else None,
        }

    def add_message(self, mid: str, turn: Turn) -> None:
        """The assistant message: its text streamed a word a delta."""
        sse, idx = self.sse, len(self.output)
        item = {"id": mid, "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        self.head.append(sse("response.output_item.added", output_index=idx, item=item))
        part = {"type": "output_text", "text": "", "annotations": []}
        at = {"item_id": mid, "output_index": idx, "content_index": 0}
        self.head.append(sse("response.content_part.added", **at, part=part))
        self.head += [
            sse("response.output_text.delta", **at, delta=p, logprobs=[]) for p in turn.text_deltas()
        ]
        done_part = {"type": "output_text", "text": turn.text, "annotations": []}
        self.head.append(sse("response.output_text.done", **at, text=turn.text, logprobs=[]))
        self.head.append(sse("response.content_part.done", **at, part=done_part))
        done_item = {**item, "status": "completed", "content": [done_part]}
        self.head.append(sse("response.output_item.done", output_index=idx, item=done_item))
        self.output.append(done_item)

    def add_function_call(self, fid: str, c: ScriptedToolCall, call_id: str) -> None:
        """A function call: its arguments streamed in `c.chunks` deltas."""
        sse, idx = self.sse, len(self.output)
        item = {
            "id": fid,
            "type": "function_call",
            "call_id": call_id,
            "name": c.name,
            "arguments": "",
            "status": "in_progress",
        }
        self.head.append(sse("response.output_item.added", output_index=idx, item=item))
        self.head += [
            sse("response.function_call_arguments.delta", item_id=fid, output_index=idx, delta=p)
            for p in c.argument_deltas()
        ]
        self.head.append(
            sse("response.function_call_arguments.done", item_id=fid, output_index=idx, arguments=c.arguments)
        )
        done_item = {**item, "arguments": c.arguments, "status": "completed"}
        self.head.append(sse("response.output_item.done", output_index=idx, item=done_item))
        self.output.append(done_item)


def _responses_failure(seq: int, final: dict[str, Any]) -> bytes:
    err = {"code": "server_error", "message": "scripted stream error"}
    resp = {**final, "status": "failed", "error": err, "output": [], "usage": None}
    data = json.dumps({"type": "response.failed", "sequence_number": seq, "response": resp})
    return f"event: response.failed\ndata: {data}\n\n".encode()


def _responses_usage(usage: tuple[int, int]) -> dict[str, Any]:
    i, o = usage
    return {
        "input_tokens": i,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": o,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": i + o,
    }
