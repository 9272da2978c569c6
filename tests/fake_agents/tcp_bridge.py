"""Run a command with 127.0.0.1:PORT forwarded to a Unix socket, then exec the command.

    tcp_bridge.py UNIX_SOCKET PORT -- COMMAND...

A sandbox has its own network namespace, so a server on the host's loopback is out of
reach; a Unix socket bound into the sandbox is not. The forwarder is a child that dies
with the command (PR_SET_PDEATHSIG). Stdlib only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import threading


def pump(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(listener: socket.socket, target: str) -> None:
    while True:
        conn, _ = listener.accept()
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        up.connect(target)
        threading.Thread(target=pump, args=(conn, up), daemon=True).start()
        threading.Thread(target=pump, args=(up, conn), daemon=True).start()


def main() -> None:
    target, port, sep, *cmd = sys.argv[1:]
    assert sep == "--" and cmd, __doc__
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(port)))
    listener.listen(16)
    if os.fork() == 0:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        os.setsid()
        serve(listener, target)
        os._exit(0)
    listener.close()
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
