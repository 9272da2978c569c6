"""A bridge from a sandbox's loopback to the ports of the host's loopback the user listed.

A session with network has its own network namespace behind slirp4netns, which runs with
host loopback disabled (turning it on would open every port of the host's 127.0.0.1 at
10.0.2.2). For each port in `[sandbox] host_ports` (a model server on the host, say),
the network helper makes a socket listening on 127.0.0.1:PORT *inside* the sandbox's
namespace, from a short-lived child that joins it, and a relay outside the sandbox accepts
on it and connects each connection to 127.0.0.1:PORT on the host. Nothing runs inside the
sandbox, and no other host port becomes reachable. docs/security.md, "Network".
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import socket
import threading
from collections.abc import Sequence

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PORTS_ENV = "WORKBENCH_HOST_PORTS"  # how bwrap_argv hands the ports to the network helper


def parse_ports(text: str) -> list[int]:
    """`"11434,8080"` -> [11434, 8080]; anything that is not a port is dropped."""
    out: list[int] = []
    for part in text.split(","):
        if part.strip().isdigit() and 0 < int(part) < 65536 and int(part) not in out:
            out.append(int(part))
    return out


def _setns(fd: int, nstype: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def listen_inside(userfd: int, netfd: int, port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:`port` in the network namespace `netfd`.

    Joining a namespace cannot be undone, so a forked child joins (the owning user
    namespace first, which gives it the right to join the network one), listens there and
    sends the socket back; the socket stays in that namespace wherever it is used."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ours.close()
            own = os.stat("/proc/self/ns/user")
            target = os.fstat(userfd)
            if (own.st_dev, own.st_ino) != (target.st_dev, target.st_ino):  # not when run as root
                _setns(userfd, CLONE_NEWUSER)
            _setns(netfd, CLONE_NEWNET)
            lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lst.bind(("127.0.0.1", port))
            lst.listen(64)
            socket.send_fds(theirs, [b"ok"], [lst.fileno()])
            code = 0
        except BaseException as e:  # the child must never return into the caller's code
            with contextlib.suppress(OSError):
                theirs.sendall(f"error {e}".encode()[:300])
        os._exit(code)
    theirs.close()
    try:
        msg, fds, _flags, _addr = socket.recv_fds(ours, 300, 1)
    finally:
        ours.close()
        os.waitpid(pid, 0)
    if msg != b"ok" or not fds:
        raise OSError(f"cannot listen on 127.0.0.1:{port} in the sandbox: {msg.decode(errors='replace')}")
    return socket.socket(fileno=fds[0])


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _bridge(conn: socket.socket, port: int) -> None:
    try:
        up = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        conn.close()  # nothing listens on the host: the sandbox sees the connection close
        return
    up.settimeout(None)
    back = threading.Thread(target=_pump, args=(up, conn), daemon=True)
    back.start()
    _pump(conn, up)
    back.join()
    conn.close()
    up.close()


def serve(listeners: Sequence[tuple[socket.socket, int]], stop_fd: int) -> None:
    """Relay each connection to the host's 127.0.0.1:port until `stop_fd` reaches EOF
    (the sandbox exited)."""
    by_fd = {lst.fileno(): (lst, port) for lst, port in listeners}
    while True:
        ready, _, _ = select.select([stop_fd, *by_fd], [], [])
        if stop_fd in ready:
            try:
                if not os.read(stop_fd, 1):
                    return
            except OSError:
                return
        for fd in ready:
            if fd in by_fd:
                lst, port = by_fd[fd]
                with contextlib.suppress(OSError):
                    conn, _ = lst.accept()
                    threading.Thread(target=_bridge, args=(conn, port), daemon=True).start()


def start_relay(userfd: int, netfd: int, ports: Sequence[int], stop_fd: int) -> list[str]:
    """Listen on each port inside the sandbox and fork the relay. Returns the errors."""
    listeners: list[tuple[socket.socket, int]] = []
    errors: list[str] = []
    for port in ports:
        try:
            listeners.append((listen_inside(userfd, netfd, port), port))
        except OSError as e:
            errors.append(str(e))
    if listeners and os.fork() == 0:
        code = 0
        try:
            os.setsid()
            # Hold nothing of the helper's: not the terminal (its EOF tells the daemon the
            # session ended), not the sandbox's go-ahead pipe.
            keep = {stop_fd, *(lst.fileno() for lst, _ in listeners)}
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            for name in os.listdir("/proc/self/fd"):
                if int(name) > 2 and int(name) not in keep:
                    with contextlib.suppress(OSError):
                        os.close(int(name))
            serve(listeners, stop_fd)
        except BaseException:
            code = 1
        os._exit(code)
    for lst, _port in listeners:
        lst.close()
    return errors
