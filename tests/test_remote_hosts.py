"""Remote hosts over a real sshd (issue 18): the local daemon links to a second daemon (this
same install with XDG directories of its own) through `ssh ... workbench daemon connect`,
and one `workbench ls` lists and drives the sessions of both (docs/remote.md)."""

from __future__ import annotations

import json
import os
import pwd
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent_support import calls, patch, shell
from tests.conftest import git
from tests.helpers import process_ended, wait_for
from tests.ssh_support import REMOTE_USER, RemoteInstall, Sshd, free_port, make_remote, missing_tools, start_sshd
from tests.wb import Wb
from workbench import hosts_config
from workbench.fakes.model_server import FakeOpenAI, Script, Turn

OFF = ("--sandbox", "off")
EDIT = """*** Begin Patch
*** Update File: notes.txt
@@
-draft
+final
*** End Patch
"""


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    why = missing_tools()
    if why:
        pytest.skip(why)
    try:
        server = start_sshd(tmp_path_factory.mktemp("sshd"))
    except RuntimeError as e:
        if os.getuid() == 0:  # CI runs as root, where it must work
            raise
        pytest.skip(f"sshd does not start for this (non-root) user: {e}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fake_model() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI([Script("edit the notes", [
        calls(shell(["cat", "notes.txt"])), calls(patch(EDIT)), calls(patch(EDIT)), Turn(text="notes are final")])])
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def remote(sshd: Sshd, fake_model: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteInstall]:
    """The remote host's workbench: its daemon starts at the first `daemon connect`."""
    inst = make_remote(tmp_path_factory.mktemp("remote"), {
        "OPENAI_BASE_URL": fake_model.base_url, "OPENAI_MODEL": "fake-model", "WORKBENCH_WIRE_API": "chat"})
    yield inst
    inst.stop()


def add_host(wb: Wb, sshd: Sshd, name: str, workbench: str, url: str | None = None) -> None:
    wb.run("host", "add", name, url or sshd.url, "--ssh-config", str(sshd.ssh_config), "--workbench", workbench)


def link(wb: Wb, name: str) -> dict[str, Any]:
    return next(h for h in wb.json("host", "ls") if h["name"] == name)


def wait_link(wb: Wb, name: str, state: str, contains: str = "") -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        h = link(wb, name)
        return h if h["state"] == state and contains in h["error"] else None

    try:
        return wait_for(probe, 60, 0.1, what=f"link {name} {state} {contains!r}")
    except AssertionError:
        raise AssertionError(f"{link(wb, name)}") from None


def listed(wb: Wb, sid: str) -> dict[str, Any] | None:
    return next((s for s in wb.json("ls") if s["id"] == sid), None)


def test_cli_gives_one_line_errors(wb: Wb) -> None:
    for args, message in ((("host", "add", "a:b", "ssh://h"), "bad host name"),
                          (("host", "add", "x", "ftp://h"), "expected ssh://"),
                          (("host", "rm", "nope"), "no host 'nope'"),
                          (("new", "--host", "dev", "--repo", "rel/path"), "absolute path")):
        res = wb.run(*args, check=False)
        assert res.returncode == 2 and res.stderr.startswith("error:") and message in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    assert "no hosts" in wb.run("host", "ls").stdout
    res = wb.run("new", "--host", "nowhere", "--repo", "/srv/repo", "--agent", "shell", check=False)
    assert res.returncode == 2 and "no host 'nowhere'" in res.stderr
    # a broken hosts file is a warning under `ls`, never a failed listing
    hosts_config.hosts_file().write_text("[hosts.x\n")
    res = wb.run("ls")
    assert "no sessions" in res.stdout and res.stderr.startswith("warning:") and "hosts.toml" in res.stderr
    res = wb.run("host", "ls", check=False)
    assert res.returncode == 2 and res.stderr.startswith("error:") and "hosts.toml" in res.stderr


