"""Fault injection, the parts without a model: the disk full under the
store and the worktrees, a worktree deleted behind the daemon's back, the main checkout made
dirty during a merge, kill -9 of the UI, and kill -9 of the daemon during a merge.

For each: no data is lost, what is shown is true, and the user can carry on.
The built-in agent's faults (model endpoint, kill -9 mid-stream / mid-patch) are in
tests/test_agent_faults.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git
from tests.hardening_support import fd_count, kill9_daemon, worktree_list
from tests.helpers import wait_for
from tests.wb import Wb

OFF = ("--sandbox", "off")


# --------------------------------------------------------------------------- disk full


@pytest.fixture
def small_data_fs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """XDG_DATA_HOME (the store and every worktree) on an 8 MiB tmpfs. Request it before `wb`,
    which copies the environment."""
    if os.getuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs this file as root)")
    mnt = tmp_path / "smallfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mnt)], check=True)
    monkeypatch.setenv("XDG_DATA_HOME", str(mnt))
    try:
        yield mnt
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(mnt)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(fs: Path) -> Path:
    """Fill the file system to the last byte (smaller writes once big ones no longer fit)."""
    filler = fs / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def test_disk_full_under_the_store_and_worktrees(small_data_fs: Path, wb: Wb, repo: Path) -> None:
    assert wb.env["XDG_DATA_HOME"] == str(small_data_fs)
    first = wb.new(repo, *OFF, "--name", "before-full")
    assert Path(wb.session(first)["worktree"]).is_relative_to(small_data_fs)
    wb.wait_state(first, "running")
    wb.run("keys", first, r"echo typed-before\r")
    wb.wait_screen(first, "typed-before")
    events_before = wb.json("events", first)
    filler = _fill(small_data_fs)

    # Creating a session needs disk: a clear error, exit 1, and nothing half-made left behind.
    res = wb.run("new", "--repo", str(repo), *OFF, "--name", "while-full", check=False)
    assert res.returncode == 1, res
    assert res.stderr.startswith("error:") and "Traceback" not in res.stderr
    assert "space" in res.stderr.lower() or "full" in res.stderr.lower(), res.stderr
    assert [s["name"] for s in wb.json("ls")] == ["before-full"]
    assert git(repo, "branch", "--list", "wb/while-full").strip() == ""
    made = sorted(p.name for p in (small_data_fs / "workbench" / "worktrees").iterdir())
    assert len(made) == 1 and made[0].startswith("before-full-"), made
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/workbench/").count("/base") == 1

    # Reading works, typing works; a state change that cannot be stored says why.
    assert wb.json("events", first)[: len(events_before)] == events_before
    wb.run("keys", first, r"echo typed-while-full\r")
    wb.wait_screen(first, "typed-while-full")
    # State changes write the store: stop/restart until the WAL has no room left either.
    failures = []
    for _ in range(15):
        for cmd in ("stop", "restart"):
            res = wb.run(cmd, first, check=False)
            if res.returncode != 0:
                failures.append(res.stderr)
    assert failures, "the store never ran out of space"
    for err in failures:
        assert err.startswith("error:") and "is full; the change was not saved" in err, err
    s = wb.session(first)
    assert (s["state"] == "running") == s["alive"], s  # what is shown is what runs
    assert wb.json("daemon", "status")["pid"] == wb.daemon_pid()

    # Space comes back: everything carries on and nothing stored before was lost.
    filler.unlink()
    wb.run("stop", first)
    assert wb.session(first)["state"] == "stopped"
    evs = wb.json("events", first)
    assert evs[: len(events_before)] == events_before
    wb.run("restart", first)
    wb.wait_state(first, "running")
    second = wb.new(repo, *OFF, "--name", "while-full")
    wb.wait_state(second, "running")
    wb.run("rm", second)
    wb.run("rm", first)
    assert wb.json("ls") == []


def test_disk_full_when_the_daemon_starts(small_data_fs: Path, wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, *OFF, "--name", "kept")
    wb.wait_state(sid, "running")
    wb.stop()
    _fill(small_data_fs)
    # The daemon reopens a store on a full disk: it starts, lists what it has, and says so if not.
    res = wb.run("ls", "--json", check=False)
    if res.returncode == 0:
        assert "kept" in res.stdout
    else:
        assert res.stderr.startswith("error:") and "Traceback" not in res.stderr
    (small_data_fs / "filler").unlink()
    wb.stop()
    assert [s["name"] for s in wb.json("ls")] == ["kept"]


# --------------------------------------------------------------------------- worktree deleted


def test_worktree_deleted_behind_the_daemons_back(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, *OFF, "--name", "gone")
    s = wb.wait_state(sid, "running")
    wt = Path(s["worktree"])
    (wt / "work.txt").write_text("unsaved work\n")
    git(wt, "add", "work.txt")
    git(wt, "commit", "-qm", "session work")
    # Work survives what the last diff imported into the user's repository.
    assert "work.txt" in wb.run("diff", sid, "--stat").stdout
    shutil.rmtree(wt)
    # The shell's cwd vanished under it; the session is still listed and says what is wrong.
    res = wb.run("restart", sid, check=False)
    assert res.returncode == 1 and "worktree missing" in res.stderr, res.stderr
    diff = wb.run("diff", sid, check=False)
    assert diff.returncode == 1 and "worktree missing" in diff.stderr, diff.stderr
    assert "Traceback" not in diff.stderr + res.stderr
    wb.run("stop", sid)
    assert wb.session(sid)["state"] == "stopped"
    # After a daemon restart the reason is on the session.
    wb.stop()
    assert "worktree missing" in wb.session(sid)["reason"]
    # The imported commits outlive the worktree: keep them as a branch when removing.
    wb.run("rm", sid, "--keep-branch")
    assert git(repo, "show", "wb/gone:work.txt") == "unsaved work\n"
    assert len(worktree_list(repo)) == 1
    assert git(repo, "for-each-ref", "refs/workbench/").strip() == ""
    assert wb.json("ls") == []


# --------------------------------------------------------------------------- dirty main checkout


def test_main_checkout_made_dirty_during_a_merge(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, *OFF, "--name", "to-merge")
    wt = Path(wb.wait_state(sid, "running")["worktree"])
    (wt / "README.md").write_text("# demo\nfrom the session\n")
    (wt / "new.txt").write_text("session file\n")
    main_tip = git(repo, "rev-parse", "main").strip()
    # The user edits the same file in the main checkout (and stages another) meanwhile.
    (repo / "README.md").write_text("# demo\nuser's own edit\n")
    (repo / "src" / "app.py").write_text("print('user')\n")
    git(repo, "add", "src/app.py")
    res = wb.run("merge", sid, "--message", "session work", check=False)
    assert res.returncode == 1 and "uncommitted changes" in res.stderr and "nothing changed" in res.stderr
    assert "Traceback" not in res.stderr
    # Nothing lost on either side, and nothing moved.
    assert (repo / "README.md").read_text() == "# demo\nuser's own edit\n"
    assert git(repo, "diff", "--cached", "--name-only").strip() == "src/app.py"
    assert git(repo, "rev-parse", "main").strip() == main_tip
    assert (wt / "README.md").read_text() == "# demo\nfrom the session\n"
    assert (wt / "new.txt").read_text() == "session file\n"
    # The change count follows the worktree's watcher: given time on a loaded machine.
    wait_for(lambda: wb.session(sid)["files_changed"] == 2, 30, what="the session's 2 changed files")
    # The user commits their edit; the merge now conflicts on README and says so, cleanly.
    git(repo, "commit", "-qam", "user edit")
    user_tip = git(repo, "rev-parse", "main").strip()
    res = wb.run("merge", sid, "--message", "session work", check=False)
    if res.returncode == 0:
        assert "from the session" in git(repo, "show", "main:README.md")
    else:
        assert res.stderr.startswith("error:") and "Traceback" not in res.stderr
        assert git(repo, "rev-parse", "main").strip() == user_tip
        assert git(repo, "status", "--porcelain").strip() == ""
        assert not (repo / ".git" / "MERGE_HEAD").exists() and not (repo / ".git" / "index.lock").exists()
        # the session's work is intact and a different strategy (or a fix) is possible
        assert (wt / "new.txt").read_text() == "session file\n"


# --------------------------------------------------------------------------- kill -9 of the UI


def test_kill9_of_the_ui_leaves_daemon_and_sessions_intact(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, *OFF, "--name", "under-ui")
    wb.wait_state(sid, "running")
    dpid = wb.daemon_pid()
    assert dpid
    base_fds = fd_count(dpid)
    base_clients = wb.json("daemon", "status")["clients"]  # counts the asking CLI itself
    import pty

    master, slave = pty.openpty()
    env = {**wb.env, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    ui = subprocess.Popen([sys.executable, "-m", "workbench", "attach", sid], stdin=slave, stdout=slave,
                          stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    try:
        wait_for(lambda: wb.json("daemon", "status")["clients"] > base_clients, 20, what="the UI to connect")
        time.sleep(0.5)
        wb.run("keys", sid, r"echo while-ui-$((3*3))\r")
        os.kill(ui.pid, signal.SIGKILL)
        ui.wait(10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(ui.pid, signal.SIGKILL)
        os.close(master)
    # The daemon dropped the dead client, kept the session and its output, and has no fd left over.
    wait_for(lambda: wb.json("daemon", "status")["clients"] == base_clients, 10, what="the dead UI to be dropped")
    assert wb.daemon_pid() == dpid
    assert wb.session(sid)["state"] == "running"
    wb.wait_screen(sid, "while-ui-9")
    wait_for(lambda: fd_count(dpid) <= base_fds, 10, what=f"daemon fds back to {base_fds}")
    # and a new UI/client can attach again
    wb.run("keys", sid, r"echo after-ui\r")
    wb.wait_screen(sid, "after-ui")


# --------------------------------------------------------------------------- kill -9 during a merge


_SLOW_GIT = """#!/bin/sh
# Stands in for git: the fast-forward of the main checkout (`git merge --ff-only`) pauses, so the
# test can kill the daemon right there; the real git then runs on, orphaned, as it would.
for a in "$@"; do
  if [ "$a" = merge ] && [ "$(pwd -P)" = "$WB_SLOW_DIR" ]; then touch "$WB_SLOW_MARK"; sleep 2; break; fi
