"""Which `Failed` an attempt's exception is: what the SDK or a broken server threw, an error
inside a stream, or a stream cut short, each with a reason that names the setting to check
and whether another attempt may help (provider_errors.py holds the pieces it is built from)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import openai

from workbench.agent.provider_config import ProviderConfig
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
from workbench.agent.provider_unstreamed import refuses_streaming

# In-stream error codes worth another attempt (anything unknown is retried too).
_FATAL_STREAM_CODES = {
    "invalid_prompt",
    "invalid_request_error",
    "context_length_exceeded",
    "invalid_api_key",
    "model_not_found",
    "insufficient_quota",
}


def _source(cfg: ProviderConfig, key: str) -> str:
    """" (from SOURCE)" for a setting whose origin is known."""
    src = cfg.sources.get(key)
    return f" (from {src})" if src else ""


def classify(e: Exception, cfg: ProviderConfig, base_url: str, endpoint: str, reached: bool) -> Failed:
    """The failure `e` is for `cfg`'s endpoint; `reached`: it has answered before, so a
    refused connection is a restart worth retrying, not an address nobody listens on."""
    if isinstance(e, openai.APIStatusError):
        status = e.status_code
        url = str(e.request.url)
        msg = server_message(e.body) or e.message
        reason = f"HTTP {status} from {url}: {msg}"
        retryable = status in (408, 409, 429) or status >= 500
        if model_missing(status, e.body, msg):
            # No retry: the name is wrong, not the moment.
            src = cfg.sources.get("model", "")
            return Failed(unknown_model_line(cfg.model, base_url, msg, src), retryable=False)
        if status == 401:
            key_src = _source(cfg, "api_key_env")
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
                f" (check the model name {cfg.model!r}{_source(cfg, 'model')} and base_url "
                f"{base_url!r}{_source(cfg, 'base_url')}"
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
            f"no response from {e.request.url} within {cfg.timeout_s:g}s{_source(cfg, 'timeout_s')}",
            retryable=True, overload=True,
        )
    if isinstance(e, openai.APIConnectionError) and not reached and (why := unreachable(e)) is not None:
        # Refused, or a name DNS says does not exist, before it ever answered: no retry
        # can fix that (nobody listens there, or the address is wrong).
        return Failed(unreachable_line(base_url, why, cfg.sources.get("base_url", "")), retryable=False)
    if isinstance(e, openai.APIConnectionError):
        cause = e.__cause__ or e.__context__
        detail = f"{type(cause).__name__}: {cause}" if cause else e.message
        return Failed(
            f"connection to {e.request.url}{_source(cfg, 'base_url')} failed or was cut: {detail}",
            retryable=True, overload=True,
        )
    if isinstance(e, openai.APIError):
        # An error payload inside a 200 stream.
        code = e.code or (e.body.get("code") if isinstance(e.body, Mapping) else None)
        retryable = code not in _FATAL_STREAM_CODES
        return Failed(f"server error mid-stream from {endpoint}: {e.message}", retryable)
    if isinstance(e, (ValueError, TypeError, AttributeError, KeyError)):
        # Invalid JSON/SSE or a payload of the wrong shape: often a flaky proxy.
        return Failed(
            f"malformed response from {endpoint} ({type(e).__name__}: {e})"[:500],
            retryable=True,
        )
    if isinstance(e, openai.OpenAIError):
        return Failed(f"{type(e).__name__}: {e}", retryable=False)
    return Failed(
        f"unexpected error talking to {endpoint}: {type(e).__name__}: {e}", False
    )


def stream_failure(error: Any, what: str, endpoint: str) -> Failed:
    """A failure the server reported as a Responses event or status (`error` has a code
    and a message, either possibly missing); retried unless its code says it cannot help."""
    code = getattr(error, "code", None) if error is not None else None
    message = getattr(error, "message", None) if error is not None else None
    text = f"{what} from {endpoint}: {message or 'no message'}"
    text += f" ({code})" if code else ""
    return Failed(text, retryable=code not in _FATAL_STREAM_CODES)


def cut_short(endpoint: str) -> Failed:
    """A stream that ended before the turn finished: what an overloaded server does."""
    return Failed(
        f"stream from {endpoint} ended before the response was complete",
        retryable=True, overload=True,
    )
