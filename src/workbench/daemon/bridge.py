"""`workbench daemon connect`: stdin/stdout bridged to this user's daemon socket (started if
it is not running), so `ssh HOST workbench daemon connect` is a stream that speaks the
daemon's protocol (docs/remote.md).

The bridge copies bytes and reads nothing of them: the hello, its version check and every
request are the daemon's business. Each direction moves at most one 64 KiB buffer at a time
and blocks while the other side does not read, so a slow link holds the daemon's writes
back, where its frames are merged (latest screen wins) instead of queued here.
"""

from __future__ import annotations

import _socket
import contextlib
import os
import sys
import threading

from workbench.daemon.client import _connect_raw, start_daemon
from workbench.errors import DaemonError

CHUNK = 1 << 16


def _pump_in(sock: _socket.socket, fd: int) -> None:
    """stdin -> socket; at stdin's end, half-close so the daemon sees the client leave."""
    try:
        while data := os.read(fd, CHUNK):
            sock.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sock.shutdown(_socket.SHUT_WR)


def _pump_out(sock: _socket.socket, fd: int) -> None:
    """socket -> stdout until the daemon closes (or stdout's reader is gone)."""
    try:
        while data := sock.recv(CHUNK):
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
    except OSError:
        pass


def connect() -> _socket.socket:
    try:
        sock = _connect_raw()
    except OSError:
        start_daemon()
        try:
            sock = _connect_raw()
        except OSError as e:
            raise DaemonError(f"cannot reach the daemon: {e}") from None
    sock.settimeout(None)
    return sock


def run_bridge() -> int:
    sock = connect()
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    threading.Thread(target=_pump_in, args=(sock, stdin), name="bridge-in", daemon=True).start()
    _pump_out(sock, stdout)
    sock.close()
    return 0
