"""Socket endpoint hardening: every socket method against path/argument injection and
the socket's authentication. Terminal-escape injection is in tests/test_terminal_escape_injection.py.
The results table is in docs/security.md ("Endpoint audit").

One daemon serves the whole module (starting one per test would cost a second each): the
`aud` fixture points each test's environment at it. Sessions run with `--sandbox off`:
what is audited here is the daemon's own handling of paths and refs, on the host side.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, make_repo
from tests.hardening_support import Canary, payloads
from tests.helpers import wait_for
from tests.wb import Wb
from workbench import paths
from workbench.daemon.client import Client
from workbench.daemon.protocol import encode, hello, request
from workbench.errors import WorkbenchError

OK_CODES = {"usage", "not_found", "git", "config"}

# Every method the daemon accepts, and which of its parameters name a session.
ID_METHODS = [
    "get", "keys", "screen", "resize", "stop", "restart", "rm", "rename", "events", "frame", "scrollback",
    "send", "approve", "deny", "log", "interrupt", "compact",
    "diff", "mark_reviewed", "reject", "revert_file", "comment", "undo", "review", "merge", "discard",
    "check", "send_check", "pick", "compare",
    "notify", "auto_answer", "attention",
    "suggest_start", "suggest_dismiss",  # suggestion ids, looked up the same way
]  # fmt: skip
NO_PARAM_METHODS = ["status", "ls", "gc", "recent_repos", "shutdown", "hosts"]
OTHER_METHODS = ["new", "new_attempts", "subscribe", "unsubscribe", "demo", "profiles", "suggest"]
ALL_METHODS = sorted(set(ID_METHODS + NO_PARAM_METHODS + OTHER_METHODS))


@dataclass
class Audit:
    root: Path
    env: dict[str, str]
    repo: Path
    canary: Canary
    shell: str
    wb: Wb

    def call(self, method: str, **params: Any) -> Any:
        with Client("audit") as c:
            return c.call(method, **params)

    def attempt(self, method: str, **params: Any) -> tuple[str, Any]:
        """('ok', result) or (error code, message); an internal error fails the test."""
        try:
            return "ok", self.call(method, **params)
        except WorkbenchError as e:
            assert "internal error" not in str(e), f"{method} {params!r}: {e}"
            return e.code, str(e)


_ENV_KEYS = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "HOME")


@pytest.fixture(scope="module")
def audit_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Audit]:
    root = tmp_path_factory.mktemp("audit")
    env = dict(os.environ)
    for key, name in zip(_ENV_KEYS, ("config", "data", "state", "cache", "runtime", "home"), strict=True):
        (root / name).mkdir()
        env[key] = str(root / name)
    # The runtime dir sits outside pytest's 0700 temp tree, so the peer-uid test never has to
    # loosen directories that other pytest processes share.
    runtime = Path(tempfile.mkdtemp(prefix="wb-audit-", dir="/tmp"))
    env["XDG_RUNTIME_DIR"] = str(runtime)
    env.update(SHELL="/bin/bash", GIT_AUTHOR_NAME="Test", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="Test", GIT_COMMITTER_EMAIL="t@example.com", GIT_CONFIG_NOSYSTEM="1")
    for k in ("GIT_DIR", "GIT_WORK_TREE", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        env.pop(k, None)
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        if k in _ENV_KEYS or k.startswith("GIT_") or k == "SHELL":
            mp.setenv(k, v)
    try:
        repo = make_repo(root / "repo", {"README.md": "# demo\n", "src/app.py": "print('hi')\n",
                                         "src/lib.py": "".join(f"line {i}\n" for i in range(1, 30))})
        canary = Canary(root, repo)
        wb = Wb(env)
        shell = wb.new(repo, "--sandbox", "off", "--name", "aud-shell")
        wb.wait_state(shell, "running")
        yield Audit(root, env, repo, canary, shell, wb)
    finally:
        mp.undo()
        Wb(env).stop()
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def aud(audit_daemon: Audit, monkeypatch: pytest.MonkeyPatch) -> Audit:
    for k in _ENV_KEYS:
        monkeypatch.setenv(k, audit_daemon.env[k])
    return audit_daemon


def worktree_of(a: Audit, sid: str) -> Path:
    return Path(a.call("get", id=sid)["worktree"])


def sessions_now(a: Audit) -> list[tuple[str, str, str]]:
    return sorted((s["id"], s["name"], s["worktree"]) for s in a.call("ls"))


# --------------------------------------------------------------------------- coverage


def test_every_socket_method_is_audited() -> None:
    """A new method without an audit row fails here: add it to the lists and the table."""
    from workbench.protocol.catalog import METHODS

    assert sorted(METHODS) == ALL_METHODS


# --------------------------------------------------------------------------- class 1: injection


@pytest.mark.parametrize("method", ID_METHODS)
def test_id_injection(aud: Audit, method: str) -> None:
    """A session id is looked up, never used as a path or a ref: every payload is 'no such
    session' (or a usage error), nothing outside the data dir changes."""
    before = sessions_now(aud)
    for bad in [*payloads(aud.root), "", "aud-shel", "wb/aud-shell", "refs/heads/wb/aud-shell"]:
        code, msg = aud.attempt(method, id=bad, text="x", path="README.md", line=1, hunk="h", event="waiting",
                                enabled=True, size="80x24", start=0, count=1)
        assert code in ("usage", "not_found"), f"{method}(id={bad!r}) -> {code}: {msg}"
    assert sessions_now(aud) == before
    aud.canary.assert_untouched()


