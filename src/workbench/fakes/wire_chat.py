"""A scripted turn as a Chat Completions reply: `chat.completion`, or its chunk stream.

Shaped as OpenAI's server sends them (the first delta carries the role, tool-call arguments
arrive in pieces after a delta that names the call, usage comes in a last chunk only when
`stream_options.include_usage` asks), so the agent's parser meets what it meets in use.
"""

from __future__ import annotations

import json
import time
from typing import Any

from workbench.fakes.wire_delivery import StreamedReply, TurnToSend


def chat_reply(t: TurnToSend) -> StreamedReply | dict[str, Any]:
    """`t.turn` answering the chat request `t.body`, streamed if the request asks."""
    if t.body.get("stream"):
        include_usage = bool((t.body.get("stream_options") or {}).get("include_usage"))
        head, tail = _chat_events(t.next_id("chatcmpl"), t, include_usage)
        return StreamedReply(head, tail, _chat_failure)
    return _chat_completion(t.next_id("chatcmpl"), t)


def _chat_events(cid: str, t: TurnToSend, include_usage: bool) -> tuple[list[bytes], list[bytes]]:
    created = int(time.time())

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        obj = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": t.model,
            "choices": choices,
            **extra,
        }
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    def delta(d: dict[str, Any], finish: str | None = None) -> bytes:
        return chunk([{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}])

    head = [delta({"role": "assistant", "content": ""})]
    head += [delta({"content": p}) for p in t.turn.text_deltas()]
    for i, (c, call_id) in enumerate(t.calls):
        named = {"index": i, "id": call_id, "type": "function", "function": {"name": c.name, "arguments": ""}}
        head.append(delta({"tool_calls": [named]}))
        head += [
            delta({"tool_calls": [{"index": i, "function": {"arguments": p}}]})
            for p in c.argument_deltas()
        ]
    tail = [delta({}, "tool_calls" if t.calls else "stop")]
    if include_usage:
        tail.append(chunk([], usage=_chat_usage(t.usage)))
    tail.append(b"data: [DONE]\n\n")
    return head, tail


def _chat_completion(cid: str, t: TurnToSend) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": t.turn.text or None, "refusal": None}
    if t.calls:
        msg["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c, call_id in t.calls
        ]
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": t.model,
        "choices": [
            {
                "index": 0,
                "message": msg,
                "logprobs": None,
                "finish_reason": "tool_calls" if t.calls else "stop",
            }
        ],
        "usage": _chat_usage(t.usage),
    }


def _chat_failure(seq: int) -> bytes:
    err = {"message": "scripted stream error", "type": "server_error", "code": "server_error"}
    return b"data: " + json.dumps({"error": err}).encode() + b"\n\n"


def _chat_usage(usage: tuple[int, int]) -> dict[str, Any]:
    i, o = usage
    return {
        "prompt_tokens": i,
        "completion_tokens": o,
        "total_tokens": i + o,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
