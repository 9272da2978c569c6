"""The daemon's socket protocol against a real daemon process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.wb import Wb
from workbench import paths
from workbench.daemon.client import Client
from workbench.daemon.protocol import MAX_LINE, PROTOCOL_VERSION, encode, hello


def raw_conn() -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(paths.socket_path()))
    return s


def read_msg(s: socket.socket) -> dict:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return json.loads(buf.split(b"\n")[0]) if buf else {}


def test_frames_are_pushed_to_subscribers(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, "--sandbox", "off", "--size", "80x24")
    wb.wait_state(sid, "running")
    with Client("test") as c:
        res = c.call("subscribe", ids=[sid], frames=True)
        assert res["frames"] is True and sid in res["subscribed"]
        full = None
        while full is None:
            ev = c.next_event(timeout=5)
            assert ev is not None
            if ev["event"] == "frame":
                full = ev["data"]
        assert full["full"] is True and full["size"] == [80, 24] and len(full["rows"]) == 24
        c.call("keys", id=sid, text=r"echo frame-$((2+3))\r")
        seen = ""
        for _ in range(200):
            ev = c.next_event(timeout=5)
            assert ev is not None, "no frame arrived"
            if ev["event"] != "frame":
                continue
            assert ev["data"]["full"] is False
            for row in ev["data"]["rows"].values():
                seen += "".join(run[0] for run in row) + "\n"
            if "frame-5" in seen:
                break
        assert "frame-5" in seen


def test_handshake_version_mismatch_is_refused(wb: Wb) -> None:
    wb.run("daemon", "start")
    s = raw_conn()
    s.sendall(encode({"id": 0, "method": "hello", "params": {"protocol": PROTOCOL_VERSION + 99}}))
    msg = read_msg(s)
    assert msg["error"]["code"] == "version" and "protocol mismatch" in msg["error"]["message"]
    assert s.recv(10) == b""  # closed
    s.close()


def test_first_message_must_be_hello(wb: Wb) -> None:
    wb.run("daemon", "start")
    s = raw_conn()
    s.sendall(encode({"id": 1, "method": "ls", "params": {}}))
    assert read_msg(s)["error"]["code"] == "protocol"
    s.close()


def test_malformed_json_and_oversize_do_not_harm_other_clients(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, "--sandbox", "off")
    with Client("good") as good:
        bad = raw_conn()
        bad.sendall(encode(hello("bad")))
        assert read_msg(bad)["result"]["protocol"] == PROTOCOL_VERSION
        bad.sendall(b"{not json\n")
        assert read_msg(bad)["error"]["code"] == "protocol"
        bad.sendall(b"[1,2]\n")
        assert read_msg(bad)["error"]["code"] == "protocol"
        bad.sendall(encode({"id": 5, "method": "no_such_method"}))
        assert read_msg(bad)["error"]["message"] == "unknown method 'no_such_method'"
        bad.sendall(encode({"id": 6, "method": "keys", "params": {"id": 5}}))
        assert read_msg(bad)["error"]["code"] == "usage"
        # an oversize line gets an error and the connection is closed
        big = b'{"id": 7, "method": "ls", "params": {"x": "' + b"a" * (MAX_LINE + 10) + b'"}}\n'
        try:
            bad.sendall(big)
        except (BrokenPipeError, ConnectionResetError):
            pass
        msg = read_msg(bad)
        assert msg == {} or "over" in msg["error"]["message"]
        bad.close()
        assert [s["id"] for s in good.call("ls")] == [sid]


def test_peer_of_another_uid_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    if os.getuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to act as another user")
    import tempfile

    rt = Path(tempfile.mkdtemp(prefix="wb-peer-", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(rt))
    wb = Wb()
    try:
        _peer_attempt(wb, rt)
    finally:
        wb.stop()
        shutil.rmtree(rt, ignore_errors=True)


def _peer_attempt(wb: Wb, rt: Path) -> None:
    wb.run("daemon", "start")
    sock = paths.socket_path()
    assert sock.is_relative_to(rt)
    # Open the door on purpose: only SO_PEERCRED stands between the other user and the daemon.
    for p in (rt, sock.parent):
        p.chmod(0o755)
    sock.chmod(0o666)
    code = (
        "import socket, json, sys\n"
        "s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])\n"
        "try:\n"
        "    s.sendall(b'{\"id\":0,\"method\":\"hello\",\"params\":{\"protocol\":1}}\\n')\n"
        "except (BrokenPipeError, ConnectionResetError):\n"
        "    pass  # the daemon may refuse before we speak\n"
        "print(s.recv(4096).decode().strip())\n"
    )
    out = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code, str(sock)],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert reply["error"]["code"] == "auth" and "another user" in reply["error"]["message"]


def test_stale_socket_and_planted_symlink_are_replaced(wb: Wb, tmp_path: Path) -> None:
    rd = paths.runtime_dir()
    paths.ensure_private_dir(rd)
    target = tmp_path / "victim"
    target.write_text("keep me")
    paths.socket_path().symlink_to(target)
    wb.run("daemon", "start")  # (`daemon status` never starts one)
    st = wb.json("daemon", "status")
    assert target.read_text() == "keep me"
    assert not Path(st["socket"]).is_symlink()
    wb.stop()
    # a stale socket file left by a dead daemon
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(paths.socket_path()))
    s.close()
    wb.run("daemon", "start")
    assert wb.json("daemon", "status")["pid"] > 0


def test_runtime_dir_owned_by_someone_else_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to create a directory owned by another user")
    rd = tmp_path / "rt"
    (rd / "workbench").mkdir(parents=True)
    os.chown(rd / "workbench", 65534, 65534)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(rd))
    out = Wb().run("ls", check=False)
    assert out.returncode == 1 and out.stderr.startswith("error:") and "owned by uid 65534" in out.stderr


def test_deep_runtime_dir_beyond_sun_path_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    deep.chmod(0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    assert len(str(paths.socket_path())) > 108
    wb = Wb()
    try:
        wb.run("daemon", "start")
        st = wb.json("daemon", "status")
        assert st["socket"] == str(paths.socket_path())
        assert wb.json("ls") == []
    finally:
        wb.stop()
