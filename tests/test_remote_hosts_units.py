"""Remote hosts without sshd (issue 18): the hosts file and URLs, the namespacing and
checking of a host's ids, the UI's host marks, and the `daemon connect` bridge's bounded
buffering against a stalled reader (docs/remote.md). The end-to-end tests over a real sshd
are in tests/test_remote_hosts.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import cast

import pytest

from tests.helpers import wait_for
from tests.wb import Wb
from workbench import hosts_config
from workbench.errors import ConfigError, UsageError
from workbench.protocol.session import SessionInfo

OFF = ("--sandbox", "off")


def test_hosts_file_and_urls_are_checked() -> None:
    h = hosts_config.make_host("dev-1", "ssh://me@box.example:2222")
    assert (h.hostname, h.user, h.port) == ("box.example", "me", 2222)
    argv = h.ssh_argv()
    assert argv[:2] == ["ssh", "-T"] and "BatchMode=yes" in argv and "ClearAllForwardings=yes" in argv
    assert argv[-7:] == ["-p", "2222", "-l", "me", "--", "box.example", "workbench daemon connect"]
    assert hosts_config.make_host("v6", "ssh://[::1]").hostname == "::1"
    assert hosts_config.make_host("x", "ssh://h", workbench="/opt/wb bin/workbench").ssh_argv()[-1] == (
        "'/opt/wb bin/workbench' daemon connect")
    bad = {
        ("local", "ssh://h"): "reserved", ("a:b", "ssh://h"): "bad host name", ("ok", "http://h"): "expected ssh://",
        ("ok", "ssh://-oProxyCommand=x"): "expected ssh://", ("ok", "ssh://h:0"): "1-65535",
        ("ok", "ssh://h:99999"): "1-65535", ("ok", "ssh://u:pw@h"): "no password", ("ok", "ssh://h/path"): "expected",
    }
    for (name, url), message in bad.items():
        with pytest.raises(UsageError, match=message):
            hosts_config.make_host(name, url)
    with pytest.raises(UsageError, match="no such file"):
        hosts_config.make_host("ok", "ssh://h", ssh_config="/nonexistent/config")
    hosts_config.add(h)
    with pytest.raises(UsageError, match="exists"):
        hosts_config.add(h)
    assert hosts_config.load() == {"dev-1": h}
    hosts_config.remove("dev-1")
    with pytest.raises(UsageError, match="no host 'dev-1'"):
        hosts_config.remove("dev-1")
    hosts_config.hosts_file().write_text("[hosts.x]\nurl = 3\n")
    with pytest.raises(ConfigError, match=r"hosts\.toml.*needs url"):
        hosts_config.load()


def test_ui_shows_each_sessions_host_and_each_link() -> None:
    import time

    from tests.ui_fakes import session
    from workbench.ui.widgets.session_list import entry
    from workbench.ui.widgets.status_bar import status_content

    s = cast(SessionInfo, {**session("a1", "remote-one", "running"), "id": "dev:a1", "host": "dev"})
    assert "@dev" in entry(s, time.time(), {}, 60).plain
    assert "@" not in entry(session("b2", "local-one", "running"), time.time(), {}, 60).plain
    line = status_content([s], "ok", True, "", hosts=[{"name": "dev", "state": "up"},
                                                      {"name": "gpu", "state": "down"}]).plain
    assert "⇄ dev up" in line and "⇄ gpu down" in line


def test_remote_answers_get_namespaced_session_ids_only() -> None:
    from workbench.daemon.hosts import tag

    assert tag("dev", {"id": "ab12", "decision": "approve"}) == {"id": "dev:ab12", "decision": "approve"}
    assert tag("dev", [{"id": "ab12", "state": "running"}]) == [{"id": "dev:ab12", "state": "running", "host": "dev"}]
    diff = {"session": "ab12", "files": [{"hunks": [{"id": "h1"}]}]}
    assert tag("dev", diff) == {"session": "dev:ab12", "files": [{"hunks": [{"id": "h1"}]}]}
    assert tag("dev", {"comments": [{"id": 3}], "id": "ab12"})["comments"] == [{"id": 3}]
    assert tag("dev", {"sessions": [{"id": "x"}], "group": "g"})["sessions"] == [{"id": "dev:x"}]


def test_a_hosts_session_ids_must_be_plain() -> None:
    from workbench.daemon.hosts import checked
    from workbench.errors import DaemonError

    assert checked("dev", {"id": "ab12", "session": "ab12"})
    for bad in ({"id": "\x1b]0;owned\x07"}, {"session": "a b"}, {"sessions": [{"id": ""}]}, [{"id": "x" * 65}]):
        with pytest.raises(DaemonError, match="malformed session id"):
            checked("dev", bad)


def test_the_bridge_holds_one_buffer_while_its_reader_stalls(wb: Wb, repo: Path) -> None:
    """`daemon connect` copies one 64 KiB buffer at a time: while ssh (here: nobody) does not
    read, the bridge blocks, the daemon merges that client's frames (the latest screen wins)
    and nothing piles up in between."""
    import fcntl
    import struct
    import sys
    import termios

    from workbench.daemon.protocol import encode, hello, request

    sid = wb.new(repo, "--agent", "shell", *OFF)
    wb.wait_state(sid, "running")
    bridge = subprocess.Popen([sys.executable, "-m", "workbench", "daemon", "connect"], env=wb.env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert bridge.stdin is not None and bridge.stdout is not None
    out = bridge.stdout
    try:
        bridge.stdin.write(encode(hello("stalled")) + encode(request(1, "subscribe", {"ids": [sid], "frames": True})))
        bridge.stdin.flush()
        wb.run("keys", sid, "yes $(printf '%0150d' 7)\\r")  # a screen that never stops changing

        def unread() -> int:
            buf = fcntl.ioctl(out.fileno(), termios.FIONREAD, struct.pack("i", 0))
            return int(struct.unpack("i", buf)[0])

        def rss_kb() -> int:
            status = Path(f"/proc/{bridge.pid}/status").read_text()
            return int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("VmRSS:")))

        def stalled() -> bool:  # the pipe stopped filling: the bridge is blocked writing to it
            level = unread()
            wb.run("screen", sid)  # the daemon makes frames meanwhile
            return level > 0 and unread() == level

        wait_for(stalled, 60, 0, what="the bridge to block on the stalled reader")
        before, level = rss_kb(), unread()
        for _ in range(10):  # the daemon keeps producing frames for it meanwhile
            wb.run("screen", sid)
        assert unread() == level and rss_kb() - before < 4096
        wb.run("keys", sid, "\\x03")
        # reading again, the stream is whole: the hello's answer, then frames
        first = json.loads(bridge.stdout.readline())
        assert first["result"]["protocol"] == 1
    finally:
        bridge.stdin.close()
        bridge.kill()
        bridge.wait(30)
