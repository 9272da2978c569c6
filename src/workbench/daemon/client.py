"""Clients of the daemon: a blocking one for the CLI, an asyncio one for the UI.

Any client starts the daemon when it is not running, like a tmux server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

from workbench import paths
from workbench.daemon.protocol import MAX_LINE, PROTOCOL_VERSION, decode, encode, hello, request
from workbench.errors import DaemonError, WorkbenchError, from_wire
from workbench.protocol import session as ps
from workbench.protocol.method import Method

P = TypeVar("P")
R = TypeVar("R")

START_TIMEOUT = 10.0


def _connect_raw(timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        with paths.socket_address() as addr:
            s.connect(addr)
    except OSError:
        s.close()
        raise
    return s


def daemon_running() -> bool:
    try:
        _connect_raw(1.0).close()
        return True
    except OSError:
        return False


def start_daemon(wait: float = START_TIMEOUT) -> None:
    """Start a detached daemon and wait until its socket accepts connections."""
    paths.ensure_private_dir(paths.runtime_dir())
    paths.state_dir().mkdir(parents=True, exist_ok=True)
    log = open(paths.state_dir() / "daemon.out", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workbench", "daemon", "run"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        log.close()
    # A long-lived client (the UI) would otherwise keep a zombie if the daemon dies.
    threading.Thread(target=proc.wait, name="reap-daemon", daemon=True).start()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if daemon_running():
            return
        code = proc.poll()
        if code is not None and code != 3:  # 3: another daemon won the race; keep waiting
            raise DaemonError(
                f"the daemon failed to start (exit {code}): {_last_error_line()}; see {paths.log_file()} "
                f"and {paths.state_dir() / 'daemon.out'}"
            )
        time.sleep(0.02)
    raise DaemonError(f"the daemon did not come up within {wait:.0f} s; see {paths.log_file()}")


def _last_error_line() -> str:
    """The most telling line the failed daemon left, so the user need not open the log."""
    for f in (paths.state_dir() / "daemon.out", paths.log_file()):
        try:
            lines = [ln.strip() for ln in f.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            continue
        for ln in reversed(lines[-50:]):
            if "Error" in ln or "error:" in ln:
                return ln[-300:]
    return "no error message recorded"


class Client:
    """Blocking JSON-lines client. Pushed events received while waiting are kept in `events`."""

    def __init__(self, name: str = "cli", autostart: bool = True, timeout: float | None = 300) -> None:
        try:
            self.sock = _connect_raw()
        except OSError:
            if not autostart:
                raise DaemonError(
                    "the daemon is not running", hint="any workbench command starts it"
                ) from None
            start_daemon()
            self.sock = _connect_raw()
        self.sock.settimeout(timeout)
        self._buf = b""
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.sock.sendall(encode(hello(name)))
        self.info = self._reply(0)

    def _readline(self) -> bytes:
        end = self._buf.find(b"\n")
        if end < 0:
            # A reply of megabytes comes in many chunks: join them once, and look for the
            # newline in each new chunk only.
            parts = [self._buf]
            size = len(self._buf)
            while end < 0:
                try:
                    chunk = self.sock.recv(1 << 18)
                except TimeoutError:
                    raise DaemonError("the daemon did not answer in time") from None
                except OSError as e:
                    raise DaemonError(f"lost the connection to the daemon: {e}") from None
                if not chunk:
                    raise DaemonError("the daemon closed the connection", hint=f"see {paths.log_file()}")
                nl = chunk.find(b"\n")
                if nl >= 0:
                    end = size + nl
                parts.append(chunk)
                size += len(chunk)
                if end < 0 and size > MAX_LINE * 2:
                    raise DaemonError("reply too large")
            self._buf = b"".join(parts)
        line, self._buf = self._buf[:end], self._buf[end + 1:]
        return line

    def _reply(self, req_id: int) -> Any:
        while True:
            msg = decode(self._readline())
            if "event" in msg:
                self.events.append(msg)
                continue
            if msg.get("id") not in (req_id, None):
                continue
            if "error" in msg:
                err = msg["error"]
                raise from_wire(str(err.get("code")), str(err.get("message")))
            return msg.get("result")

    def request(self, spec: Method[P, R], params: P) -> R:
        """Call a declared method: `params` and the result are typed by `spec`."""
        result: R = self._send(spec.name, cast("dict[str, Any]", params))
        return result

    def call(self, method: str, **params: Any) -> Any:
        """Untyped: for tests that send what the protocol refuses, and for scripts."""
        return self._send(method, params)

    def _send(self, method: str, params: dict[str, Any]) -> Any:
        req_id = next(self._ids)
        self.sock.sendall(encode(request(req_id, method, params)))
        return self._reply(req_id)

    def next_event(self, timeout: float | None = None) -> dict[str, Any] | None:
        if self.events:
            return self.events.pop(0)
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            return decode(self._readline())
        except DaemonError:
            if timeout is not None:
                return None
            raise
        finally:
            self.sock.settimeout(old)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop_daemon(timeout: float = 10.0) -> bool:
    """Ask the daemon to stop and wait for it to exit; True if one was running."""
    try:
        c = Client(autostart=False, timeout=5)
    except (DaemonError, OSError):
        return False
    pid = int(c.info.get("pid", 0))
    with contextlib.suppress(WorkbenchError):
        c.request(ps.SHUTDOWN, ps.NoParams())
    c.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return True


class AsyncClient:
    """asyncio client for the UI: requests return futures; pushed events go to `on_event`."""

    def __init__(self, name: str = "ui", on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.name = name
        self.on_event = on_event or (lambda e: None)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._task: asyncio.Task[None] | None = None
        self.info: dict[str, Any] = {}
        self.connected = asyncio.Event()
        self.closed_reason = ""

    async def connect(self, autostart: bool = True) -> None:
        try:
            with paths.socket_address() as addr:
                self._reader, self._writer = await asyncio.open_unix_connection(addr, limit=MAX_LINE + 1)
        except OSError:
            if not autostart:
                raise DaemonError("the daemon is not running") from None
            await asyncio.to_thread(start_daemon)
            with paths.socket_address() as addr:
                self._reader, self._writer = await asyncio.open_unix_connection(addr, limit=MAX_LINE + 1)
        self._writer.write(encode(hello(self.name)))
        await self._writer.drain()
        line = await self._reader.readline()
        msg = decode(line)
        if "error" in msg:
            raise from_wire(msg["error"].get("code", "daemon"), msg["error"].get("message", ""))
        self.info = msg.get("result") or {}
        if self.info.get("protocol") != PROTOCOL_VERSION:
            raise DaemonError("protocol mismatch with the daemon")
        self._task = asyncio.get_running_loop().create_task(self._read_loop())
        self.connected.set()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                try:
                    msg = decode(line)
                except WorkbenchError:
                    continue
                if "event" in msg:
                    self.on_event(msg)
                    continue
                fut = self._pending.pop(msg.get("id", -1), None)
                if fut is None or fut.done():
                    continue
                if "error" in msg:
                    err = msg["error"]
                    fut.set_exception(from_wire(str(err.get("code")), str(err.get("message"))))
                else:
                    fut.set_result(msg.get("result"))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
            self.closed_reason = str(e)
        finally:
            self.connected.clear()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(DaemonError("lost the connection to the daemon"))
            self._pending.clear()
            self.on_event({"event": "disconnected", "data": {"reason": self.closed_reason}})

    async def request(self, spec: Method[P, R], params: P) -> R:
        """Call a declared method: `params` and the result are typed by `spec`."""
        result: R = await self._send(spec.name, cast("dict[str, Any]", params))
        return result

    async def call(self, method: str, **params: Any) -> Any:
        """Untyped: for tests that send what the protocol refuses."""
        return await self._send(method, params)

    async def _send(self, method: str, params: dict[str, Any]) -> Any:
        if self._writer is None or not self.connected.is_set():
            raise DaemonError("not connected to the daemon")
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        self._writer.write(encode(request(req_id, method, params)))
        await self._writer.drain()
        return await fut

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def events(self) -> AsyncIterator[dict[str, Any]]:  # pragma: no cover - convenience
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.on_event = queue.put_nowait
        while True:
            yield await queue.get()


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True)