def _new_cleanup(a: Audit, result: Any) -> None:
    sessions = result["sessions"] if isinstance(result, dict) and "sessions" in result else [result]
    for s in sessions:
        a.call("rm", id=s["id"])
    for s in sessions:
        assert Path(s["worktree"]).is_relative_to(paths.worktrees_dir()), s["worktree"]
        assert s["branch"].startswith("wb/") and "\n" not in s["branch"]


@pytest.mark.parametrize("param", ["repo", "name", "base", "agent", "sandbox", "approval", "provider"])
def test_new_argument_injection(aud: Audit, param: str) -> None:
    base = {"repo": str(aud.repo), "sandbox": "off", "name": "inj-new"}
    for bad in payloads(aud.root):
        params = {**base, param: bad}
        if param != "name":
            params["name"] = "inj-new"
        code, res = aud.attempt("new", **params)
        if code == "ok":
            _new_cleanup(aud, res)
            # Accepted only where the value is data: a ref git resolved as a ref, or a
            # provider name (a key into the config's [providers] table, unused by a shell).
            assert param in ("base", "provider"), f"new({param}={bad!r}) was accepted: {res['repo']}"
            assert res["repo"] == str(aud.repo.resolve())
        else:
            assert code in OK_CODES, f"new({param}={bad!r}) -> {code}: {res}"
    aud.canary.assert_untouched()
    assert not any(p.name.startswith("pwned") for p in paths.worktrees_dir().iterdir())


def test_new_name_never_leaves_the_worktrees_dir(aud: Audit) -> None:
    for bad in ("..", "a/../../b", "../../../../tmp/x", "-x", ".hidden", "a\tb", "x" * 64, "\u202eevil"):
        code, msg = aud.attempt("new", repo=str(aud.repo), sandbox="off", name=bad)
        assert code == "usage", (bad, code, msg)
    s = aud.call("new", repo=str(aud.repo), sandbox="off", name="Fix the LOGIN bug. v2")
    try:
        assert s["branch"] == "wb/fix-the-login-bug-v2"
        assert Path(s["worktree"]).parent == paths.worktrees_dir()
    finally:
        aud.call("rm", id=s["id"])
    aud.canary.assert_untouched()


@pytest.mark.parametrize("param", ["repo", "name", "base"])
def test_new_attempts_argument_injection(aud: Audit, param: str) -> None:
    base = {"repo": str(aud.repo), "sandbox": "off", "name": "inj-att", "attempts": 2}
    for bad in payloads(aud.root):
        code, res = aud.attempt("new_attempts", **{**base, param: bad})
        if code == "ok":
            _new_cleanup(aud, res)
            assert param == "base", f"new_attempts({param}={bad!r}) was accepted"
        else:
            assert code in OK_CODES, (bad, code, res)
    for n in (0, -1, 11, 2**62):
        assert aud.attempt("new_attempts", **{**base, "attempts": n})[0] == "usage"
    aud.canary.assert_untouched()


