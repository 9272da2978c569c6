"""A scripted OpenAI-compatible HTTP server on 127.0.0.1, for tests and `workbench demo`.

Serves `POST /v1/chat/completions` (streaming and not), `POST /v1/responses` (streaming
and not) and `GET /v1/models`. Each request picks a `Script` by the first user message and
gets that script's next `Turn`; a turn's `Fault` is served `times` times first. Every
request is recorded, and protocol mistakes a real server would reject (a tool result that
answers no call, a call left without a result, tools in the wrong wire shape) are noted in
`violations` while the request is answered normally.

Three switches act like local servers people run (each leaves the scripts' turns alone):
`refuse_streamed_tools` answers a streamed request that offers tools with llama-cpp-python's
HTTP 500; `no_responses` has no Responses API (404, as Ollama's and llama.cpp's older
servers); `max_streams` cuts a stream that arrives while that many requests are answered.
`release()` ends every turn's `delay_s` early (a test holds a request with it).

    python -m workbench.fakes.model_server --script demo.json --port 8765

Over 600 lines because it holds a test and demo double: one scripted server for both wire
APIs, streaming and not; splitting the two wire APIs is the seam.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Literal, cast

from workbench.errors import ConfigError

FaultKind = Literal["status", "cut", "garbage", "hang", "stream_error"]
FINISHED_TEXT = "(script finished)"
NO_SCRIPT_TEXT = "(no script matches this request)"
DEFAULT_MODEL = "fake-model"
# What llama-cpp-python's server says (HTTP 500) to a streamed request with tools.
STREAMED_TOOLS_REFUSAL = "Automatic streaming tool choice is not supported"


@dataclass
class ScriptedToolCall:
    name: str
    arguments: str  # JSON text
    call_id: str | None = None  # made up ("call_N") when not given
    chunks: int = 3  # the arguments arrive split across this many deltas


@dataclass
class Fault:
    """`status`: an HTTP error; `cut`: the stream closes mid-way; `garbage`: invalid JSON in
    the stream; `hang`: headers sent, then nothing for `delay_s` seconds; `stream_error`: part
    of the turn, then an in-stream error (chat `{"error": ...}` chunk, `response.failed`)."""

    kind: FaultKind
    status: int = 500
    retry_after_ms: int | None = None
    times: int = 1
    retry_after_s: float | None = None
    delay_s: float = 30.0


@dataclass
class Turn:
    text: str = ""
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    usage: tuple[int, int] | None = None  # (input, output); estimated when None
    error: Fault | None = None
    delay_s: float = 0  # before the first byte
    chunk_delay_s: float = 0  # between streamed events (makes demos watchable)


@dataclass
class Script:
    match: str  # substring of a request's first user message; "" = the default script
    turns: list[Turn]


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None
    script: str | None = None  # `match` of the script that answered


# -- protocol checks ------------------------------------------------------------------------


def _check_tools(tools: Any, wire: Literal["chat", "responses"]) -> list[str]:
    out: list[str] = []
    if tools is None:
        return out
    if not isinstance(tools, list):
        return [f"tools is {type(tools).__name__}, not a list"]
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or t.get("type") != "function":
            out.append(f"tools[{i}] is not a {{'type': 'function', ...}} object")
        elif wire == "chat" and not isinstance(t.get("function"), dict):
            out.append(f"tools[{i}] has no 'function' object (chat nests name/parameters in it)")
        elif wire == "responses" and "name" not in t:
            out.append(f"tools[{i}] has no top-level 'name' (the Responses API wants it flat)")
    return out


def check_chat_request(body: dict[str, Any]) -> list[str]:
    """Problems a real Chat Completions server would reject in `body`."""
    out: list[str] = []
    msgs = body.get("messages")
    if not body.get("model"):
        out.append("no model")
    if not isinstance(msgs, list) or not msgs:
        return [*out, "messages missing or empty"]
    pending: dict[str, str] = {}
    answered: set[str] = set()
    late: set[str] = set()
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            out.append(f"messages[{i}] is not an object")
            continue
        role = m.get("role")
        if role == "tool":
            cid = m.get("tool_call_id")
            if not isinstance(m.get("content"), str | list):
                out.append(f"messages[{i}]: tool result content is not text")
            if cid in pending:
                del pending[cid]
                answered.add(cid)
            elif cid in answered:
                out.append(f"messages[{i}]: second tool result for call_id {cid!r}")
            elif cid in late:
                out.append(
                    f"messages[{i}]: tool result for call_id {cid!r} does not directly follow "
                    "the assistant message that made the call"
                )
            else:
                out.append(
                    f"messages[{i}]: tool result for call_id {cid!r} answers no earlier tool call"
                )
            continue
        if role not in ("system", "developer", "user", "assistant"):
            out.append(f"messages[{i}]: unknown role {role!r}")
        if pending:
            out.append(
                f"messages[{i}] ({role}): tool call(s) {sorted(pending)} were not answered "
                "before this message"
            )
            late.update(pending)
            pending.clear()
        if role == "assistant":
            for j, tc in enumerate(m.get("tool_calls") or []):
                fn = tc.get("function") if isinstance(tc, dict) else None
                if not isinstance(tc, dict) or not tc.get("id") or not isinstance(fn, dict):
                    out.append(f"messages[{i}].tool_calls[{j}] lacks an id or a function")
                    continue
                if not isinstance(fn.get("arguments"), str):
                    out.append(f"messages[{i}].tool_calls[{j}]: arguments must be a JSON string")
                pending[tc["id"]] = str(fn.get("name"))
    if pending:
        out.append(f"tool call(s) {sorted(pending)} have no tool result")
    return out + _check_tools(body.get("tools"), "chat")


def check_responses_request(body: dict[str, Any]) -> list[str]:
    """Problems a real Responses API server would reject in `body`."""
    out: list[str] = []
    if not body.get("model"):
        out.append("no model")
    items = body.get("input")
    if isinstance(items, str):
        return out + _check_tools(body.get("tools"), "responses")
    if not isinstance(items, list) or not items:
        return [*out, "input missing or empty"]
    pending: dict[str, str] = {}
    answered: set[str] = set()
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            out.append(f"input[{i}] is not an object")
            continue
        kind = it.get("type") or ("message" if "role" in it else None)
        if kind == "function_call":
            cid = it.get("call_id")
            if not cid or not it.get("name"):
                out.append(f"input[{i}]: function_call lacks a call_id or a name")
            elif not isinstance(it.get("arguments"), str):
                out.append(f"input[{i}]: function_call arguments must be a JSON string")
            if cid:
                pending[cid] = str(it.get("name"))
        elif kind == "function_call_output":
            cid = it.get("call_id")
            if not isinstance(it.get("output"), str | list):
                out.append(f"input[{i}]: function_call_output output is not text")
            if cid in pending:
                del pending[cid]
                answered.add(cid)
            elif cid in answered:
                out.append(f"input[{i}]: second function_call_output for call_id {cid!r}")
            else:
                out.append(
                    f"input[{i}]: function_call_output for call_id {cid!r} answers no earlier "
                    "function_call"
                )
        elif kind == "message":
            if it.get("role") not in ("system", "developer", "user", "assistant"):
                out.append(f"input[{i}]: unknown role {it.get('role')!r}")
        else:
            out.append(f"input[{i}]: unknown item type {kind!r}")
    if pending:
        out.append(f"function_call(s) {sorted(pending)} have no function_call_output")
    return out + _check_tools(body.get("tools"), "responses")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def first_user_text(body: dict[str, Any]) -> str:
    """The first user message of a chat or responses request body."""
    seq = body.get("messages")
    if seq is None:
        seq = body.get("input")
        if isinstance(seq, str):
            return seq
    for m in seq if isinstance(seq, list) else []:
        if isinstance(m, dict) and m.get("role") == "user":
            return _text_of(m.get("content"))
    return ""


# -- the server -----------------------------------------------------------------------------


def _pieces(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text)


def _split(s: str, n: int) -> list[str]:
    if not s:
        return []
    size = max(1, math.ceil(len(s) / max(1, n)))
    return [s[i : i + size] for i in range(0, len(s), size)]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], fake: FakeOpenAI) -> None:
        self.fake = fake
        self.open_sockets: set[socket.socket] = set()
        self.sock_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sock_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sock_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)


class _Cut(Exception):
    """Close the connection now, without finishing the response."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # Small SSE writes would otherwise wait on Nagle + delayed ACK (~40 ms a request).
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError, _Cut):
            self.close_connection = True

    def do_GET(self) -> None:
        fake = self.server.fake
        path = self.path.split("?")[0]
        fake._record("GET", path, {k.lower(): v for k, v in self.headers.items()}, None)
        if path.removeprefix("/v1") == "/models":
            models = fake.models or [DEFAULT_MODEL]
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "workbench"} for m in models
            ]
            self.send_json(200, {"object": "list", "data": data})
        else:
            self.send_error_json(404, f"no such endpoint: GET {path}", "not_found")

    def do_POST(self) -> None:
        fake = self.server.fake
        path = self.path.split("?")[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        route = path.removeprefix("/v1")
        if route not in ("/chat/completions", "/responses"):
            fake._record("POST", path, headers, body)
            self.send_error_json(404, f"no such endpoint: POST {path}", "not_found")
            return
        if not isinstance(body, dict):
            fake._record("POST", path, headers, body)
            self.send_error_json(400, "request body is not a JSON object", "invalid_json")
            return
        fake._serve(self, route, headers, body, len(raw))

    # -- response helpers ------------------------------------------------------------------

    def send_json(self, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(
        self, status: int, message: str, code: str, extra: dict[str, str] | None = None
    ) -> None:
        kind = "invalid_request_error" if status < 500 else "server_error"
        err = {"message": message, "type": kind, "param": None, "code": code}
        self.send_json(status, {"error": err}, extra)

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def cut(self) -> None:
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Cut


class FakeOpenAI:
    def __init__(
        self,
        scripts: list[Script],
        *,
        api_key: str | None = None,  # when set, requests must carry `Bearer <api_key>`
        models: list[str] | None = None,  # when set, other model names get a 404
        host: str = "127.0.0.1",
        port: int = 0,
        refuse_streamed_tools: bool = False,
        no_responses: bool = False,
        max_streams: int | None = None,
    ) -> None:
        self.scripts = scripts
        self.api_key = api_key
        self.models = models
        self.refuse_streamed_tools = refuse_streamed_tools
        self.no_responses = no_responses
        self.max_streams = max_streams
        self.in_flight = 0  # model requests being answered now
        self.refused = 0  # streamed requests refused (refuse_streamed_tools)
        self.cuts = 0  # streams cut because max_streams were being answered
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self._lock = threading.Lock()
        self._pos: dict[int, list[int]] = {}  # script index -> [turn index, faults served]
        self._calls = 0
        self._ids = 0
        self._stopping = threading.Event()
        self._released = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://{self.host}:{self._server.server_address[1]}/v1"

    def start(self) -> str:
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers that hang or pace their output
        server.shutdown()
        server.server_close()
        with server.sock_lock:
            socks = list(server.open_sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- bookkeeping -----------------------------------------------------------------------

    def _record(
        self, method: str, path: str, headers: dict[str, str], body: Any, script: str | None = None
    ) -> int:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, headers, body, script))
            return len(self.requests)

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}_{self._ids}"

    def _pick(self, body: dict[str, Any]) -> tuple[Script | None, Turn, Fault | None]:
        """The script for `body`, its next turn, and the fault to serve instead (if any)."""
        text = first_user_text(body)
        chosen: int | None = None
        for i, s in enumerate(self.scripts):
            if s.match and s.match in text:
                chosen = i
                break
        if chosen is None:
            chosen = next((i for i, s in enumerate(self.scripts) if not s.match), None)
        if chosen is None:
            return None, Turn(text=NO_SCRIPT_TEXT), None
        script = self.scripts[chosen]
        with self._lock:
            pos = self._pos.setdefault(chosen, [0, 0])
            if pos[0] >= len(script.turns):
                return script, Turn(text=FINISHED_TEXT), None
            turn = script.turns[pos[0]]
            if turn.error is not None and pos[1] < turn.error.times:
                pos[1] += 1
                return script, turn, turn.error
            pos[0] += 1
            pos[1] = 0
            return script, turn, None

    def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stopping.is_set() and not self._released.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            self._stopping.wait(min(left, 0.05))

    def release(self) -> None:
        """End every wait (a turn's `delay_s`, a paced stream) now and from now on."""
        self._released.set()

    # -- serving ---------------------------------------------------------------------------

    def _serve(
        self, h: _Handler, route: str, headers: dict[str, str], body: dict[str, Any], size: int
    ) -> None:
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            self._record("POST", h.path, headers, body)
            h.send_error_json(
                401,
                "Incorrect API key provided. You can find your API key in your account.",
                "invalid_api_key",
            )
            return
        model = str(body.get("model") or "")
        if self.models is not None and model not in self.models:
            self._record("POST", h.path, headers, body)
            h.send_error_json(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "model_not_found",
            )
            return
        stream = bool(body.get("stream"))
        if self.no_responses and route == "/responses":
            self._record("POST", h.path, headers, body)
            h.send_error_json(404, f"no such endpoint: POST {h.path}", "not_found")
            return
        if self.refuse_streamed_tools and stream and body.get("tools"):
            self._record("POST", h.path, headers, body)
            with self._lock:
                self.refused += 1
            h.send_json(500, {"error": {"message": STREAMED_TOOLS_REFUSAL, "type": "internal_server_error",
                                        "param": None, "code": None}})
            return
        with self._lock:
            cut = stream and self.max_streams is not None and self.in_flight >= self.max_streams
            if cut:
                self.cuts += 1
            else:
                self.in_flight += 1
        if cut:  # saturated: the stream starts, then is cut before any event
            self._record("POST", h.path, headers, body)
            h.start_sse()
            h.cut()
        try:
            self._answer(h, route, headers, body, size)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _answer(
        self, h: _Handler, route: str, headers: dict[str, str], body: dict[str, Any], size: int
    ) -> None:
        script, turn, fault = self._pick(body)
        n = self._record("POST", h.path, headers, body, script.match if script else None)
        wire: Literal["chat", "responses"] = "chat" if route == "/chat/completions" else "responses"
        problems = check_chat_request(body) if wire == "chat" else check_responses_request(body)
        if problems:
            with self._lock:
                self.violations.extend(f"request {n} ({h.path}): {p}" for p in problems)
        if fault is not None and fault.kind == "status":
            extra: dict[str, str] = {}
            if fault.retry_after_ms is not None:
                extra["retry-after-ms"] = str(fault.retry_after_ms)
            if fault.retry_after_s is not None:
                extra["retry-after"] = f"{fault.retry_after_s:g}"
            code = "rate_limit_exceeded" if fault.status == 429 else f"fake_{fault.status}"
            h.send_error_json(fault.status, f"scripted fault: HTTP {fault.status}", code, extra)
            return
        self._wait(turn.delay_s)
        usage = turn.usage or (
            max(1, size // 4),
            max(1, (len(turn.text) + sum(len(c.arguments) for c in turn.tool_calls)) // 4),
        )
        calls = [(c, c.call_id or self._next_id("call")) for c in turn.tool_calls]
        stream = bool(body.get("stream"))
        model = str(body.get("model") or "")
        if wire == "chat":
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            if stream:
                head, tail = self._chat_events(model, turn, calls, usage, include_usage)
                self._stream(h, head, tail, fault, turn.chunk_delay_s, _chat_failure)
            else:
                self._plain(h, self._chat_completion(model, turn, calls, usage), fault)
        else:
            head, tail, final = self._responses_events(model, turn, calls, usage)
            if stream:
                self._stream(
                    h,
                    head,
                    tail,
                    fault,
                    turn.chunk_delay_s,
                    lambda seq: _responses_failure(seq, final),
                )
            else:
                self._plain(h, final, fault)

    def _plain(self, h: _Handler, obj: dict[str, Any], fault: Fault | None) -> None:
        if fault is None:
            h.send_json(200, obj)
        elif fault.kind == "stream_error":
            h.send_error_json(500, "scripted stream error", "server_error")
        elif fault.kind == "garbage":
            data = b'{"id": "broken", "choices": [{'
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        else:  # cut or hang: no answer at all
            if fault.kind == "hang":
                self._wait(fault.delay_s)
            h.cut()

    def _stream(
        self,
        h: _Handler,
        head: list[bytes],
        tail: list[bytes],
        fault: Fault | None,
        pace: float,
        failure: Callable[[int], bytes],
    ) -> None:
        """Send `head` (content) then `tail` (finish, usage, done), unless `fault` says not to."""
        h.start_sse()
        if fault is not None and fault.kind == "hang":
            self._wait(fault.delay_s)
            h.cut()
        if fault is not None and fault.kind in ("cut", "stream_error"):
            part = head[: max(1, (len(head) + 1) // 2)]
            for ev in part:
                h.chunk(ev)
                self._wait(pace)
            if fault.kind == "cut":
                h.cut()
            h.chunk(failure(len(part)))
            h.end_chunks()
            return
        if fault is not None and fault.kind == "garbage":
            if head:
                h.chunk(head[0])
            h.chunk(b'data: {"choices": [{"delta": {"content": "oops"\n\n')
            h.end_chunks()
            return
        for ev in head + tail:
            h.chunk(ev)
            self._wait(pace)
        h.end_chunks()

    # -- chat shapes -----------------------------------------------------------------------

    def _chat_events(
        self,
        model: str,
        turn: Turn,
        calls: list[tuple[ScriptedToolCall, str]],
        usage: tuple[int, int],
        include_usage: bool,
    ) -> tuple[list[bytes], list[bytes]]:
        cid = self._next_id("chatcmpl")
        created = int(time.time())

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **extra,
            }
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        def delta(d: dict[str, Any], finish: str | None = None) -> bytes:
            return chunk([{"index": 0, "delta": d, "logprobs": None, "finish_reason": finish}])

        head = [delta({"role": "assistant", "content": ""})]
        head += [delta({"content": p}) for p in _pieces(turn.text)]
        for i, (c, call_id) in enumerate(calls):
            head.append(
                delta(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": call_id,
                                "type": "function",
                                "function": {"name": c.name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
            head += [
                delta({"tool_calls": [{"index": i, "function": {"arguments": p}}]})
                for p in _split(c.arguments, c.chunks)
            ]
        tail = [delta({}, "tool_calls" if calls else "stop")]
        if include_usage:
            tail.append(chunk([], usage=_chat_usage(usage)))
        tail.append(b"data: [DONE]\n\n")
        return head, tail

    def _chat_completion(
        self,
        model: str,
        turn: Turn,
        calls: list[tuple[ScriptedToolCall, str]],
        usage: tuple[int, int],
    ) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": turn.text or None, "refusal": None}
        if calls:
            msg["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c, call_id in calls
            ]
        return {
            "id": self._next_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": msg,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if calls else "stop",
                }
            ],
            "usage": _chat_usage(usage),
        }

    # -- responses shapes ------------------------------------------------------------------

    def _responses_events(
        self,
        model: str,
        turn: Turn,
        calls: list[tuple[ScriptedToolCall, str]],
        usage: tuple[int, int],
    ) -> tuple[list[bytes], list[bytes], dict[str, Any]]:
        rid = self._next_id("resp")
        seq = 0

        def sse(kind: str, **data: Any) -> bytes:
            nonlocal seq
            obj = {"type": kind, "sequence_number": seq, **data}
            seq += 1
            return f"event: {kind}\ndata: {json.dumps(obj)}\n\n".encode()

        def response(status: str, output: list[dict[str, Any]], with_usage: bool) -> dict[str, Any]:
            return {
                "id": rid,
                "object": "response",
                "created_at": int(time.time()),
                "status": status,
                "model": model,
                "output": output,
                "error": None,
                "incomplete_details": None,
                "instructions": None,
                "metadata": {},
                "parallel_tool_calls": True,
                "temperature": None,
                "top_p": None,
                "tool_choice": "auto",
                "tools": [],
                "usage": _responses_usage(usage) if with_usage else None,
            }

        head = [sse("response.created", response=response("in_progress", [], False))]
        output: list[dict[str, Any]] = []
        if turn.text:
            mid = self._next_id("msg")
            idx = len(output)
            item = {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            head.append(sse("response.output_item.added", output_index=idx, item=item))
            part = {"type": "output_text", "text": "", "annotations": []}
            head.append(
                sse(
                    "response.content_part.added",
                    item_id=mid,
                    output_index=idx,
                    content_index=0,
                    part=part,
                )
            )
            head += [
                sse(
                    "response.output_text.delta",
                    item_id=mid,
                    output_index=idx,
                    content_index=0,
                    delta=p,
                    logprobs=[],
                )
                for p in _pieces(turn.text)
            ]
            done_part = {"type": "output_text", "text": turn.text, "annotations": []}
            head.append(
                sse(
                    "response.output_text.done",
                    item_id=mid,
                    output_index=idx,
                    content_index=0,
                    text=turn.text,
                    logprobs=[],
                )
            )
            head.append(
                sse(
                    "response.content_part.done",
                    item_id=mid,
                    output_index=idx,
                    content_index=0,
                    part=done_part,
                )
            )
            done_item = {**item, "status": "completed", "content": [done_part]}
            head.append(sse("response.output_item.done", output_index=idx, item=done_item))
            output.append(done_item)
        for c, call_id in calls:
            fid = self._next_id("fc")
            idx = len(output)
            item = {
                "id": fid,
                "type": "function_call",
                "call_id": call_id,
                "name": c.name,
                "arguments": "",
                "status": "in_progress",
            }
            head.append(sse("response.output_item.added", output_index=idx, item=item))
            head += [
                sse(
                    "response.function_call_arguments.delta", item_id=fid, output_index=idx, delta=p
                )
                for p in _split(c.arguments, c.chunks)
            ]
            head.append(
                sse(
                    "response.function_call_arguments.done",
                    item_id=fid,
                    output_index=idx,
                    arguments=c.arguments,
                )
            )
            done_item = {**item, "arguments": c.arguments, "status": "completed"}
            head.append(sse("response.output_item.done", output_index=idx, item=done_item))
            output.append(done_item)
        final = response("completed", output, True)
        tail = [sse("response.completed", response=final)]
        return head, tail, final


def _chat_failure(seq: int) -> bytes:
    err = {"message": "scripted stream error", "type": "server_error", "code": "server_error"}
    return b"data: " + json.dumps({"error": err}).encode() + b"\n\n"


def _responses_failure(seq: int, final: dict[str, Any]) -> bytes:
    err = {"code": "server_error", "message": "scripted stream error"}
    resp = {**final, "status": "failed", "error": err, "output": [], "usage": None}
    data = json.dumps({"type": "response.failed", "sequence_number": seq, "response": resp})
    return f"event: response.failed\ndata: {data}\n\n".encode()


def _chat_usage(usage: tuple[int, int]) -> dict[str, Any]:
    i, o = usage
    return {
        "prompt_tokens": i,
        "completion_tokens": o,
        "total_tokens": i + o,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def _responses_usage(usage: tuple[int, int]) -> dict[str, Any]:
    i, o = usage
    return {
        "input_tokens": i,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": o,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": i + o,
    }


# -- script files ---------------------------------------------------------------------------


def _get(
    d: dict[str, Any], key: str, kinds: type | tuple[type, ...], where: str, default: Any
) -> Any:
    if key not in d or d[key] is None:
        return default
    v = d[key]
    if isinstance(v, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise ConfigError(f"{where}.{key}: expected {_kind_name(kinds)}, got {v!r}")
    if not isinstance(v, kinds):
        raise ConfigError(f"{where}.{key}: expected {_kind_name(kinds)}, got {v!r}")
    return v


def _kind_name(kinds: type | tuple[type, ...]) -> str:
    ks = kinds if isinstance(kinds, tuple) else (kinds,)
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    return " or ".join(names.get(k, k.__name__) for k in ks)


def _only(d: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected an object, got {d!r:.80}")
    extra = sorted(set(d) - allowed)
    if extra:
        allowed_list = ", ".join(sorted(allowed))
        raise ConfigError(f"{where}: unknown key {extra[0]!r} (allowed: {allowed_list})")
    return d


def _parse_turn(d: Any, where: str) -> Turn:
    d = _only(d, {"text", "tool_calls", "usage", "error", "delay_s", "chunk_delay_s"}, where)
    calls: list[ScriptedToolCall] = []
    for j, c in enumerate(_get(d, "tool_calls", list, where, [])):
        cw = f"{where}.tool_calls[{j}]"
        c = _only(c, {"name", "arguments", "call_id", "chunks"}, cw)
        name = _get(c, "name", str, cw, None)
        if not name:
            raise ConfigError(f'{cw}: missing "name"')
        args = c.get("arguments", "{}")
        if not isinstance(args, str):
            args = json.dumps(args)  # an object in the file is sent as its JSON text
        chunks = _get(c, "chunks", int, cw, 3)
        if chunks < 1:
            raise ConfigError(f"{cw}.chunks: must be at least 1")
        calls.append(ScriptedToolCall(name, args, _get(c, "call_id", str, cw, None), chunks))
    usage_raw = _get(d, "usage", list, where, None)
    usage: tuple[int, int] | None = None
    if usage_raw is not None:
        if len(usage_raw) != 2 or not all(isinstance(x, int) and x >= 0 for x in usage_raw):
            raise ConfigError(
                f"{where}.usage: expected [input_tokens, output_tokens], got {usage_raw!r}"
            )
        usage = (usage_raw[0], usage_raw[1])
    fault: Fault | None = None
    if d.get("error") is not None:
        fw = f"{where}.error"
        keys = {"kind", "status", "retry_after_ms", "retry_after_s", "times", "delay_s"}
        e = _only(d["error"], keys, fw)
        kind = e.get("kind")
        if kind not in ("status", "cut", "garbage", "hang", "stream_error"):
            raise ConfigError(
                f"{fw}.kind: expected status, cut, garbage, hang or stream_error, got {kind!r}"
            )
        fault = Fault(
            kind=kind,
            status=_get(e, "status", int, fw, 500),
            retry_after_ms=_get(e, "retry_after_ms", int, fw, None),
            times=_get(e, "times", int, fw, 1),
            retry_after_s=_get(e, "retry_after_s", (int, float), fw, None),
            delay_s=float(_get(e, "delay_s", (int, float), fw, 30.0)),
        )
    return Turn(
        text=_get(d, "text", str, where, ""),
        tool_calls=calls,
        usage=usage,
        error=fault,
        delay_s=float(_get(d, "delay_s", (int, float), where, 0)),
        chunk_delay_s=float(_get(d, "chunk_delay_s", (int, float), where, 0)),
    )


def parse_scripts(data: Any, where: str = "script") -> list[Script]:
    """Scripts from JSON data: `{"scripts": [...]}` or a bare list of scripts."""
    if isinstance(data, dict):
        data = _only(data, {"scripts"}, where).get("scripts")
        where = f"{where}: scripts"
    if not isinstance(data, list):
        raise ConfigError(f"{where}: expected a list of scripts")
    out: list[Script] = []
    for i, s in enumerate(data):
        sw = f"{where}[{i}]"
        s = _only(s, {"match", "turns"}, sw)
        turns = _get(s, "turns", list, sw, [])
        out.append(
            Script(
                match=_get(s, "match", str, sw, ""),
                turns=[_parse_turn(t, f"{sw}.turns[{j}]") for j, t in enumerate(turns)],
            )
        )
    return out


def load_script_file(path: str | Path) -> list[Script]:
    """Scripts from a JSON file; a bad file raises ConfigError naming the file and the key."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read script file ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: script file is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}:{e.lineno}: invalid JSON: {e.msg}") from None
    return parse_scripts(data, str(p))


# -- command line ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m workbench.fakes.model_server",
        description="Serve scripted OpenAI-compatible responses until killed.",
    )
    ap.add_argument("--script", type=Path, help="JSON script file (default: no scripts)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--api-key", default=None, help="require this bearer key")
    ap.add_argument("--refuse-streamed-tools", action="store_true",
                    help="answer streamed requests with tools as llama-cpp-python does (HTTP 500)")
    ap.add_argument("--no-responses", action="store_true", help="serve no Responses API (404)")
    ap.add_argument("--max-streams", type=int, default=None,
                    help="cut a stream that arrives while this many requests are answered")
    args = ap.parse_args(argv)
    try:
        scripts = load_script_file(args.script) if args.script else []
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    fake = FakeOpenAI(
        scripts, api_key=args.api_key, host=args.host, port=args.port,
        refuse_streamed_tools=args.refuse_streamed_tools, no_responses=args.no_responses,
        max_streams=args.max_streams,
    )
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    # Before the address is printed: whoever reads it may stop the server at once.
    handler = cast(Callable[[int, FrameType | None], None], on_signal)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    try:
        url = fake.start()
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    print(url, flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
