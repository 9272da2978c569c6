"""Responses API: one turn's request, and its streamed events (or whole reply) as
`workbench.agent.events`. Failures are raised for providers.py to classify and retry."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from openai import AsyncStream
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseErrorEvent,
    ResponseFailedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseIncompleteEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseStreamEvent,
    ResponseTextDeltaEvent,
)

from workbench.agent.conversation import Item, to_responses_input
from workbench.agent.events import Event, TextDelta, ToolCallDelta, ToolCallDone, ToolCallStart, TurnDone, Usage
from workbench.agent.provider_classify import cut_short, stream_failure
from workbench.agent.provider_unstreamed import responses_reply_events
from workbench.agent.provider_wire import StreamedCall, Target, finish_calls, new_call_id, post_streamed, post_whole


async def responses_turn(
    to: Target, items: list[Item], tools: list[dict[str, Any]], streamed: bool
) -> AsyncGenerator[Event, None]:
    """One attempt at a turn; a response the server says failed, or a stream that ends
    before the response is completed or incomplete, raises `Failed`."""
    body = _body(to.model, items, tools, streamed)
    if not streamed:
        resp = await post_whole(to.client, "/responses", body, Response)
        if getattr(resp, "status", None) == "failed":
            raise stream_failure(getattr(resp, "error", None), "response failed", to.url)
        for out in responses_reply_events(resp):
            yield out
        return
    stream = await post_streamed(to.client, "/responses", body, Response, AsyncStream[ResponseStreamEvent])
    calls: list[StreamedCall] = []
    by_item: dict[str, StreamedCall] = {}
    by_output: dict[int, StreamedCall] = {}

    def find(item_id: str | None, output_index: int) -> StreamedCall | None:
        return by_item.get(item_id or "") or by_output.get(output_index)

    try:
        async for ev in stream:
            if isinstance(ev, ResponseTextDeltaEvent):
                if ev.delta:
                    yield TextDelta(ev.delta)
            elif isinstance(ev, ResponseOutputItemAddedEvent):
                item = ev.item
                if isinstance(item, ResponseFunctionToolCall):
                    call = StreamedCall(
                        call_id=item.call_id or new_call_id(),
                        name=item.name or "",
                        server_id=True,
                        started=True,
                        index=len(calls),
                    )
                    calls.append(call)
                    if item.id:
                        by_item[item.id] = call
                    by_output[ev.output_index] = call
                    yield ToolCallStart(call.call_id, call.name, call.index)
            elif isinstance(ev, ResponseFunctionCallArgumentsDeltaEvent):
                found = find(ev.item_id, ev.output_index)
                if found is not None and ev.delta:
                    found.args.append(ev.delta)
                    yield ToolCallDelta(found.call_id, ev.delta)
            elif isinstance(ev, ResponseFunctionCallArgumentsDoneEvent):
                found = find(ev.item_id, ev.output_index)
                if found is not None and ev.arguments is not None:
                    found.args = [ev.arguments]
            elif isinstance(ev, ResponseOutputItemDoneEvent):
                item = ev.item
                if isinstance(item, ResponseFunctionToolCall):
                    found = find(item.id, ev.output_index)
                    if found is not None and not found.done:
                        found.done = True
                        args = item.arguments or "".join(found.args) or "{}"
                        yield ToolCallDone(found.call_id, found.name or item.name, args)
            elif isinstance(ev, ResponseCompletedEvent | ResponseIncompleteEvent):
                for out in finish_calls(calls):
                    yield out
                resp = ev.response
                u = resp.usage
                if u is not None:
                    details = u.input_tokens_details
                    yield Usage(
                        input_tokens=u.input_tokens or 0,
                        output_tokens=u.output_tokens or 0,
                        cached_tokens=(details.cached_tokens or 0) if details else 0,
                    )
                if isinstance(ev, ResponseCompletedEvent):
                    yield TurnDone("tool_calls" if calls else "stop")
                else:
                    why = resp.incomplete_details.reason if resp.incomplete_details else None
                    yield TurnDone("length" if why in (None, "max_output_tokens") else str(why))
                return
            elif isinstance(ev, ResponseFailedEvent):
                raise stream_failure(ev.response.error, "response failed", to.url)
            elif isinstance(ev, ResponseErrorEvent):
                raise stream_failure(ev, "server error mid-stream", to.url)
    finally:
        await stream.close()
    raise cut_short(to.url)


def _body(model: str, items: list[Item], tools: list[dict[str, Any]], streamed: bool) -> dict[str, Any]:
    """The request body: the system prompt as `instructions`, nothing stored server-side."""
    instructions, input_items = to_responses_input(items)
    body: dict[str, Any] = {
        "model": model,
        "input": input_items,
        "stream": streamed,
        "store": False,  # we resend the whole conversation; nothing to keep server-side
    }
    if instructions is not None:
        body["instructions"] = instructions
    if tools:
        body["tools"] = tools
    return body