done
exec "$WB_REAL_GIT" "$@"
"""


def _pause_merges(wb: Wb, repo: Path, tmp_path: Path) -> Path:
    """Put the slow git first on the daemon's PATH; returns the file that marks the pause."""
    real_git = shutil.which("git")
    assert real_git
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "git").write_text(_SLOW_GIT)
    (shim / "git").chmod(0o755)
    mark = tmp_path / "in-merge"
    wb.env.update(PATH=f"{shim}:{wb.env['PATH']}", WB_REAL_GIT=real_git, WB_SLOW_DIR=str(repo.resolve()),
                  WB_SLOW_MARK=str(mark))
    return mark


def _merge_in_background(wb: Wb, sid: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "workbench", "merge", sid, "--message", "feature"],
                            env=wb.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_main_checkout_made_dirty_while_a_merge_runs(wb: Wb, repo: Path, tmp_path: Path) -> None:
    mark = _pause_merges(wb, repo, tmp_path)
    sid = wb.new(repo, *OFF, "--name", "racing-merge")
    wt = Path(wb.wait_state(sid, "running")["worktree"])
    (wt / "README.md").write_text("# demo\nfrom the session\n")
    main_tip = git(repo, "rev-parse", "main").strip()
    merge = _merge_in_background(wb, sid)
    wait_for(mark.exists, 30, what="the merge to reach the main checkout")
    (repo / "README.md").write_text("# demo\nthe user typed this meanwhile\n")  # while git is paused
    _, err = merge.communicate(timeout=30)
    assert merge.returncode == 1 and err.startswith("error:") and "Traceback" not in err, err
    assert "README.md" in err, err  # says which file is in the way
    # git refused to overwrite the edit: it is intact, main did not move, the session kept its work.
    assert (repo / "README.md").read_text() == "# demo\nthe user typed this meanwhile\n"
    assert git(repo, "rev-parse", "main").strip() == main_tip
    assert (wt / "README.md").read_text() == "# demo\nfrom the session\n"
    assert git(repo, "status", "--porcelain").strip() == "M README.md"
    assert wb.session(sid)["state"] == "running"
    # The user puts their edit away; the merge then goes through.
    git(repo, "stash", "-q")
    wb.env["PATH"] = wb.env["PATH"].split(":", 1)[1]
    mark.unlink()
    wb.run("merge", sid, "--message", "feature")
    assert git(repo, "show", "main:README.md") == "# demo\nfrom the session\n"


