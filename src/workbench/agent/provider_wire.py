"""What the two wire APIs (provider_chat.py, provider_responses.py) share: where a turn
goes, how it is posted, and the buffer a tool call is assembled in from a stream's pieces."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

from openai import AsyncOpenAI, AsyncStream

from workbench.agent.events import Event, ToolCallDone, ToolCallStart


@dataclass(frozen=True)
class Target:
    """Where a turn is sent: the client, the model, and the endpoint's URL (for the reasons
    of failures only)."""

    client: AsyncOpenAI
    model: str
    url: str


# Turns are sent with the client's `post` rather than `create()`: our body is already plain
# JSON, and create()'s transform walks every message with type introspection on every turn,
# which made the cost of a turn grow with the conversation. These are the options create()
# would send: the API key as a bearer token.
_BEARER: Any = {"security": {"bearer_auth": True}}

_Reply = TypeVar("_Reply")
_Event = TypeVar("_Event")


async def post_whole(client: AsyncOpenAI, path: str, body: dict[str, Any], reply: type[_Reply]) -> _Reply:
    """A turn requested unstreamed: the whole reply, parsed as `reply`."""
    return await client.post(path, body=body, options=_BEARER, cast_to=reply)


async def post_streamed(
    client: AsyncOpenAI, path: str, body: dict[str, Any], reply: type[Any], events: type[AsyncStream[_Event]]
) -> AsyncStream[_Event]:
    """A turn requested streamed: its server-sent events, each parsed by `events`."""
    return await client.post(path, body=body, options=_BEARER, cast_to=reply, stream=True, stream_cls=events)


def new_call_id() -> str:
    """An id for a tool call the server sent none for."""
    return f"call_{uuid.uuid4().hex[:12]}"


@dataclass
class StreamedCall:
    """One tool call while its pieces arrive: ToolCallStart once the name is known,
    ToolCallDone once, when the stream says the call (or the turn) is finished."""

    call_id: str
    name: str = ""
    args: list[str] = field(default_factory=list)
    server_id: bool = False  # the id came from the server (not made up here)
    started: bool = False
    done: bool = False
    index: int = 0


def finish_calls(calls: list[StreamedCall]) -> list[Event]:
    """The events that close every call not yet done (and start any not yet started)."""
    out: list[Event] = []
    for c in calls:
        if c.done:
            continue
        if not c.started:
            c.started = True
            out.append(ToolCallStart(c.call_id, c.name, c.index))
        c.done = True
        out.append(ToolCallDone(c.call_id, c.name, "".join(c.args) or "{}"))
    return out