def test_remote_shell_session_listed_and_driven(
        wb: Wb, sshd: Sshd, remote: RemoteInstall, repo: Path, tmp_path: Path) -> None:
    rrepo = remote.make_repo("remote-repo")
    local = wb.new(repo, "--agent", "shell", *OFF)
    add_host(wb, sshd, "dev", str(remote.wrapper))
    up = wait_link(wb, "dev", "up")
    assert up["version"] and up["pid"]
    # the remote daemon is the login user's: as root, a user of the suite's own
    rpid = remote.daemon_pid()
    assert rpid, "the remote daemon wrote no pid file"
    status = Path(f"/proc/{rpid}/status").read_text()  # (not dumpable: /proc/PID itself is root's)
    uid = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:"))
    assert uid == pwd.getpwnam(sshd.user).pw_uid
    assert sshd.user == (REMOTE_USER if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_name)
    sid = wb.run("new", "--host", "dev", "--repo", str(rrepo), "--agent", "shell", *OFF).stdout.strip()
    assert sid.startswith("dev:")
    rid = sid.split(":", 1)[1]
    # one listing: both hosts, with the host of each
    hosts = {s["id"]: s["host"] for s in wb.json("ls")}
    assert hosts[local] == "local" and hosts[sid] == "dev"
    assert rid in {s["id"] for s in json.loads(remote.run("ls", "--json").stdout)}  # it lives over there
    text = wb.run("ls").stdout
    assert sid in text and "host dev: up" in text
    # keys and screen over the link; the screen is the remote daemon's
    wb.run("keys", sid, "echo remote-$((6*7))\\r")
    wb.wait_screen(sid, "remote-42", timeout=60)
    assert "remote-42" in remote.run("screen", rid).stdout
    # frames follow a subscriber, under the namespaced id
    from workbench.daemon.client import Client

    with Client("test") as c:
        c.call("subscribe", ids=[sid], frames=True)
        c.call("keys", id=sid, text="echo framed-$((2+3))\\r")

        def framed() -> bool:
            ev = c.next_event(5)
            return bool(ev and ev["event"] == "frame" and ev["data"]["session"] == sid
                        and "framed-5" in json.dumps(ev["data"]["rows"]))

        wait_for(framed, 60, 0, what="a frame of the remote session")
    wb.run("stop", sid)
    assert wb.wait_state(sid, "stopped", timeout=60)["host"] == "dev"
    wb.run("rm", sid)
    wait_for(lambda: listed(wb, sid) is None, 60, what="the removed session to leave the listing")
    assert rid not in remote.run("ls").stdout
    ssh_pid = link(wb, "dev")["pid"]
    wb.run("host", "rm", "dev")
    assert "no hosts" in wb.run("host", "ls").stdout
    wait_for(lambda: process_ended(ssh_pid), 30, what="the link's ssh process to end with its host")


def test_remote_agent_approvals_survive_a_killed_link_then_review_and_merge(
        wb: Wb, sshd: Sshd, remote: RemoteInstall, tmp_path: Path) -> None:
    rrepo = remote.make_repo("notes", {"notes.txt": "draft\n"})
    add_host(wb, sshd, "dev", str(remote.wrapper))
    sid = wb.run("new", "--host", "dev", "--repo", str(rrepo), "--agent", "builtin", "--prompt",
                 "edit the notes", "--approval", "suggest", *OFF).stdout.strip()
    rid = sid.split(":", 1)[1]

    def pending(kind: str) -> dict[str, Any] | None:
        s = listed(wb, sid)
        ap = s and s.get("approval_pending")
        return s if ap and ap["kind"] == kind else None

    wait_for(lambda: pending("command"), 60, 0.1, what="the command's approval, seen here")
    assert "approved: cat notes.txt" in wb.run("approve", sid).stdout
    wait_for(lambda: pending("patch"), 60, 0.1, what="the patch's approval")
    asked_before = max(e["seq"] for e in json.loads(wb.run("log", sid, "--json").stdout)
                       if e["kind"] == "approval_request")
    # the link dies and cannot come back for a while (workbench "being upgraded" there);
    # meanwhile the patch is denied over there and the agent asks again
    from workbench.daemon.client import Client

    other = wb.run("new", "--host", "dev", "--repo", str(rrepo), "--agent", "shell", *OFF).stdout.strip()
    watcher = Client("test")  # a pane on a session that will be gone when the link heals
    watcher.call("subscribe", ids=[other], frames=True)
    follower = Client("test")  # as the UI's transcript follows a session
    follower.call("subscribe", ids=[sid])
    first = link(wb, "dev")["pid"]
    away = remote.wrapper.with_name("away")
    remote.wrapper.rename(away)
    os.kill(first, signal.SIGKILL)
    wait_link(wb, "dev", "down", "not installed")
    assert listed(wb, sid)["approval_pending"]["kind"] == "patch"  # the last state known, while down
    remote.run("deny", rid, "--reason", "try again")
    remote.run("rm", other.split(":", 1)[1])

    def asked_again_there() -> bool:
        entries = json.loads(remote.run("log", rid, "--json").stdout)
        return sum(e["kind"] == "approval_request" for e in entries) == 3

    wait_for(asked_again_there, 60, 0.2, what="the agent to ask again")
    away.rename(remote.wrapper)
    # the session did not stop with the link, and the new approval shows once it heals
    healed = wait_for(lambda: (h := link(wb, "dev"))["state"] == "up" and h["pid"] != first and h, 90, 0.1,
                      what="the link to come back")
    assert healed["attempts"] == 0
    entries = json.loads(wb.run("log", sid, "--json").stdout)
    assert sum(e["kind"] == "approval_request" for e in entries) == 3
    s = pending("patch")
    assert s is not None and s["state"] == "waiting"

    def caught_up() -> bool:  # the entries written while the link was down came as events
        ev = follower.next_event(5)
        return bool(ev and ev["event"] == "log" and ev["data"]["session"] == sid
                    and ev["data"]["kind"] == "approval_request" and ev["data"]["seq"] > asked_before)

    wait_for(caught_up, 60, 0, what="the missed approval request as a log event")
    follower.close()
    watcher.close()
    assert listed(wb, other) is None
    assert "denied" in wb.run("log", sid).stdout
    wb.run("approve", sid)
    wb.wait_state(sid, "review", timeout=60)
    # review and merge on the remote repository
    diff = wb.run("diff", sid).stdout
    assert "-draft" in diff and "+final" in diff
    out = wb.run("merge", sid, "--squash", "-m", "final notes").stdout
    assert "merged into main" in out
    assert git(rrepo, "-c", "safe.directory=*", "show", "main:notes.txt") == "final\n"  # the remote user's