def test_demo_and_profiles_repo_injection(aud: Audit) -> None:
    for bad in payloads(aud.root):
        code, msg = aud.attempt("demo", repo=bad)
        assert code in OK_CODES, (bad, code, msg)
        code, msg = aud.attempt("suggest", repo=bad, wait=False)
        assert code in OK_CODES, (bad, code, msg)
        code, res = aud.attempt("profiles", repo=bad)
        # profiles only reads the repo's .workbench.toml, if there is one; a bad path is no repo.
        assert code in OK_CODES or (code == "ok" and isinstance(res, list)), (bad, code, res)
    assert [s["name"] for s in aud.call("ls")] == ["aud-shell"]
    aud.canary.assert_untouched()


def test_terminal_method_arguments(aud: Audit) -> None:
    """resize/scrollback/events/subscribe: sizes and numbers are bounded, ids looked up."""
    sid = aud.shell
    for size in ("0x0", "99999x99999", "80x24; touch pwned", "-80x24", "80x24\nx", "1e3x10", "10x3"):
        assert aud.attempt("resize", id=sid, size=size)[0] == "usage", size
    for start, count in ((-5, 10), (0, -1), (2**62, 2**62), (0, 10**6)):
        res = aud.call("scrollback", id=sid, start=start, count=count)
        assert 0 <= res["start"] <= res["total"] and len(res["rows"]) <= 1000
    for after in (-1, 2**62):
        assert isinstance(aud.call("events", id=sid, after=after), list)
    for bad in (10**30, 1.5, "1", [1]):
        assert aud.attempt("events", id=sid, after=bad)[0] == "usage"
        assert aud.attempt("scrollback", id=sid, start=bad)[0] == "usage"
    for ids in (payloads(aud.root), [sid, "../x"], "notalist", [1, 2]):
        assert aud.attempt("subscribe", ids=ids)[0] in ("usage", "not_found")
    assert aud.call("unsubscribe", ids=payloads(aud.root)[:5]) == {"subscribed": []}
    assert aud.call("get", id=sid)["state"] == "running"
    aud.canary.assert_untouched()


def test_keys_is_data_for_the_terminal_only(aud: Audit) -> None:
    """keys is *meant* to type anything into the session's terminal (the same user); what
    it must not do is touch anything but that PTY. Malformed escapes are usage errors."""
    for bad in ("\\", "\\x4", "\\q", "\\uzzzz"):
        assert aud.attempt("keys", id=aud.shell, text=bad)[0] == "usage"
    # NUL is a key (ctrl+space) in terminal data; anywhere else the protocol refuses it
    assert aud.attempt("keys", id=aud.shell, data="a\x00b") == ("ok", {"bytes": 3})
    assert aud.attempt("keys", id=aud.shell + "\x00", data="a")[0] == "usage"
    aud.canary.assert_untouched()


# -- review methods: paths, hunk ids, refs -------------------------------------------------


@pytest.fixture
def changed(aud: Audit) -> Iterator[tuple[str, Path]]:
    """A session with changes to review; removed afterwards."""
    s = aud.call("new", repo=str(aud.repo), sandbox="off", name=f"rev-{time.monotonic_ns() % 10**8}")
    wt = Path(s["worktree"])
    (wt / "README.md").write_text("# demo\nmore\n")
    (wt / "src" / "lib.py").write_text((wt / "src" / "lib.py").read_text().replace("line 5\n", "LINE five\n"))
    (wt / "new.txt").write_text("new file\n")
    try:
        yield s["id"], wt
    finally:
        with Client("cleanup") as c:
            try:
                c.call("rm", id=s["id"])
            except WorkbenchError:
                pass


@pytest.mark.parametrize("method,param", [
    ("diff", "paths"), ("comment", "path"), ("revert_file", "path"), ("mark_reviewed", "path"),
    ("mark_reviewed", "hunk"), ("reject", "hunk"),
])  # fmt: skip
def test_review_path_injection(aud: Audit, changed: tuple[str, Path], method: str, param: str) -> None:
    sid, wt = changed
    before = {p.name: p.read_bytes() for p in wt.iterdir() if p.is_file()}
    for bad in payloads(aud.root):
        value: Any = [bad] if param == "paths" else bad
        code, res = aud.attempt(method, id=sid, **{param: value}, line=1, text="note")
        if code == "ok":
            # A pathspec that git matched inside the worktree: only the session's own files.
            assert method == "diff", (method, bad, res)
            assert {f["path"] for f in res["files"]} <= {"README.md", "src/lib.py", "new.txt"}, (bad, res)
        else:
            assert code in OK_CODES, (method, bad, code, res)
    assert {p.name: p.read_bytes() for p in wt.iterdir() if p.is_file()} == before
    aud.canary.assert_untouched()


