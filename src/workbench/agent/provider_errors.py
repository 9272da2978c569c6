"""How one failed request is described: the server's message, its retry-after, and
`Failed` (the reason for people, whether another attempt may help, whether it is the kind
of failure an overloaded server gives, whether the server refused to stream)."""

from __future__ import annotations

import email.utils
import json
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
