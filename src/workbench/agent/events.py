"""The one internal event stream that both wire APIs (chat, responses) are turned into.

Consumers see text as it arrives. A `Retrying` event means the attempt in progress failed:
drop every `TextDelta` and `ToolCall*` event received since the start of the turn, because
the next attempt streams the whole turn again from the beginning.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolCallStart:
    call_id: str
    name: str
    index: int


@dataclass(frozen=True)
class ToolCallDelta:
    call_id: str
    fragment: str


@dataclass(frozen=True)
class ToolCallDone:
    call_id: str
    name: str
    arguments: str  # the full JSON text as assembled ("{}" when the model sent none)


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0


@dataclass(frozen=True)
class TurnDone:
    finish_reason: str  # chat vocabulary: "stop", "tool_calls", "length", "content_filter"


@dataclass(frozen=True)
class StreamError:
    message: str
    retryable: bool


@dataclass(frozen=True)
class Retrying:
    attempt: int  # 1 for the first retry
    delay_s: float
    reason: str
    # Two or more failures in a row that an overloaded server gives (cut streams, 429, 503,
    # timeouts): the endpoint is saturated or slow rather than broken.
    saturated: bool = False


@dataclass(frozen=True)
class StreamingOff:
    """This and later turns are requested without streaming; `reason` says why (once)."""

    reason: str


Event = (
    TextDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallDone
    | Usage
    | TurnDone
    | StreamError
    | Retrying
    | StreamingOff
)
