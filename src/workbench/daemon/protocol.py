"""JSON-lines framing shared by the daemon and its clients: one object a line, size limits,
the handshake. The shapes inside the frames are declared in `workbench.protocol`."""

from __future__ import annotations

import json

from workbench.errors import WorkbenchError

TYPE_CHECKING = False  # typing costs the CLI's fast path 3 ms at start (daemon/client.py)
if TYPE_CHECKING:
    from typing import Any

PROTOCOL_VERSION = 1
MAX_LINE = 4 * 1024 * 1024


class ProtocolError(WorkbenchError):
    code = "protocol"


class Encoded(bytes):
    """A result already encoded by `encode_value` (in a worker thread, or kept from an
    earlier reply): framed as it is, so a big reply costs the event loop a copy only."""


def encode_value(obj: Any) -> Encoded:
    # ensure_ascii keeps every frame one line even if a value holds U+2028 and friends.
    return Encoded(json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode())


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
        msg = json.loads(line)
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