def test_comment_lines_and_text_are_bounded(aud: Audit, changed: tuple[str, Path]) -> None:
    sid, _ = changed
    for line, end in ((0, None), (-1, None), (5, 2), (10**9, None), (1, 10**9)):
        assert aud.attempt("comment", id=sid, path="README.md", line=line, end_line=end, text="x")[0] == "usage"
    assert aud.attempt("comment", id=sid, path="README.md", line=1, text="")[0] == "usage"
    for fmt in ("--output=x", "unified\n", "../json"):
        assert aud.attempt("diff", id=sid, format=fmt)[0] == "usage"
    assert aud.attempt("diff", id=sid, offset=-1)[0] == "usage"
    aud.canary.assert_untouched()


@pytest.mark.parametrize("method", ["merge"])
def test_merge_strategy_and_message_injection(aud: Audit, changed: tuple[str, Path], method: str) -> None:
    sid, _ = changed
    for bad in payloads(aud.root):
        assert aud.attempt(method, id=sid, strategy=bad)[0] == "usage", bad
    aud.canary.assert_untouched()
    # A message that looks like an option is the commit message, not an option.
    tip = git(aud.repo, "rev-parse", "main").strip()
    msg = f"--amend --output={aud.root / 'pwned-merge'}"
    res = aud.call(method, id=sid, strategy="squash", message=msg)
    try:
        assert git(aud.repo, "log", "-1", "--format=%B", "main").strip() == msg
        assert git(aud.repo, "rev-parse", "main~1").strip() == tip  # a new commit, nothing amended
        assert res["files_changed"] >= 1 and not aud.canary.pwned()
    finally:
        git(aud.repo, "reset", "-q", "--hard", tip)
    aud.canary.assert_untouched()


# -- a malicious worktree: symlinks planted by the agent ---------------------------------


def _plant_links(a: Audit, wt: Path) -> None:
    """What an agent can do inside its worktree: point files and dirs outside."""
    (wt / "README.md").unlink()
    (wt / "README.md").symlink_to(a.canary.victim / "target.txt")
    (wt / "outside").symlink_to(a.canary.victim)
    (wt / "leak.txt").symlink_to(a.canary.victim / "secret.txt")
    shutil.rmtree(wt / "src")
    (wt / "src").symlink_to(a.canary.victim)


def test_diff_does_not_read_through_symlinks(aud: Audit, changed: tuple[str, Path]) -> None:
    sid, wt = changed
    _plant_links(aud, wt)
    for fmt in ("json", "unified"):
        res = aud.call("diff", id=sid, format=fmt)
        assert "SECRET-CANARY" not in json.dumps(res), fmt
    files = {f["path"]: f for f in aud.call("diff", id=sid)["files"]}
    assert "leak.txt" in files and "victim" in json.dumps(files["leak.txt"])  # shown as a link target
    aud.canary.assert_untouched()


def test_revert_and_reject_replace_links_instead_of_writing_through(aud: Audit, changed: tuple[str, Path]) -> None:
    sid, wt = changed
    _plant_links(aud, wt)
    res = aud.call("revert_file", id=sid, path="README.md")
    assert res["rejection"]["path"] == "README.md"
    assert not (wt / "README.md").is_symlink() and (wt / "README.md").read_text() == "# demo\n"
    # src/lib.py now lies beyond a symlink: putting it back must not write into the victim.
    code, _ = aud.attempt("revert_file", id=sid, path="src/lib.py")
    if code == "ok":
        assert not (wt / "src").is_symlink() and (wt / "src" / "lib.py").read_text().startswith("line 1\n")
    diff = aud.call("diff", id=sid)
    for f in diff["files"]:
        for h in f["hunks"] or []:
            aud.attempt("reject", id=sid, hunk=h["id"])
    aud.canary.assert_untouched()
    assert (aud.canary.victim / "target.txt").read_text() == "keep me\n"


