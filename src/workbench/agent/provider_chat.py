"""Chat Completions: one turn's request, and its streamed chunks (or whole reply) as
`workbench.agent.events`. Failures are raised for providers.py to classify and retry."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import openai
from openai import AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from workbench.agent.conversation import Item, to_chat_messages
from workbench.agent.events import Event, TextDelta, ToolCallDelta, ToolCallStart, TurnDone, Usage
from workbench.agent.provider_classify import cut_short
from workbench.agent.provider_unstreamed import chat_reply_events
from workbench.agent.provider_wire import StreamedCall, Target, finish_calls, new_call_id, post_streamed, post_whole


async def chat_turn(
    to: Target, items: list[Item], tools: list[dict[str, Any]], streamed: bool
) -> AsyncGenerator[Event, None]:
    """One attempt at a turn. A stream that ends before its finish reason raises `Failed`;
    one cut after it loses only the usage chunk, and the turn is kept."""
    body = _body(to.model, items, tools, streamed)
    if not streamed:
        reply = await post_whole(to.client, "/chat/completions", body, ChatCompletion)
        for ev in chat_reply_events(reply):
            yield ev
        return
    stream = await post_streamed(to.client, "/chat/completions", body, ChatCompletion, AsyncStream[ChatCompletionChunk])
    calls: list[StreamedCall] = []
    by_index: dict[int, StreamedCall] = {}
    finish: str | None = None
    usage: Usage | None = None
    try:
        async for chunk in stream:
            u = chunk.usage
            if u is not None:
                details = u.prompt_tokens_details
                usage = Usage(
                    input_tokens=u.prompt_tokens or 0,
                    output_tokens=u.completion_tokens or 0,
                    cached_tokens=(details.cached_tokens or 0) if details else 0,
                )
            for choice in chunk.choices or []:
                if choice.index not in (0, None):
                    continue
                delta = choice.delta
                if delta is not None:
                    if delta.content:
                        yield TextDelta(delta.content)
                    for tc in delta.tool_calls or []:
                        for ev in _tool_delta(tc, calls, by_index):
                            yield ev
                if choice.finish_reason:
                    finish = choice.finish_reason
                    for ev in finish_calls(calls):
                        yield ev
    except openai.APIConnectionError:
        # A cut after the finish reason loses only the usage chunk; keep the turn.
        if finish is None:
            raise
    finally:
        await stream.close()
    if finish is None:
        raise cut_short(to.url)
    for ev in finish_calls(calls):
        yield ev
    if usage is not None:
        yield usage
    if calls and finish == "stop":
        finish = "tool_calls"  # some servers say "stop" even when they called tools
    yield TurnDone(finish)


def _body(model: str, items: list[Item], tools: list[dict[str, Any]], streamed: bool) -> dict[str, Any]:
    """The request body; a streamed one asks for the usage chunk at the end."""
    body: dict[str, Any] = {
        "model": model,
        "messages": to_chat_messages(items),
        "stream": streamed,
    }
    if streamed:
        body["stream_options"] = {"include_usage": True}
    if tools:
        body["tools"] = tools
    return body


def _tool_delta(tc: Any, calls: list[StreamedCall], by_index: dict[int, StreamedCall]) -> list[Event]:
    """The events one tool-call piece of a chunk gives; its call is found (or begun) by the
    piece's index, and the call's name must be known before ToolCallStart."""
    out: list[Event] = []
    idx = tc.index if isinstance(tc.index, int) else len(calls)
    buf = by_index.get(idx)
    if buf is not None and tc.id and buf.server_id and tc.id != buf.call_id:
        # Servers that number every call 0: a new id means a new call.
        buf = None
    if buf is None:
        buf = StreamedCall(
            call_id=tc.id or new_call_id(),
            server_id=bool(tc.id),
            index=len(calls),
        )
        calls.append(buf)
        by_index[idx] = buf
    elif tc.id and not buf.server_id and not buf.started:
        buf.call_id, buf.server_id = tc.id, True
    fn = tc.function
    name = getattr(fn, "name", None) if fn is not None else None
    fragment = getattr(fn, "arguments", None) if fn is not None else None
    if name and not buf.name:
        buf.name = name
    if fragment:
        buf.args.append(fragment)
    if not buf.started and buf.name:
        buf.started = True
        out.append(ToolCallStart(buf.call_id, buf.name, buf.index))
        if buf.args:
            out.append(ToolCallDelta(buf.call_id, "".join(buf.args)))
    elif buf.started and fragment:
        out.append(ToolCallDelta(buf.call_id, fragment))
    return out
