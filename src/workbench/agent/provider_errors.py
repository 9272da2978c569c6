"""How one failed request is described: the server's message, its retry-after, and
`Failed` (the reason for people, whether another attempt may help, whether it is the kind
of failure an overloaded server gives, whether the server refused to stream); and the two
failures no retry can fix, said the same way in a session and in `workbench doctor`: an
endpoint that cannot be reached at all, and a model the server does not have."""

from __future__ import annotations

import email.utils
import errno
import json
import re
import socket
import time
from collections.abc import Mapping


def retry_after_s(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a server asked us to wait (`retry-after-ms`, then `retry-after`), if any."""
    lower = {k.lower(): v for k, v in headers.items()}
    ms = lower.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000
            if value >= 0:
                return value
        except ValueError:
            pass
    ra = lower.get("retry-after")
    if ra is None:
        return None
    try:
        value = float(ra)
        return value if value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# HTTP statuses an overloaded (or overloaded proxied) server answers with.
OVERLOAD_STATUS = {408, 429, 502, 503, 504}


class Failed(Exception):
    """One attempt failed; `reason` is meant for people. `overload`: the kind of failure a
    saturated server gives; `refusal`: the server said it cannot stream this request."""

    def __init__(
        self, reason: str, retryable: bool, delay_s: float | None = None, *,
        overload: bool = False, refusal: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.delay_s = delay_s
        self.overload = overload
        self.refusal = refusal


def server_message(body: object) -> str:
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
        return json.dumps(body)[:300]
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return str(body)[:300] if body else ""


# DNS answers that say the name does not exist (not "try again later": EAI_AGAIN is retried).
_NO_SUCH_HOST = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
_NO_SUCH_HOST_TEXT = re.compile(r"Name or service not known|nodename nor servname|No address associated", re.I)


def unreachable(e: BaseException) -> str | None:
    """"connection refused" or "no such host" when `e` (or what caused it) says the endpoint
    cannot be reached at all, so retrying cannot help; None for what may pass (timeouts,
    resets, a DNS server that said "try again")."""
    seen: set[int] = set()
    cur: BaseException | None = e
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError) or (
                isinstance(cur, OSError) and cur.errno == errno.ECONNREFUSED):
            return "connection refused"
        if isinstance(cur, socket.gaierror) and cur.errno in _NO_SUCH_HOST:
            return "no such host"
        if _NO_SUCH_HOST_TEXT.search(str(cur)):
            return "no such host"
        cur = cur.__cause__ or cur.__context__
    return None


def unreachable_line(base_url: str, why: str, source: str = "") -> str:
    """The one line that says an endpoint cannot be reached and what to change; `source`
    is where base_url was set ("--base-url", "[providers.x].base_url in config.toml")."""
    ask = "is the server running?" if why == "connection refused" else "is the address right?"
    fix = (f"check base_url (set by {source})" if source
           else "set base_url in [providers.NAME] of config.toml, or --base-url")
    return f"cannot reach {base_url}: {why} — {ask} {fix}"


_MISSING_MODEL = re.compile(
    # within one sentence: "model" then what is wrong with it
    r"\bmodel\b[^\n]{0,80}?(not found|does not exist|no such|not available|try pulling)"
    r"|\b(unknown|no such) model\b", re.I)


def model_missing(status: int, body: object, message: str) -> bool:
    """Whether an HTTP error says the requested model does not exist there (OpenAI's
    `model_not_found`, vLLM's "The model `x` does not exist", Ollama's "model "x" not found")."""
    inner = body.get("error", body) if isinstance(body, Mapping) else None
    if isinstance(inner, Mapping) and inner.get("code") == "model_not_found":
        return True
    return status in (400, 404) and bool(_MISSING_MODEL.search(message))


def unknown_model_line(model: str, base_url: str, server_says: str, source: str = "") -> str:
    """The one line that says the server has no such model and where the name was set."""
    where = f"set by {source}" if source else "the default; set model in [providers.NAME] or --model"
    said = f": {server_says}" if server_says else ""
    return f"model {model!r} ({where}) is not served by {base_url}{said} — choose one it serves"
