"""The fake model server's HTTP side: the listening server and the per-request handler.

The handler routes `GET /v1/models` itself and hands `POST /v1/chat/completions` and
`POST /v1/responses` to the `Backend` (`FakeOpenAI`); it also gives the backend the ways to
answer: JSON, an SSE stream in chunked encoding, or a cut connection. The server tracks its
open sockets so that stopping it can cut a request that hangs or streams slowly.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

DEFAULT_MODEL = "fake-model"


class Backend(Protocol):
    """What the handler asks of `FakeOpenAI`: its model names, the request log, the answer."""

    models: list[str] | None

    def _record(
        self, method: str, path: str, headers: dict[str, str], body: Any, script: str | None = None
    ) -> int: ...

    def _serve(
        self, h: ModelRequestHandler, route: str, headers: dict[str, str], body: dict[str, Any], size: int
    ) -> None: ...


class ModelHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], fake: Backend) -> None:
        self.fake = fake
        self.open_sockets: set[socket.socket] = set()
        self.sock_lock = threading.Lock()
        super().__init__(addr, ModelRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sock_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sock_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def cut_open_sockets(self) -> None:
        """Shut every connection still open, so its handler thread ends."""
        with self.sock_lock:
            socks = list(self.open_sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ConnectionCut(Exception):
    """Close the connection now, without finishing the response."""


class ModelRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    server: ModelHTTPServer

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
        except (BrokenPipeError, ConnectionResetError, ConnectionCut):
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
        raise ConnectionCut
