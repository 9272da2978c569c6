"""Model providers: any OpenAI-compatible endpoint through the official `openai` SDK.

Both wire APIs (Chat Completions, Responses) become one stream of `workbench.agent.events`.

Retries are ours (the SDK's are switched off) so each one can be shown: on 429, 5xx,
connection errors, timeouts, garbage from the server and a stream cut before the turn
finished, `stream()` yields `Retrying(attempt, delay_s, reason)`, sleeps, and streams the
whole turn again. Text is streamed live, so a consumer that sees `Retrying` must drop the
partial turn it has received so far. When retries run out, or on an error that retrying
cannot fix (401, 404, ...), the last event is `StreamError(message, retryable=False)` and
the turn is lost, partial text included; `stream()` never raises for provider trouble.
Two or more failures in a row of the kinds an overloaded server gives (cut streams, 429,
502-504, timeouts) mark the `Retrying` as `saturated`.

Streaming is negotiated (provider_unstreamed.py): when the endpoint refuses a streamed
request, the same turn is requested again unstreamed at once (no delay, no attempt counted),
and so is every later one for that endpoint and model; `StreamingOff` says so, once per
provider. `stream = false` in the provider's settings skips streaming from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk
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

from workbench.agent.conversation import Item, to_chat_messages, to_responses_input
from workbench.agent.events import (
    Event,
    Retrying,
    StreamError,
    StreamingOff,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStart,
    TurnDone,
    Usage,
)
from workbench.agent.provider_errors import (
    OVERLOAD_STATUS,
    Failed,
    model_missing,
    retry_after_s,
    server_message,
    unknown_model_line,
    unreachable,
    unreachable_line,
)
from workbench.agent.provider_unstreamed import (
    NO_STREAMING,
    chat_reply_events,
    refuses_streaming,
    responses_reply_events,
)
from workbench.config import ProviderSettings
from workbench.errors import ConfigError

__all__ = ["PLACEHOLDER_KEY", "Provider", "ProviderConfig", "cost_usd", "make_provider_config", "retry_after_s"]

# Sent when no key is configured: local servers (Ollama, vLLM, llama.cpp) ignore it, and the
# SDK would otherwise refuse to build a client.
PLACEHOLDER_KEY = "not-needed"

# What the SDK's own `create()` sends: the API key as a bearer token.
_BEARER: Any = {"security": {"bearer_auth": True}}

# In-stream error codes worth another attempt (anything unknown is retried too).
_FATAL_STREAM_CODES = {
    "invalid_prompt",
    "invalid_request_error",
    "context_length_exceeded",
    "invalid_api_key",
    "model_not_found",
    "insufficient_quota",
}


@dataclass
class ProviderConfig:
    base_url: str | None
    api_key: str | None
    model: str
    wire_api: Literal["chat", "responses"] = "chat"
    headers: dict[str, str] = field(default_factory=dict)
    max_retries: int = 4
    timeout_s: float = 600
    context_window: int = 128_000
    price_in_per_million: float = 0
    price_out_per_million: float = 0
    retry_base_s: float = 1.0  # first backoff delay; doubles each retry
    retry_max_s: float = 60.0  # cap for backoff and for a server's retry-after
    api_key_env: str = "OPENAI_API_KEY"  # only to say which variable to set in errors
    stream: bool | None = None  # None: stream unless the endpoint refuses
    # Where each setting came from ("--wire-api", "WORKBENCH_WIRE_API", "[providers.x].model
    # in ~/.config/...") so that an error names the setting to change.
    sources: dict[str, str] = field(default_factory=dict)


def make_provider_config(
    settings: ProviderSettings, env: Mapping[str, str], sources: Mapping[str, str] | None = None
) -> ProviderConfig:
    """A config for `settings`, the key read from `env[settings.api_key_env]` (never stored)."""
    if not settings.model:
        raise ConfigError(
            'provider has no model; set `model = "..."` in its [providers.NAME] table '
            "(or OPENAI_MODEL for the default provider, or --model)"
        )
    return ProviderConfig(
        base_url=settings.base_url,
        api_key=env.get(settings.api_key_env) or None,
        model=settings.model,
        wire_api=settings.wire_api,
        headers=dict(settings.headers),
        max_retries=settings.max_retries,
        timeout_s=settings.timeout_s,
        context_window=settings.context_window,
        price_in_per_million=settings.price_in_per_million,
        price_out_per_million=settings.price_out_per_million,
        api_key_env=settings.api_key_env,
        stream=settings.stream,
        sources=dict(sources or {}),
    )


def cost_usd(cfg: ProviderConfig, input_tokens: int, output_tokens: int) -> float:
    return (
        input_tokens * cfg.price_in_per_million + output_tokens * cfg.price_out_per_million
    ) / 1_000_000


@dataclass
class _Call:
    call_id: str
    name: str = ""
    args: list[str] = field(default_factory=list)
    server_id: bool = False  # the id came from the server (not made up here)
    started: bool = False
    done: bool = False
    index: int = 0


class Provider:
    def __init__(self, cfg: ProviderConfig) -> None:
        self.cfg = cfg
        self._client = AsyncOpenAI(
            base_url=cfg.base_url,
            api_key=cfg.api_key or PLACEHOLDER_KEY,
            default_headers=cfg.headers or None,
            max_retries=0,
            timeout=cfg.timeout_s,
        )
        self._announced = False  # StreamingOff was said
        # The endpoint answered once: a refusal later is a restart, retried like any blip.
        self._reached = False

    @property
    def base_url(self) -> str:
        return str(self._client.base_url).rstrip("/")

    @property
    def endpoint(self) -> str:
        path = "/responses" if self.cfg.wire_api == "responses" else "/chat/completions"
        return self.base_url + path

    async def close(self) -> None:
        await self._client.close()

    def _source(self, key: str) -> str:
        """" (from SOURCE)" for a setting whose origin is known."""
        src = self.cfg.sources.get(key)
        return f" (from {src})" if src else ""

    @property
    def _memory_key(self) -> tuple[str, str, str]:
        return (self.base_url, self.cfg.wire_api, self.cfg.model)

    def unstreamed_reason(self) -> str | None:
        """Why turns go unstreamed (None: they are streamed)."""
        if self.cfg.stream is False:
            src = self.cfg.sources.get("stream") or "the provider's settings"
            return f"turns are requested without streaming (stream = false, from {src})"
        if self.cfg.stream is None:
            return NO_STREAMING.reason(self._memory_key)
        return None

    async def stream(
        self, items: list[Item], tools: list[dict[str, Any]]
    ) -> AsyncGenerator[Event, None]:
        """One model turn as events; see the module docstring for retry semantics.

        `tools` are already in the wire's shape (chat nests name/parameters under
        "function"; responses has them at the top level)."""
        attempt = 0
        overloaded = 0  # failures in a row that an overloaded server gives
        while True:
            why = self.unstreamed_reason()
            if why is not None and not self._announced:
                self._announced = True
                yield StreamingOff(why)
            try:
                async with contextlib.aclosing(self._attempt(items, tools, why is None)) as events:
                    async for ev in events:
                        self._reached = True
                        yield ev
                return
            except Failed as f:
                failure = f
            except Exception as e:  # anything the SDK or a broken server throws at us
                failure = self._classify(e)
            if failure.refusal and why is None and self.cfg.stream is None:
                # Not a fault of this attempt: ask again unstreamed, now and from now on.
                NO_STREAMING.remember(self._memory_key, (
                    f"{self.endpoint} refused a streamed request ({failure.reason}); this turn and "
                    f"later ones for model {self.cfg.model!r} there are requested without streaming"
                ))
                continue
            overloaded = overloaded + 1 if failure.overload else 0
            if not failure.retryable:
                yield StreamError(failure.reason, retryable=False)
                return
            if attempt >= self.cfg.max_retries:
                tries = attempt + 1
                yield StreamError(
                    f"{failure.reason} (gave up after {tries} attempt{'s' if tries > 1 else ''})",
                    retryable=False,
                )
                return
            attempt += 1
            delay = self._delay(attempt, failure.delay_s)
            yield Retrying(attempt=attempt, delay_s=delay, reason=failure.reason, saturated=overloaded >= 2)
            await asyncio.sleep(delay)

    def _delay(self, attempt: int, server_delay: float | None) -> float:
        if server_delay is not None:
            return min(server_delay, self.cfg.retry_max_s)
        backoff = self.cfg.retry_base_s * 2 ** (attempt - 1)
        return min(self.cfg.retry_max_s, backoff * random.uniform(0.8, 1.2))

    def _attempt(
        self, items: list[Item], tools: list[dict[str, Any]], streamed: bool
    ) -> AsyncGenerator[Event, None]:
        if self.cfg.wire_api == "responses":
            return self._attempt_responses(items, tools, streamed)
        return self._attempt_chat(items, tools, streamed)

    # -- error classification -------------------------------------------------------------

    def _classify(self, e: Exception) -> Failed:
        cfg = self.cfg
        if isinstance(e, openai.APIStatusError):
            self._reached = True
            status = e.status_code
            url = str(e.request.url)
            msg = server_message(e.body) or e.message
            reason = f"HTTP {status} from {url}: {msg}"
            retryable = status in (408, 409, 429) or status >= 500
            if model_missing(status, e.body, msg):
                # No retry: the name is wrong, not the moment.
                src = cfg.sources.get("model", "")
                return Failed(unknown_model_line(cfg.model, self.base_url, msg, src), retryable=False)
            if status == 401:
                key_src = self._source("api_key_env")
                fix = (
                    f"no API key is set: set {cfg.api_key_env}{key_src}"
                    if not cfg.api_key
                    else f"the API key was rejected: check {cfg.api_key_env}{key_src}"
                )
                reason += f" ({fix})"
            elif status == 403:
                reason += " (the key has no access to this model or endpoint)"
            elif status == 404:
                reason += (
                    f" (check the model name {cfg.model!r}{self._source('model')} and base_url "
                    f"{self.base_url!r}{self._source('base_url')}"
                )
                if cfg.wire_api == "responses":
                    src = cfg.sources.get("wire_api") or "wire_api"
                    reason += (
                        f"; if the server has no Responses API, use the chat API: {src} chose "
                        '"responses", set it to "chat"'
                    )
                reason += ")"
            delay = retry_after_s(e.response.headers) if retryable else None
            return Failed(
                reason, retryable, delay, overload=status in OVERLOAD_STATUS,
                refusal=refuses_streaming(status, msg),
            )
        if isinstance(e, openai.APITimeoutError):
            return Failed(
                f"no response from {e.request.url} within {cfg.timeout_s:g}s{self._source('timeout_s')}",
                retryable=True, overload=True,
            )
        if isinstance(e, openai.APIConnectionError) and not self._reached and (why := unreachable(e)) is not None:
            # Refused, or a name DNS says does not exist, before it ever answered: no retry
            # can fix that (nobody listens there, or the address is wrong).
            return Failed(unreachable_line(self.base_url, why, cfg.sources.get("base_url", "")), retryable=False)
        if isinstance(e, openai.APIConnectionError):
            cause = e.__cause__ or e.__context__
            detail = f"{type(cause).__name__}: {cause}" if cause else e.message
            return Failed(
                f"connection to {e.request.url}{self._source('base_url')} failed or was cut: {detail}",
                retryable=True, overload=True,
            )
        if isinstance(e, openai.APIError):
            # An error payload inside a 200 stream.
            code = e.code or (e.body.get("code") if isinstance(e.body, Mapping) else None)
            retryable = code not in _FATAL_STREAM_CODES
            return Failed(f"server error mid-stream from {self.endpoint}: {e.message}", retryable)
        if isinstance(e, (ValueError, TypeError, AttributeError, KeyError)):
            # Invalid JSON/SSE or a payload of the wrong shape: often a flaky proxy.
            return Failed(
                f"malformed response from {self.endpoint} ({type(e).__name__}: {e})"[:500],
                retryable=True,
            )
        if isinstance(e, openai.OpenAIError):
            return Failed(f"{type(e).__name__}: {e}", retryable=False)
        return Failed(
            f"unexpected error talking to {self.endpoint}: {type(e).__name__}: {e}", False
        )

    def _stream_failure(self, error: Any, what: str) -> Failed:
        code = getattr(error, "code", None) if error is not None else None
        message = getattr(error, "message", None) if error is not None else None
        text = f"{what} from {self.endpoint}: {message or 'no message'}"
        text += f" ({code})" if code else ""
        return Failed(text, retryable=code not in _FATAL_STREAM_CODES)

    # -- Chat Completions ----------------------------------------------------------------

    async def _attempt_chat(
        self, items: list[Item], tools: list[dict[str, Any]], streamed: bool = True
    ) -> AsyncGenerator[Event, None]:
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "messages": to_chat_messages(items),
            "stream": streamed,
        }
        if streamed:
            body["stream_options"] = {"include_usage": True}
        if tools:
            body["tools"] = tools
        if not streamed:
            reply = await self._client.post(
                "/chat/completions", body=body, options=_BEARER, cast_to=ChatCompletion
            )
            for ev in chat_reply_events(reply):
                yield ev
            return
        # `post` rather than `chat.completions.create`: our body is already plain JSON, and
        # create()'s transform walks every message with type introspection on every turn,
        # which made the cost of a turn grow with the conversation.
        stream = await self._client.post(
            "/chat/completions",
            body=body,
            options=_BEARER,
            cast_to=ChatCompletion,
            stream=True,
            stream_cls=AsyncStream[ChatCompletionChunk],
        )
        calls: list[_Call] = []
        by_index: dict[int, _Call] = {}
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
                            for ev in self._chat_tool_delta(tc, calls, by_index):
                                yield ev
                    if choice.finish_reason:
                        finish = choice.finish_reason
                        for ev in self._finish_calls(calls):
                            yield ev
        except openai.APIConnectionError:
            # A cut after the finish reason loses only the usage chunk; keep the turn.
            if finish is None:
                raise
        finally:
            await stream.close()
        if finish is None:
            raise Failed(
                f"stream from {self.endpoint} ended before the response was complete",
                retryable=True, overload=True,
            )
        for ev in self._finish_calls(calls):
            yield ev
        if usage is not None:
            yield usage
        if calls and finish == "stop":
            finish = "tool_calls"  # some servers say "stop" even when they called tools
        yield TurnDone(finish)

    @staticmethod
    def _chat_tool_delta(tc: Any, calls: list[_Call], by_index: dict[int, _Call]) -> list[Event]:
        out: list[Event] = []
        idx = tc.index if isinstance(tc.index, int) else len(calls)
        buf = by_index.get(idx)
        if buf is not None and tc.id and buf.server_id and tc.id != buf.call_id:
            # Servers that number every call 0: a new id means a new call.
            buf = None
        if buf is None:
            buf = _Call(
                call_id=tc.id or f"call_{uuid.uuid4().hex[:12]}",
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

    @staticmethod
    def _finish_calls(calls: list[_Call]) -> list[Event]:
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

    # -- Responses API -------------------------------------------------------------------

    async def _attempt_responses(
        self, items: list[Item], tools: list[dict[str, Any]], streamed: bool = True
    ) -> AsyncGenerator[Event, None]:
        instructions, input_items = to_responses_input(items)
        body: dict[str, Any] = {
            "model": self.cfg.model,
            "input": input_items,
            "stream": streamed,
            "store": False,  # we resend the whole conversation; nothing to keep server-side
        }
        if instructions is not None:
            body["instructions"] = instructions
        if tools:
            body["tools"] = tools
        if not streamed:
            resp = await self._client.post("/responses", body=body, options=_BEARER, cast_to=Response)
            if getattr(resp, "status", None) == "failed":
                raise self._stream_failure(getattr(resp, "error", None), "response failed")
            for out in responses_reply_events(resp):
                yield out
            return
        # Plain JSON already: skip create()'s per-turn transform (see _attempt_chat).
        stream = await self._client.post(
            "/responses",
            body=body,
            options=_BEARER,
            cast_to=Response,
            stream=True,
            stream_cls=AsyncStream[ResponseStreamEvent],
        )
        calls: list[_Call] = []
        by_item: dict[str, _Call] = {}
        by_output: dict[int, _Call] = {}

        def find(item_id: str | None, output_index: int) -> _Call | None:
            return by_item.get(item_id or "") or by_output.get(output_index)

        try:
            async for ev in stream:
                if isinstance(ev, ResponseTextDeltaEvent):
                    if ev.delta:
                        yield TextDelta(ev.delta)
                elif isinstance(ev, ResponseOutputItemAddedEvent):
                    item = ev.item
                    if isinstance(item, ResponseFunctionToolCall):
                        call = _Call(
                            call_id=item.call_id or f"call_{uuid.uuid4().hex[:12]}",
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
                    for out in self._finish_calls(calls):
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
                    raise self._stream_failure(ev.response.error, "response failed")
                elif isinstance(ev, ResponseErrorEvent):
                    raise self._stream_failure(ev, "server error mid-stream")
        finally:
            await stream.close()
        raise Failed(
            f"stream from {self.endpoint} ended before the response was complete",
            retryable=True, overload=True,
        )
