"""The blocking client of the daemon, for the CLI (the UI's asyncio one is `async_client.py`).

Any client starts the daemon when it is not running, like a tmux server.

Cheap to import: the CLI's fast path runs on it, so nothing here loads typing, asyncio,
subprocess or the protocol's TypedDict modules at import (about 15 ms of a 20 ms start),
nor the `socket` module (its enums cost 5 ms of CPU; `_socket` underneath is all we use).
"""

from __future__ import annotations

import _socket
import itertools
import os
import sys
import time

from workbench import paths
from workbench.daemon.protocol import MAX_LINE, decode, encode, hello, request
from workbench.errors import DaemonError, DaemonNotRunning, WorkbenchError, from_wire

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from workbench.protocol.method import Method

    P = TypeVar("P")
    R = TypeVar("R")

# Generous: on a loaded 2-core machine the daemon's start (imports, store, sandbox probe)
# has been seen to take over 10 s; the wait ends as soon as the socket answers.
START_TIMEOUT = 30.0


def _connect_raw(timeout: float = 5.0) -> _socket.socket:
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
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
    import subprocess
    import threading

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
    """Blocking JSON-lines client. Pushed events received while waiting are kept in `events`.

    With `pipeline`, the hello goes out with the first request and its answer is read then
    (a handshake error surfaces there): a one-shot CLI call saves a round trip.
    """

    def __init__(self, name: str = "cli", autostart: bool = True, timeout: float | None = 300,
                 pipeline: bool = False) -> None:
        try:
            self.sock = _connect_raw()
        except OSError:
            if not autostart:
                raise DaemonNotRunning(
                    "the daemon is not running", hint="any workbench command starts it"
                ) from None
            start_daemon()
            self.sock = _connect_raw()
        self.sock.settimeout(timeout)
        self._buf = b""
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.sock.sendall(encode(hello(name)))
        self._info: dict[str, Any] | None = None
        if not pipeline:
            self._info = self._reply(0)

    @property
    def info(self) -> dict[str, Any]:
        """The daemon's answer to hello: protocol, version, pid."""
        if self._info is None:
            self._info = self._reply(0)
        return self._info

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
        result: R = self._send(spec.name, params)
        return result

    def call(self, method: str, **params: Any) -> Any:
        """Untyped: for tests that send what the protocol refuses, and for scripts."""
        return self._send(method, params)

    def _send(self, method: str, params: object) -> Any:
        req_id = next(self._ids)
        try:
            self.sock.sendall(encode(request(req_id, method, params)))
        except OSError as e:
            if self._info is None:  # it may have refused the hello and hung up: say why
                self._info = self._reply(0)
            raise DaemonError(f"lost the connection to the daemon: {e}") from None
        if self._info is None:
            self._info = self._reply(0)
        return self._reply(req_id)

    def next_event(self, timeout: float | None = None) -> dict[str, Any] | None:
        if self.events:
            return self.events.pop(0)
        if self._info is None:
            self._info = self._reply(0)
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
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop_daemon(timeout: float = 10.0) -> bool:
    """Ask the daemon to stop and wait for it to exit; True if one was running."""
    from workbench.protocol import session as ps

    try:
        c = Client(autostart=False, timeout=5)
    except (DaemonError, OSError):
        return False
    pid = int(c.info.get("pid", 0))
    try:
        c.request(ps.SHUTDOWN, ps.NoParams())
    except WorkbenchError:
        pass
    c.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return True