def test_kill9_of_the_daemon_during_a_merge(wb: Wb, repo: Path, tmp_path: Path) -> None:
    mark = _pause_merges(wb, repo, tmp_path)
    sid = wb.new(repo, *OFF, "--name", "killed-merge")
    wt = Path(wb.wait_state(sid, "running")["worktree"])
    (wt / "feature.txt").write_text("feature\n")
    main_tip = git(repo, "rev-parse", "main").strip()
    merge = _merge_in_background(wb, sid)
    wait_for(mark.exists, 30, what="the merge to reach the main checkout")
    dpid = kill9_daemon(wb)
    _, err = merge.communicate(timeout=30)
    assert merge.returncode == 1 and err.startswith("error:") and "Traceback" not in err, err
    # Let the orphaned git finish: then the repository must be consistent.
    time.sleep(2.5)
    assert not (repo / ".git" / "index.lock").exists()
    # The daemon comes back with the next command, and the state shown is true.
    wb.env["PATH"] = wb.env["PATH"].split(":", 1)[1]
    s = wb.session(sid)
    assert wb.daemon_pid() != dpid
    assert s["state"] == "stopped" and "daemon restarted" in s["reason"]
    assert git(repo, "status", "--porcelain").strip() == ""
    if git(repo, "rev-parse", "main").strip() == main_tip:
        # It did not land: the work is still in the session and merges now.
        res = wb.run("merge", sid, "--message", "feature", check=False)
        assert res.returncode == 0, res.stderr
    else:
        # It landed (git finished after the daemon died): merging again says so, changes nothing.
        tip = git(repo, "rev-parse", "main").strip()
        res = wb.run("merge", sid, "--message", "feature", check=False)
        assert res.stderr.startswith("error:") and "nothing to merge" in res.stderr, res.stderr
        assert git(repo, "rev-parse", "main").strip() == tip
    assert git(repo, "show", "main:feature.txt") == "feature\n"
    assert git(repo, "status", "--porcelain").strip() == ""
    wb.run("restart", sid)
    wb.wait_state(sid, "running")


def test_sigterm_as_soon_as_the_pid_file_appears_is_an_orderly_stop(isolated_env: Path) -> None:
    """Whoever finds the pid file may stop the daemon at once: it must stop in order (exit
    0, socket and pid file removed), never die by the signal with both left behind."""
    import os
    import signal

    from workbench import paths

    pid_file = paths.pid_file()
    for _ in range(5):
        proc = subprocess.Popen([sys.executable, "-m", "workbench", "daemon", "run"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not pid_file.exists():
                assert proc.poll() is None, "the daemon exited before it started"
                time.sleep(0.0005)
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert not pid_file.exists() and not paths.socket_path().exists()
