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

This module is the entry and the retry loop. One attempt is made by provider_chat.py or
provider_responses.py (what they share is in provider_wire.py), the failure an exception
stands for is decided in provider_classify.py, and the settings are in provider_config.py;
the names callers use are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncGenerator
from typing import Any

import openai
from openai import AsyncOpenAI

from workbench.agent.conversation import Item
from workbench.agent.events import Event, Retrying, StreamError, StreamingOff
from workbench.agent.provider_chat import chat_turn
from workbench.agent.provider_classify import classify
from workbench.agent.provider_config import PLACEHOLDER_KEY, ProviderConfig, cost_usd, make_provider_config
from workbench.agent.provider_errors import Failed, retry_after_s
from workbench.agent.provider_responses import responses_turn
from workbench.agent.provider_unstreamed import NO_STREAMING
from workbench.agent.provider_wire import Target

__all__ = ["PLACEHOLDER_KEY", "Provider", "ProviderConfig", "cost_usd", "make_provider_config", "retry_after_s"]


class Provider:
    """One configured endpoint and model: `stream()` runs a turn with retries (see the
    module docstring)."""

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
                if isinstance(e, openai.APIStatusError):
                    self._reached = True  # it answered, if only with an error
                failure = classify(e, self.cfg, self.base_url, self.endpoint, self._reached)
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
        """The server's retry-after if it gave one, else jittered exponential backoff; capped."""
        if server_delay is not None:
            return min(server_delay, self.cfg.retry_max_s)
        backoff = self.cfg.retry_base_s * 2 ** (attempt - 1)
        return min(self.cfg.retry_max_s, backoff * random.uniform(0.8, 1.2))

    def _attempt(
        self, items: list[Item], tools: list[dict[str, Any]], streamed: bool
    ) -> AsyncGenerator[Event, None]:
        turn = responses_turn if self.cfg.wire_api == "responses" else chat_turn
        return turn(Target(self._client, self.cfg.model, self.endpoint), items, tools, streamed)