def test_comment_does_not_read_through_a_symlinked_dir(aud: Audit, changed: tuple[str, Path]) -> None:
    sid, wt = changed
    _plant_links(aud, wt)
    # (git refuses a pathspec beyond a symbolic link, which is what stops this today.)
    code, res = aud.attempt("comment", id=sid, path="outside/secret.txt", line=1, text="what is this?")
    leaked = "SECRET-CANARY" in json.dumps(res) or "SECRET-CANARY" in json.dumps(aud.call("review", id=sid))
    assert code in OK_CODES and not leaked, res


def test_comment_on_a_symlink_is_refused(aud: Audit, changed: tuple[str, Path]) -> None:
    sid, wt = changed
    _plant_links(aud, wt)
    code, res = aud.attempt("comment", id=sid, path="leak.txt", line=1, text="?")
    assert code in OK_CODES and "SECRET-CANARY" not in str(res)
    assert "SECRET-CANARY" not in json.dumps(aud.call("review", id=sid))


def test_discard_and_undo_with_planted_links(aud: Audit, changed: tuple[str, Path]) -> None:
    sid, wt = changed
    _plant_links(aud, wt)
    aud.call("revert_file", id=sid, path="leak.txt")
    aud.call("undo", id=sid)  # puts the link back (inside the worktree) and nothing else
    assert (wt / "leak.txt").is_symlink()
    aud.call("discard", id=sid)
    assert not (wt / "src").is_symlink() and (wt / "src" / "app.py").read_text() == "print('hi')\n"
    assert not (wt / "leak.txt").exists() and not (wt / "outside").exists()
    aud.canary.assert_untouched()


def test_rm_and_gc_do_not_follow_links(aud: Audit) -> None:
    s = aud.call("new", repo=str(aud.repo), sandbox="off", name="links-rm")
    wt = Path(s["worktree"])
    _plant_links(aud, wt)
    aud.call("rm", id=s["id"])
    assert not wt.exists() and not wt.is_symlink()
    aud.canary.assert_untouched()
    # a link planted in the worktrees dir itself (only the user could): gc leaves its target
    planted = paths.worktrees_dir() / "planted"
    planted.symlink_to(aud.canary.victim)
    try:
        aud.call("gc")
        aud.canary.assert_untouched()
    finally:
        if planted.is_symlink():
            planted.unlink()


# -- built-in agent and profile methods ---------------------------------------------------


def test_agent_and_notify_text_parameters_are_data(aud: Audit) -> None:
    """send/deny/notify take free text: it goes to the model or the event log, never to a
    path or git. On a shell session they are typed or refused."""
    sid = aud.shell
    for bad in payloads(aud.root):
        if "\x00" in bad:
            assert aud.attempt("send", id=sid, text=bad)[0] == "usage"
            continue
        assert aud.attempt("deny", id=sid, reason=bad)[0] in OK_CODES
        assert aud.attempt("notify", id=sid, event=bad, detail=bad)[0] in OK_CODES
        assert aud.attempt("interrupt", id=sid)[0] == "usage"
        assert aud.attempt("compact", id=sid)[0] == "usage"
    for enabled in ("yes", 1, [True]):
        assert aud.attempt("auto_answer", id=sid, enabled=enabled)[0] == "usage"
    for group in payloads(aud.root):
        assert aud.attempt("compare", group=group)[0] in OK_CODES
    assert aud.call("get", id=sid)["state"] in ("running", "waiting")
    aud.canary.assert_untouched()


# --------------------------------------------------------------------------- class 3: authentication


