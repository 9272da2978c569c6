"""JSON-lines framing shared by the daemon and its clients: one object a line, size limits,
the handshake. The shapes inside the frames are declared in `workbench.protocol`."""

from __future__ import annotations

import _json
import os
from itertools import islice

from workbench.errors import WorkbenchError

TYPE_CHECKING = False  # typing costs the CLI's fast path 3 ms at start (daemon/client.py)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

PROTOCOL_VERSION = 1
MAX_LINE = 4 * 1024 * 1024


class ProtocolError(WorkbenchError):
    code = "protocol"


class Encoded(bytes):
    """A result already encoded by `encode_value` (in a worker thread, or kept from an
    earlier reply): framed as it is, so a big reply costs the event loop a copy only."""


# The C accelerators of the json package, called directly: `import json` costs a one-shot
# CLI call about a third of its CPU (it imports re and enum), and these two functions are
# all of json that a frame needs. `dumps` and `loads` below are json.dumps(separators=(",",
# ":"), ensure_ascii=True) and json.loads to the byte (tests/test_protocol.py compares them).


def _not_serializable(obj: object) -> object:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _dumps(obj: object, default: Callable[[object], object]) -> str:
    # A fresh encoder a call, as json.dumps makes: its circular-reference markers start empty.
    # ensure_ascii keeps every frame one line even if a value holds U+2028 and friends.
    return "".join(_json.make_encoder({}, default, _json.encode_basestring_ascii, None, ":", ",",
                                      False, False, True)(obj, 0))


def dumps(obj: object) -> str:
    return _dumps(obj, _not_serializable)


class _ScanContext:
    """What json's C scanner reads from a decoder: json.loads' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.lower().replace("infinity", "inf"))  # NaN, Infinity, -Infinity


_scan = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]  # it reads only these attributes
_SPACE = " \t\n\r"


def loads(line: bytes) -> Any:
    """json.loads(line): the common case on the C scanner; anything it does not take (a BOM,
    another encoding, a syntax error) goes to json.loads itself, for its result or its error."""
    try:
        s = line.decode()
        start = len(s) - len(s.lstrip(_SPACE))
        obj, end = _scan(s, start)
        if end == len(s) or not s[end:].strip(_SPACE):
            return obj
    except (ValueError, StopIteration):
        pass
    import json

    return json.loads(line)


class RawJSON:
    """JSON text encoded already (by `encode_list`), put into a frame by `encode_value` as
    it is."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


# How many items `encode_list` encodes at once. The C encoder holds every token of what it
# encodes (~8 strings a diff row) until it joins them: a 2,000-line hunk was ~16,000 small
# strings at once, whose memory Python's allocator keeps after a burst (docs/performance.md).
LIST_BATCH = 256


def encode_list(items: Iterable[Any], batch: int = LIST_BATCH) -> RawJSON:
    """`dumps(list(items))`, encoded `batch` items at a time (so are the items taken)."""
    it = iter(items)
    parts: list[str] = []
    while chunk := list(islice(it, batch)):
        parts.append(dumps(chunk)[1:-1])
    return RawJSON("[" + ",".join(parts) + "]")


def encode_value(obj: Any) -> Encoded:
    """`dumps(obj)` as bytes, with each `RawJSON` in it put in as its text."""
    raws: list[str] = []
    # The encoder puts a marker string where a RawJSON is. The marker is new each call (made
    # at the first RawJSON), so no text in the value, a session's file say, can pass for one.
    marker: list[str] = []

    def raw(o: object) -> object:
        if not isinstance(o, RawJSON):
            return _not_serializable(o)
        if not marker:
            marker.append(os.urandom(12).hex())
        raws.append(o.text)
        return "\0" + marker[0]

    text = _dumps(obj, raw)
    if raws:
        parts = text.split(f'"\\u0000{marker[0]}"')
        if len(parts) != len(raws) + 1:
            raise ProtocolError("a value's encoded parts did not line up")
        pieces = [parts[0]]
        for r, rest in zip(raws, parts[1:], strict=True):
            pieces += (r, rest)
        text = "".join(pieces)
    return Encoded(text.encode())


def encode(msg: dict[str, Any]) -> bytes:
    result = msg.get("result")
    if isinstance(result, Encoded):
        head = encode_value({k: v for k, v in msg.items() if k != "result"})
        return head[:-1] + b',"result":' + result + b"}\n"
    return encode_value(msg) + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    if len(line) > MAX_LINE:
        raise ProtocolError(f"message too large ({len(line)} bytes; limit {MAX_LINE})")
    try:
        msg = loads(line)
    except RecursionError:
        raise ProtocolError("malformed JSON: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, an over-long integer
        raise ProtocolError(f"malformed JSON: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a message must be a JSON object")
    return msg


def request(req_id: int, method: str, params: object = None) -> dict[str, Any]:
    return {"id": req_id, "method": method, "params": params or {}}


def hello(client: str) -> dict[str, Any]:
    return request(0, "hello", {"protocol": PROTOCOL_VERSION, "client": client})


def error_reply(req_id: Any, code: str, message: str) -> dict[str, Any]:
    return {"id": req_id, "error": {"code": code, "message": message}}
