"""A model server on the host's loopback, reachable from a sandboxed session only at the
port the user listed in `[sandbox] host_ports` (core/sandbox_loopback.py), through a real
daemon, bubblewrap and slirp4netns."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import sandbox_visible_binds, wait_for
from tests.test_attention import call, screen
from tests.wb import Wb
from workbench.core import sandbox_loopback

# Inside the sandbox (bash's /dev/tcp, no other program needed): talk to the bridged
# port, then try the other one at the sandbox's loopback and at slirp4netns's host address.
PROBE = """
exec 3<>/dev/tcp/127.0.0.1/$1 && printf ping >&3 && echo "reply: $(head -c 9 <&3)"
for host in 127.0.0.1 10.0.2.2; do
  if timeout 3 bash -c "exec 4<>/dev/tcp/$host/$2" 2>/dev/null; then echo "other port open at $host"
  else echo "other port closed at $host"; fi
done
echo probe done
sleep 60
"""


class Server:
    """A TCP server on the host's 127.0.0.1 that answers `pong:<what it got>`."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"pong:" + conn.recv(100))


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    a, b = Server(), Server()
    yield a, b
    a.sock.close()
    b.sock.close()


def test_parse_ports() -> None:
    assert sandbox_loopback.parse_ports("11434, 8080,x,0,70000,8080") == [11434, 8080]


@pytest.mark.sandbox
def test_only_the_configured_host_port_is_reachable(
    wb: Wb, repo: Path, isolated_env: Path, servers: tuple[Server, Server]
) -> None:
    from workbench.core import sandbox_net, sandbox_probe

    if not sandbox_probe.probe().ok:
        pytest.skip(f"bubblewrap cannot run here: {sandbox_probe.probe().reason}")
    if sandbox_net.network_problem():
        pytest.skip(f"no sandbox network here: {sandbox_net.network_problem()}")
    bridged, other = servers
    cfg = isolated_env / "config" / "workbench" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    argv = ["/bin/bash", "-c", PROBE, "probe", str(bridged.port), str(other.port)]
    cfg.write_text(f"[sandbox]\nhost_ports = [{bridged.port}]\n"
                   f"extra_ro_binds = {json.dumps(sandbox_visible_binds())}\n\n"
                   f"[profiles.probe]\ncommand = {json.dumps(argv)}\nnetwork = true\n")
    wb.run("daemon", "start")
    sid = call("new", repo=str(repo), agent="probe", prompt="", sandbox="workspace")["id"]
    wait_for(lambda: "probe done" in screen(sid), 20, what="the probe's output")
    out = screen(sid)
    assert "reply: pong:ping" in out
    assert "other port closed at 127.0.0.1" in out and "other port closed at 10.0.2.2" in out