def _raw(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def _lines(s: socket.socket) -> Iterator[dict[str, Any]]:
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                return
            buf += chunk
        line, _, buf = buf.partition(b"\n")
        yield json.loads(line)


def _params_for(method: str, sid: str) -> dict[str, Any]:
    return {"id": sid, "repo": "/nonexistent", "text": "x", "size": "80x24", "path": "README.md", "line": 1,
            "hunk": "h", "event": "waiting", "enabled": False, "ids": [sid], "attempts": 1}


@pytest.mark.parametrize("method", ALL_METHODS)
def test_auth_method_before_hello_is_refused(aud: Audit, method: str) -> None:
    """Every method, sent as the first message, is refused and the connection closed."""
    pid = aud.wb.daemon_pid()
    events_before = len(aud.call("events", id=aud.shell))
    s = _raw(str(paths.socket_path()))
    s.sendall(encode(request(1, method, _params_for(method, aud.shell))))
    replies = list(_lines(s))
    s.close()
    assert len(replies) == 1 and replies[0]["error"]["code"] == "protocol", replies
    assert aud.wb.daemon_pid() == pid and aud.call("status")["pid"] == pid
    assert len(aud.call("events", id=aud.shell)) == events_before  # nothing happened


@pytest.mark.parametrize("method", [m for m in ALL_METHODS if m != "shutdown"])  # shutdown: below
def test_auth_malformed_params_are_refused_without_harm(aud: Audit, method: str) -> None:
    """Wrong parameter types or a non-object `params` are usage/protocol errors on this
    connection only; it stays usable and another client is served meanwhile."""
    s = _raw(str(paths.socket_path()))
    s.sendall(encode(hello("bad")))
    it = _lines(s)
    assert next(it)["result"]["protocol"] == 1
    bad_params: list[Any] = [[1, 2], "text", 5, {"id": 5, "repo": 5, "text": 5, "ids": "x", "size": 1, "line": "1",
                                                 "attempts": "2", "path": ["a"], "hunk": {}, "enabled": "true"}]
    with Client("good") as good:
        for i, params in enumerate(bad_params):
            s.sendall(json.dumps({"id": i + 10, "method": method, "params": params}).encode() + b"\n")
            reply = next(it)
            assert reply["id"] == i + 10
            if method in NO_PARAM_METHODS or method in ("unsubscribe",):
                # no parameters read: params of the wrong shape may be refused or ignored
                assert "result" in reply or reply["error"]["code"] in ("protocol", "usage"), reply
            else:
                assert reply["error"]["code"] in ("protocol", "usage"), (params, reply)
            assert "internal error" not in json.dumps(reply)
            assert [x["id"] for x in good.call("ls")] == [aud.shell]
    s.sendall(encode(request(99, "status")))
    assert next(it)["result"]["pid"] == aud.wb.daemon_pid()
    s.close()


_PEER_SCRIPT = r"""
import json, socket, sys
path, methods, sid = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
out = {}
for m in methods:
    res = []
    for first in ("hello", m):  # with a proper hello first, and the method straight away
        s = socket.socket(socket.AF_UNIX); s.settimeout(5)
        try:
            s.connect(path)
        except OSError as e:
            res.append({"connect_error": e.strerror}); continue
        msgs = []
        if first == "hello":
            msgs.append({"id": 0, "method": "hello", "params": {"protocol": 1, "client": "peer"}})
        msgs.append({"id": 1, "method": m, "params": {"id": sid}})
        try:
            s.sendall(b"".join(json.dumps(x).encode() + b"\n" for x in msgs))
        except OSError:
            pass
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        res.append([json.loads(x) for x in data.splitlines() if x.strip()])
        s.close()
    out[m] = res
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def peer_results(audit_daemon: Audit) -> dict[str, Any]:
    """Every method tried by uid 65534 on a socket whose modes were opened up on purpose,
    so that only SO_PEERCRED stands in the way (one subprocess for all methods)."""
    if os.getuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to act as another user (CI runs it as root)")
    a = audit_daemon
    sock = Path(a.env["XDG_RUNTIME_DIR"]) / "workbench" / "daemon.sock"
    # Only directories that lack o+x are opened (pytest's 0700 temp dirs), and only for this.
    opened = [p for p in sock.parents if not p.stat().st_mode & 0o001]
    modes = {p: p.stat().st_mode & 0o7777 for p in [sock, *opened]}
    try:
        for p in opened:
            p.chmod(modes[p] | 0o011)
        sock.chmod(0o666)
        out = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", _PEER_SCRIPT,
             str(sock), json.dumps(ALL_METHODS), a.shell],
            capture_output=True, text=True, timeout=120, env={"PATH": os.environ.get("PATH", "")},
        )
    finally:
        for p, m in modes.items():
            p.chmod(m)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


@pytest.mark.parametrize("method", ALL_METHODS)
def test_auth_peer_of_another_uid_is_refused(aud: Audit, peer_results: dict[str, Any], method: str) -> None:
    """SO_PEERCRED: another uid gets one `auth` error and a closed connection, whatever it sends."""
    for attempt in peer_results[method]:
        assert isinstance(attempt, list), attempt
        assert len(attempt) == 1, attempt  # one reply, then closed: the method never ran
        assert attempt[0]["error"]["code"] == "auth" and "another user" in attempt[0]["error"]["message"]
    # the daemon still runs and the session was not touched (e.g. by `rm` or `shutdown`)
    assert aud.call("get", id=aud.shell)["state"] == "running"


def test_auth_runtime_dir_and_socket_modes(aud: Audit) -> None:
    sock = paths.socket_path()
    assert sock.parent.stat().st_mode & 0o777 == 0o700
    assert sock.stat().st_mode & 0o777 == 0o600
    assert sock.parent.stat().st_uid == os.getuid() == sock.stat().st_uid


def test_auth_runtime_dir_made_a_symlink_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A symlink planted at $XDG_RUNTIME_DIR/workbench (pointing to a dir someone can read)
    is refused, not followed. (A planted socket symlink: tests/test_protocol.py.)"""
    rt = tmp_path / "rt"
    rt.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    (rt / "workbench").symlink_to(elsewhere)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(rt))
    out = Wb().run("ls", check=False)
    assert out.returncode == 1 and out.stderr.startswith("error:") and "symlink" in out.stderr
    assert list(elsewhere.iterdir()) == [] and elsewhere.stat().st_mode & 0o777 == 0o755