def test_unreachable_and_broken_hosts_show_down_without_holding_up_ls(
        wb: Wb, sshd: Sshd, repo: Path, tmp_path: Path) -> None:
    local = wb.new(repo, "--agent", "shell", *OFF)
    add_host(wb, sshd, "gone", "workbench", url=f"ssh://{sshd.user}@127.0.0.1:{free_port()}")
    add_host(wb, sshd, "bare", "/nonexistent/workbench")
    # speaks another protocol: the daemon's refusal of the hello
    old = sshd.user_script("old-workbench", "#!/bin/sh\necho 'Welcome to the box (a login banner on stdout)'\n"
                           "read hello\necho '{\"id\":0,\"error\":{\"code\":\"version\",\"message\":"
                           "\"protocol mismatch: daemon speaks 2, client 1\"}}'\n")
    add_host(wb, sshd, "old", str(old))
    assert "Connection refused" in wait_link(wb, "gone", "down")["error"]
    bare = wait_link(wb, "bare", "down")["error"]
    assert "workbench is not installed on host bare" in bare and "pipx install workbench" in bare
    old_err = wait_link(wb, "old", "down")["error"]
    assert "protocol 1" in old_err and "daemon speaks 2" in old_err and "pipx upgrade workbench" in old_err
    # the local session is listed as ever, and each host says what is wrong
    text = wb.run("ls").stdout
    assert local in text and "host gone: down" in text and "host bare: down" in text
    res = wb.run("keys", "gone:abc", "x", check=False)
    assert res.returncode == 1 and "host gone is" in res.stderr
    status = wb.run("daemon", "status").stdout
    assert "host old: down" in status


def test_the_ui_lists_and_drives_a_remote_session(
        wb: Wb, sshd: Sshd, remote: RemoteInstall, tmp_path: Path) -> None:
    import asyncio

    from textual.widgets import Input, Select

    from tests.test_ui_live import until
    from workbench.ui.app import WorkbenchApp
    from workbench.ui.screens.new_session import NewSessionScreen
    from workbench.ui.widgets.terminal import TerminalView

    rrepo = remote.make_repo("ui-remote-repo")
    add_host(wb, sshd, "dev", str(remote.wrapper))
    sid = wb.run("new", "--host", "dev", "--repo", str(rrepo), "--agent", "shell", "--name", "far",
                 *OFF).stdout.strip()
    wb.wait_state(sid, "running", timeout=60)

    async def scenario() -> None:
        app = WorkbenchApp(strict=True)
        async with app.run_test(size=(110, 30)) as pilot:
            # The remote daemon is shared by this module's tests: other sessions may be listed
            # first, so this one is put in view.
            await until(pilot, lambda: sid in app.sessions, "the remote session in the list", 60)
            app.main.show_session(sid)
            await until(pilot, lambda: sid in app.main.panes, "the remote session's pane", 60)
            await until(pilot, lambda: "⇄ dev up" in str(app.main.status.render()), "the link in the status bar", 60)
            assert "@dev" in str(app.main.session_list.get_option(sid).prompt)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.focused, TerminalView), "attach", 60)
            term = app.focused
            await pilot.press(*"echo far-$((6*7))", "enter")
            await until(pilot, lambda: any(line.strip() == "far-42" for line in term.visible_text()),
                        "the remote echo in the pane", 60)
            # a new session from the dialog, on the host of the session in view
            await pilot.press("ctrl+right_square_bracket")
            await pilot.press("ctrl+n")
            await until(pilot, lambda: isinstance(app.screen, NewSessionScreen), "the dialog", 60)
            assert app.screen.query_one("#host", Input).value == "dev"
            assert app.screen.query_one("#repo", Input).value == str(rrepo)
            app.screen.query_one("#name", Input).value = "near"
            app.screen.query_one("#sandbox", Select).value = "off"
            await pilot.press("enter")
            await until(pilot, lambda: any(s["name"] == "near" and s.get("host") == "dev"
                                           for s in app.sessions.values()), "the new remote session", 60)

    asyncio.run(scenario())
    assert "far-42" in remote.run("screen", sid.split(":", 1)[1]).stdout
    assert "near" in {s["name"] for s in json.loads(remote.run("ls", "--json").stdout)}
