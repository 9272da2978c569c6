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

This module picks each request's turn and keeps the books; `model_script` holds the
scripts, `model_checks` the request checks, `model_http` the HTTP plumbing, `wire_chat` and
`wire_responses` each wire's reply shapes, `wire_delivery` what passes between the server
and a wire, and sending a reply with the turn's fault.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, cast

from workbench.errors import ConfigError
from workbench.fakes.model_checks import check_chat_request, check_responses_request, first_user_text
from workbench.fakes.model_http import ModelHTTPServer, ModelRequestHandler
from workbench.fakes.model_script import Fault, Script, ScriptedToolCall, Turn, load_script_file, parse_scripts
from workbench.fakes.wire_chat import chat_reply
from workbench.fakes.wire_delivery import TurnToSend, send_reply, send_status_fault
from workbench.fakes.wire_responses import responses_reply

# What tests, benchmarks and the demo import from here (the script types are model_script's).
__all__ = [
    "FINISHED_TEXT",
    "NO_SCRIPT_TEXT",
    "STREAMED_TOOLS_REFUSAL",
    "FakeOpenAI",
    "Fault",
    "RecordedRequest",
    "Script",
    "ScriptedToolCall",
    "Turn",
    "load_script_file",
    "main",
    "parse_scripts",
]

FINISHED_TEXT = "(script finished)"
NO_SCRIPT_TEXT = "(no script matches this request)"
# What llama-cpp-python's server says (HTTP 500) to a streamed request with tools.
STREAMED_TOOLS_REFUSAL = "Automatic streaming tool choice is not supported"


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None
    script: str | None = None  # `match` of the script that answered


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
        self._ids = 0
        self._stopping = threading.Event()
        self._released = threading.Event()
        self._server: ModelHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://{self.host}:{self._server.server_address[1]}/v1"

    def start(self) -> str:
        self._stopping.clear()
        self._server = ModelHTTPServer((self.host, self.port), self)
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
        server.cut_open_sockets()
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
        self, h: ModelRequestHandler, route: str, headers: dict[str, str], body: dict[str, Any], size: int
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
        self, h: ModelRequestHandler, route: str, headers: dict[str, str], body: dict[str, Any], size: int
    ) -> None:
        script, turn, fault = self._pick(body)
        n = self._record("POST", h.path, headers, body, script.match if script else None)
        chat = route == "/chat/completions"
        problems = check_chat_request(body) if chat else check_responses_request(body)
        if problems:
            with self._lock:
                self.violations.extend(f"request {n} ({h.path}): {p}" for p in problems)
        if fault is not None and fault.kind == "status":
            send_status_fault(h, fault)
            return
        self._wait(turn.delay_s)
        usage = turn.usage or (
            max(1, size // 4),
            max(1, (len(turn.text) + sum(len(c.arguments) for c in turn.tool_calls)) // 4),
        )
        calls = [(c, c.call_id or self._next_id("call")) for c in turn.tool_calls]
        build = chat_reply if chat else responses_reply
        reply = build(TurnToSend(body, turn, calls, usage, self._next_id))
        send_reply(h, reply, fault, turn.chunk_delay_s, self._wait)


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
