"""JSON-lines wire protocol shared by the daemon and its clients."""

from __future__ import annotations

import builtins
import json
import math
from typing import Any

from workbench.errors import WorkbenchError

PROTOCOL_VERSION = 1
MAX_LINE = 4 * 1024 * 1024
INT_LIMIT = 2**63


class ProtocolError(WorkbenchError):
    code = "protocol"


def encode(msg: dict[str, Any]) -> bytes:
    # ensure_ascii keeps every frame one line even if a value holds U+2028 and friends.
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise ProtocolError(f"message too large ({len(line)} bytes; limit {MAX_LINE})")
    try:
        msg = json.loads(line)
    except RecursionError:
        raise ProtocolError("malformed JSON: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an over-long integer
        raise ProtocolError(f"malformed JSON: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a message must be a JSON object")
    return msg


def request(req_id: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": req_id, "method": method, "params": params or {}}


def hello(client: str) -> dict[str, Any]:
    return request(0, "hello", {"protocol": PROTOCOL_VERSION, "client": client})


def error_reply(req_id: Any, code: str, message: str) -> dict[str, Any]:
    return {"id": req_id, "error": {"code": code, "message": message}}


class Params:
    """Typed access to request parameters; a wrong type is a usage error, not a crash."""

    def __init__(self, raw: Any) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ProtocolError("params must be an object")
        self.raw: dict[str, Any] = raw

    def _get(self, key: str, types: tuple[type, ...], default: Any, required: bool) -> Any:
        if key not in self.raw or self.raw[key] is None:
            if required:
                raise _usage(f"missing parameter '{key}'")
            return default
        v = self.raw[key]
        # bool is an int subclass: only accept it where a bool is asked for.
        if (bool in types or not isinstance(v, bool)) and isinstance(v, types):
            return v
        raise _usage(f"parameter '{key}' must be {'/'.join(t.__name__ for t in types)}")

    def str(self, key: builtins.str, default: builtins.str | None = None, *, required: bool = False) -> Any:
        v = self._get(key, (str,), default, required)
        if isinstance(v, str) and "\0" in v:
            raise _usage(f"parameter '{key}' contains a NUL byte")
        return v

    def int(self, key: builtins.str, default: builtins.int | None = None, *, required: bool = False) -> Any:
        v = self._get(key, (int,), default, required)
        # SQLite and most callers take 64-bit integers; a larger one is a usage error, not a crash.
        if isinstance(v, int) and not -INT_LIMIT <= v < INT_LIMIT:
            raise _usage(f"parameter '{key}' is out of range")
        return v

    def float(self, key: builtins.str, default: builtins.float | None = None, *, required: bool = False) -> Any:
        v = self._get(key, (int, float), default, required)
        if v is None:
            return None
        try:
            f = float(v)
        except OverflowError:
            raise _usage(f"parameter '{key}' is out of range") from None
        if not math.isfinite(f):
            raise _usage(f"parameter '{key}' must be a finite number")
        return f

    def bool(self, key: builtins.str, default: builtins.bool = False) -> builtins.bool:
        return bool(self._get(key, (bool,), default, False))

    def list_str(self, key: builtins.str, default: list[builtins.str] | None = None) -> list[builtins.str] | None:
        v = self._get(key, (list,), default, False)
        if v is not None and not all(isinstance(x, str) and "\0" not in x for x in v):
            raise _usage(f"parameter '{key}' must be a list of strings")
        return v


def _usage(msg: str) -> WorkbenchError:
    from workbench.errors import UsageError

    return UsageError(msg)
