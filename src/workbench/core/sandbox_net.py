"""Network for a sandbox: slirp4netns attached to bwrap's fresh network namespace.

`bwrap_argv.wrap` runs `python -m workbench.core.sandbox_net net-launch ...` for a session
with network; that process becomes bwrap, and a detached helper attaches slirp4netns
(without host loopback) before the command is let through. docs/security.md, "Network".
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence

from workbench.core import sandbox_loopback

# slirp4netns defaults: the interface it creates in the namespace, and its DNS forwarder.
SLIRP_TAP = "tap0"
SLIRP_DNS = "10.0.2.3"
NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1), linux/nsfs.h


def network_problem() -> tuple[str, str] | None:
    """Why a session with network cannot start here (reason, fix), or None."""
    if not shutil.which("slirp4netns"):
        return ("slirp4netns is not installed",
                "apt install slirp4netns (or dnf install slirp4netns)")
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        return ("/dev/net/tun is not usable by this user (slirp4netns needs it)",
                "sudo chmod 0666 /dev/net/tun (udev sets this mode on standard systems)")
    return None


# Runs inside the sandbox before the command: says "set up" (bwrap has configured lo by
# then), waits for "network ready", closes both fds and becomes the command.
# `read` fails on EOF without a full line, so a helper that dies never lets it through.
_NET_WAITER = (
    'printf x >&{ready}; exec {ready}>&-; read -r _ <&{go} || exit 111; exec {go}<&-; exec "$@"'
)


def net_launch(slirp: str, n_opts: int, bwrap_argv: list[str]) -> int:
    """Exec bwrap in a fresh netns served by slirp4netns without host loopback.

    `bwrap_argv` is bwrap, `n_opts` options, "--" and the command. This process becomes
    bwrap (keeping its pid, terminal and exit status for the caller). A detached helper
    waits until the sandbox is set up (bwrap configures lo first; slirp4netns racing it
    makes bwrap fail), attaches slirp4netns and only then lets the command start.
    """
    info_r, info_w = os.pipe()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    exit_r, exit_w = os.pipe()
    bwrap_pid = os.getpid()
    host_ports = sandbox_loopback.parse_ports(os.environ.pop(sandbox_loopback.PORTS_ENV, ""))
    helper = os.fork()
    if helper == 0:
        code = 1
        try:
            if os.fork() != 0:
                os._exit(0)
            for fd in (info_w, ready_w, go_r, exit_w):
                os.close(fd)
            code = attach_network(slirp, bwrap_pid, info_r, ready_r, go_w, exit_r, host_ports)
        except BaseException as e:  # the helper must never return into the caller's code
            sys.stderr.write(f"workbench: network setup failed: {e}\r\n")
            code = 1
        if code != 0:
            with contextlib.suppress(OSError):
                os.kill(bwrap_pid, 9)
        os._exit(code)
    os.waitpid(helper, 0)
    for fd in (info_r, ready_r, go_w, exit_r):
        os.close(fd)
    for fd in (info_w, ready_w, go_r, exit_w):
        os.set_inheritable(fd, True)
    opts = bwrap_argv[1 : 1 + n_opts]
    command = bwrap_argv[2 + n_opts :]
    waiter = _NET_WAITER.format(ready=ready_w, go=go_r)
    argv = [bwrap_argv[0], "--info-fd", str(info_w), *opts, "--",
            "/bin/sh", "-c", waiter, "sh", *command]
    os.execv(argv[0], argv)
    return 127  # not reached


def read_until_json(fd: int, timeout: float) -> bytes:
    """Read `fd` until the bytes so far are one JSON value, or EOF (bwrap's --info-fd)."""
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("bwrap did not report its child pid")
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return buf
        buf += chunk
        with contextlib.suppress(ValueError):
            json.loads(buf)
            return buf


def attach_network(
    slirp: str, bwrap_pid: int, info_r: int, ready_r: int, go_w: int, exit_r: int,
    host_ports: Sequence[int] = (),
) -> int:
    """The helper's work: once the sandbox is set up, attach slirp4netns (and the bridge to
    `host_ports` on the host's loopback, sandbox_loopback.py), then say "go".

    Reads bwrap's child pid from `info_r` and "set up" from `ready_r`; `exit_r` closing
    stops slirp4netns. Returns 0 when the command may start; on failure the sandbox is killed.
    """
    info = json.loads(read_until_json(info_r, 20))
    child = int(info["child-pid"])
    r, _, _ = select.select([ready_r], [], [], 20)
    if not r or os.read(ready_r, 1) != b"x":
        raise RuntimeError("the sandbox did not start")
    # slirp4netns must join the user namespace that *owns* the network namespace. With
    # --disable-userns the command runs in a nested one, so /proc/PID/ns/user would
    # name the wrong one: ask the kernel for the owner instead.
    netfd = os.open(f"/proc/{child}/ns/net", os.O_RDONLY)
    userfd = fcntl.ioctl(netfd, NS_GET_USERNS)
    slirp_ready_r, slirp_ready_w = os.pipe()
    relay_stop = os.dup(exit_r) if host_ports else -1
    argv = [slirp, "--configure", "--mtu=65520", "--disable-host-loopback",
            f"--exit-fd={exit_r}", f"--ready-fd={slirp_ready_w}", "--netns-type=path",
            f"--userns-path=/proc/self/fd/{userfd}", f"/proc/self/fd/{netfd}", SLIRP_TAP]
    proc = subprocess.Popen(
        argv, pass_fds=(exit_r, slirp_ready_w, netfd, userfd), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    for fd in (slirp_ready_w, exit_r):
        os.close(fd)
    r, _, _ = select.select([slirp_ready_r], [], [], 20)
    ok = bool(r) and os.read(slirp_ready_r, 1) == b"1"
    if ok and host_ports:
        # A port that cannot be bridged is reported on the session's terminal; the session
        # runs on and its CLI says it cannot reach the server.
        for problem in sandbox_loopback.start_relay(userfd, netfd, host_ports, relay_stop):
            sys.stderr.write(f"workbench: host port bridge: {problem}\r\n")
    for fd in (netfd, userfd, relay_stop):
        if fd >= 0:
            os.close(fd)
    if not ok:
        # Kill the sandbox before our exit closes the go fd: the waiter would take that
        # EOF as the go-ahead and start the command (without network, but still).
        with contextlib.suppress(OSError):
            os.kill(child, 9)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err = proc.stderr.read() if proc.stderr else b""
        sys.stderr.write(f"workbench: slirp4netns failed: {err.decode(errors='replace')}\r\n")
        return 1
    if proc.stderr:
        proc.stderr.close()
    try:
        os.write(go_w, b"go\n")
    except OSError as e:
        if e.errno != errno.EPIPE:
            raise
    return 0


def main(argv: list[str]) -> int:
    """`net-launch SLIRP4NETNS N_OPTS -- BWRAP...`: see `net_launch`."""
    if len(argv) >= 4 and argv[0] == "net-launch" and argv[3] == "--":
        return net_launch(argv[1], int(argv[2]), argv[4:])
    sys.stderr.write(
        "usage: python -m workbench.core.sandbox_net net-launch SLIRP4NETNS N_OPTS -- BWRAP...\n"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