def test_auth_loose_runtime_dir_modes_are_tightened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rt = tmp_path / "rt"
    (rt / "workbench").mkdir(parents=True)
    (rt / "workbench").chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(rt))
    wb = Wb()
    try:
        wb.run("daemon", "start")
        assert (rt / "workbench").stat().st_mode & 0o777 == 0o700
        assert (rt / "workbench" / "daemon.sock").stat().st_mode & 0o777 == 0o600
    finally:
        wb.stop()


def test_auth_shutdown_only_for_a_hello_peer(aud: Audit) -> None:
    """`shutdown` from a peer that never said hello does nothing (the peer-uid case is above)."""
    s = _raw(str(paths.socket_path()))
    s.sendall(encode(request(1, "shutdown")))
    assert next(_lines(s))["error"]["code"] == "protocol"
    s.close()
    time.sleep(0.2)
    assert aud.call("status")["pid"] == aud.wb.daemon_pid()


def test_auth_malformed_shutdown(wb: Wb) -> None:
    """`shutdown` with a non-object params, or with junk keys, is refused and the daemon
    keeps running; a well-formed one then stops it cleanly."""
    wb.run("daemon", "start")
    pid = wb.daemon_pid()
    s = _raw(str(paths.socket_path()))
    s.sendall(encode(hello("t")))
    it = _lines(s)
    next(it)
    s.sendall(json.dumps({"id": 1, "method": "shutdown", "params": [1]}).encode() + b"\n")
    assert next(it)["error"]["code"] == "protocol"
    assert wb.json("daemon", "status")["pid"] == pid
    s.sendall(json.dumps({"id": 2, "method": "shutdown", "params": {"now": "../x"}}).encode() + b"\n")
    err = next(it)["error"]
    assert err["code"] == "usage" and "unknown parameter 'now'" in err["message"]
    assert wb.json("daemon", "status")["pid"] == pid
    s.sendall(json.dumps({"id": 3, "method": "shutdown", "params": {}}).encode() + b"\n")
    assert next(it)["result"] == {"stopping": True}
    s.close()
    wait_for(lambda: not paths.socket_path().exists(), 10, what="the daemon to stop")


def test_auth_slow_reader_does_not_block_others(aud: Audit) -> None:
    """A client that subscribes to frames and never reads is dropped (bounded outbox);
    others keep being served."""
    s = _raw(str(paths.socket_path()))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(encode(hello("stuck")))
    s.sendall(encode(request(1, "subscribe", {"all": True, "frames": True, "ids": [aud.shell]})))
    with Client("busy") as c:
        for _ in range(40):
            c.call("keys", id=aud.shell, text=r"seq 1 300\r")
        assert c.call("status")["pid"] > 0
    s.close()

