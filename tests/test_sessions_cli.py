"""Sessions end to end: the real CLI, a real daemon process, real PTYs and git repos."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import git, make_repo
from tests.helpers import process_ended, wait_for
from tests.wb import Wb

OFF = ("--sandbox", "off")


def test_create_list_type_read_stop_remove(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, "--name", "first", *OFF)
    assert len(sid) == 8 and "\n" not in sid
    s = wb.wait_state(sid, "running")
    assert s["name"] == "first" and s["branch"] == "wb/first" and s["agent"] == "shell"
    assert s["repo"] == str(repo.resolve())
    for key in ("id", "name", "repo", "branch", "worktree", "agent", "state", "created_at"):
        assert key in s
    worktree = Path(s["worktree"])
    assert worktree.is_dir() and not worktree.is_relative_to(repo)
    assert (worktree / "src" / "app.py").read_text() == "print('hi')\n"
    # the session's branch lives in its own repository; the user's has only workbench refs
    assert git(worktree, "symbolic-ref", "--short", "HEAD").strip() == "wb/first"
    assert git(repo, "branch", "--list", "--format=%(refname:short)", "wb/first").strip() == ""
    refs = git(repo, "for-each-ref", "--format=%(refname)", f"refs/workbench/{sid}/").split()
    assert f"refs/workbench/{sid}/base" in refs
    assert set(refs) <= {f"refs/workbench/{sid}/base", f"refs/workbench/{sid}/snapshot"}

    wb.run("keys", sid, r"echo sum=$((40+2))\r")
    wb.wait_screen(sid, "sum=42")
    wb.run("keys", sid, r"pwd\r")
    wb.wait_screen(sid, str(worktree))

    out = wb.run("ls").stdout
    assert "first" in out and "running" in out and "wb/first" in out

    wb.run("stop", sid)
    s = wb.wait_state(sid, "stopped")
    assert s["reason"] == "stopped by user"

    wb.run("rm", sid)
    assert all(x["id"] != sid for x in wb.json("ls"))
    assert not worktree.exists()
    assert git(repo, "branch", "--list", "--format=%(refname:short)", "wb/first").strip() == ""
    assert git(repo, "for-each-ref", "refs/workbench/").strip() == ""


def test_new_json_and_rm_keep_branch(wb: Wb, repo: Path) -> None:
    obj = json.loads(wb.run("new", "--repo", str(repo), "--name", "j", "--json", *OFF).stdout)
    assert obj["name"] == "j" and obj["branch"] == "wb/j"
    wb.wait_state(obj["id"], "running")
    (Path(obj["worktree"]) / "kept.txt").write_text("work in progress\n")
    wb.run("rm", obj["id"], "--keep-branch")
    assert git(repo, "branch", "--list", "--format=%(refname:short)", "wb/j").strip() == "wb/j"
    # the branch carries the worktree's last state, read from an imported snapshot
    assert git(repo, "show", "wb/j:kept.txt") == "work in progress\n"
    # the name is free again, but the kept branch blocks a session of the same name
    res = wb.run("new", "--repo", str(repo), "--name", "j", *OFF, check=False)
    assert res.returncode == 2 and "branch wb/j already exists" in res.stderr


def test_shell_exit_code_is_kept(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, *OFF)
    wb.wait_state(sid, "running")
    wb.run("keys", sid, r"exit 7\r")
    s = wb.wait_state(sid, "stopped")
    assert s["exit_code"] == 7 and "code 7" in s["reason"]


FULLSCREEN = textwrap.dedent(
    r"""
    import sys, time
    w = sys.stdout.write
    w("\x1b[?1049h\x1b[2J\x1b[H")          # alternate screen, clear
    w("\x1b[1;1HTOP-LEFT")
    w("\x1b[5;10H\x1b[31mred at 5,10\x1b[0m")
    w("\x1b[10;3H  indented")
    w("\x1b[3;1H\x1b[38;2;10;200;30mtruecolor\x1b[0m \x1b[38;5;208m256\x1b[0m")
    w("\x1b[7;1H中文 wide 🙂 end")
    w("\x1b[12;1Hcounter=0")
    sys.stdout.flush()
    for i in range(1, 4):
        time.sleep(0.05)
        w(f"\x1b[12;9H{i}"); sys.stdout.flush()
    sys.stdin.readline()
    w("\x1b[?1049l"); sys.stdout.flush()
    print("back on the main screen")
    sys.stdin.readline()
    """
)


def test_fullscreen_program_shows_correctly(wb: Wb, repo: Path, tmp_path: Path) -> None:
    script = tmp_path / "fs.py"
    script.write_text(FULLSCREEN)
    sid = wb.new(repo, "--agent", f"{sys.executable} {script}", "--size", "60x15", *OFF)
    text = wb.wait_screen(sid, "counter=3")
    rows = text.split("\n")
    assert rows[0] == "TOP-LEFT"
    assert rows[2] == "truecolor 256"
    assert rows[4] == " " * 9 + "red at 5,10"
    assert rows[6] == "中文 wide 🙂 end"
    assert rows[9] == "    indented"
    assert rows[11] == "counter=3"
    ansi = wb.run("screen", sid, "--ansi").stdout
    assert "\x1b[" in ansi and "red at 5,10" in ansi
    # leaving the alternate screen restores the main one
    wb.run("keys", sid, r"\r")
    text = wb.wait_screen(sid, "back on the main screen")
    assert "TOP-LEFT" not in text


def test_resize_reaches_the_program(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, *OFF)
    wb.wait_state(sid, "running")
    assert wb.run("resize", sid, "100x30").stdout.strip() == "100x30"
    wb.run("keys", sid, r"stty size\r")
    wb.wait_screen(sid, "30 100")
    bad = wb.run("resize", sid, "huge", check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error:")


def test_two_sessions_in_two_repos(wb: Wb, repo: Path, repo2: Path) -> None:
    a = wb.new(repo, "--name", "a", *OFF)
    b = wb.new(repo2, "--name", "b", *OFF)
    wb.wait_state(a, "running")
    wb.wait_state(b, "running")
    wb.run("keys", a, r"echo from-a\r")
    wb.run("keys", b, r"cat README.md\r")
    wb.wait_screen(a, "from-a")
    wb.wait_screen(b, "# second")
    assert "# second" not in wb.screen(a)
    listed = {s["id"]: s for s in wb.json("ls")}
    assert listed[a]["repo"] == str(repo.resolve())
    assert listed[b]["repo"] == str(repo2.resolve())
    assert wb.json("daemon", "status")["sessions"] == 2


def test_kill_9_daemon_then_recover_and_restart(wb: Wb, repo: Path, repo2: Path) -> None:
    ids = [wb.new(repo, "--name", "k1", *OFF), wb.new(repo, "--name", "k2", *OFF),
           wb.new(repo2, "--name", "k3", *OFF)]
    for sid in ids:
        wb.wait_state(sid, "running")
    before = {s["id"]: s for s in wb.json("ls")}
    wt = Path(before[ids[0]]["worktree"])
    (wt / "work.txt").write_text("unsaved work\n")
    pid = wb.daemon_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: process_ended(pid), what="daemon death")
    after = {s["id"]: s for s in wb.json("ls")}  # starts a new daemon
    assert wb.daemon_pid() != pid
    assert set(after) == set(ids)
    for sid in ids:
        s = after[sid]
        assert s["state"] == "stopped"
        assert "daemon restarted" in s["reason"]
        for key in ("worktree", "branch", "repo", "name", "base_commit"):
            assert s[key] == before[sid][key]
        assert Path(s["worktree"]).is_dir()
    assert (wt / "work.txt").read_text() == "unsaved work\n"
    wb.run("restart", ids[0])
    wb.wait_state(ids[0], "running")
    wb.run("keys", ids[0], r"cat work.txt\r")
    wb.wait_screen(ids[0], "unsaved work")
    # the old shells did not survive as orphans
    for sid in ids:
        old_pid = before[sid]["pid"]
        if old_pid:
            status = Path(f"/proc/{old_pid}/status")
            alive = status.exists() and "zombie" not in status.read_text().lower()
            assert not alive or old_pid == after[ids[0]].get("pid")


def test_xdg_isolation_between_two_daemons(wb: Wb, repo: Path, tmp_path: Path) -> None:
    sid = wb.new(repo, "--name", "mine", *OFF)
    other_env = dict(os.environ)
    for name in ("CONFIG", "DATA", "STATE", "CACHE", "RUNTIME"):
        d = tmp_path / "other" / name.lower()
        d.mkdir(parents=True)
        other_env[f"XDG_{name}_HOME" if name != "RUNTIME" else "XDG_RUNTIME_DIR"] = str(d)
    (tmp_path / "other" / "runtime").chmod(0o700)
    other = Wb(other_env)
    try:
        assert other.json("ls") == []
        oid = other.new(repo, "--name", "theirs", *OFF)
        st_mine, st_other = wb.json("daemon", "status"), other.json("daemon", "status")
        assert st_mine["pid"] != st_other["pid"]
        assert st_mine["socket"] != st_other["socket"]
        assert [s["id"] for s in wb.json("ls")] == [sid]
        assert [s["id"] for s in other.json("ls")] == [oid]
        assert str(tmp_path / "other" / "data") in other.session(oid)["worktree"]
    finally:
        other.stop()


def test_status_json_and_socket_permissions(wb: Wb) -> None:
    wb.run("daemon", "start")
    st = wb.json("daemon", "status")
    for key in ("pid", "socket", "version", "sessions"):
        assert key in st
    sock = Path(st["socket"])
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    log = Path(os.environ["XDG_STATE_HOME"]) / "workbench" / "daemon.log"
    assert "listening on" in log.read_text()


def test_daemon_start_stop(wb: Wb) -> None:
    assert "daemon running" in wb.run("daemon", "start").stdout
    pid = wb.daemon_pid()
    assert pid and Path(f"/proc/{pid}").exists()
    assert wb.run("daemon", "stop").stdout.strip() == "daemon stopped"
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), what="daemon exit")
    assert wb.run("daemon", "stop").stdout.strip() == "daemon was not running"


# worktree lifecycle


def test_copy_files_setup_command_and_disk_use(wb: Wb, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".gitignore": ".env\nbuilt.txt\n"})
    (repo / ".env").write_text("SECRET=1\n")
    (repo / ".workbench.toml").write_text(
        '[worktree]\ncopy_files = [".env"]\nsetup = "echo setup-ran > built.txt"\n'
    )
    wb.run("trust", str(repo))  # the set-up command runs without a sandbox here (OFF)
    sid = wb.new(repo, *OFF)
    s = wb.wait_state(sid, "running")
    wt = Path(s["worktree"])
    assert (wt / ".env").read_text() == "SECRET=1\n"
    assert (wt / "built.txt").read_text() == "setup-ran\n"
    assert s["disk_bytes"] > 0
    assert any(e["kind"] == "setup" and e["data"]["exit_code"] == 0 for e in wb.json("events", sid))


def test_failing_setup_command_is_an_error_state(wb: Wb, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (repo / ".workbench.toml").write_text('[worktree]\nsetup = ["sh", "-c", "echo boom; exit 3"]\n')
    wb.run("trust", str(repo))
    sid = wb.new(repo, *OFF)
    s = wb.wait_state(sid, "error")
    assert "set-up command failed (exit 3)" in s["reason"] and "boom" in s["reason"]
    assert Path(s["worktree"]).is_dir()


def test_in_place_session_runs_in_main_checkout(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, "--in-place", *OFF)
    s = wb.wait_state(sid, "running")
    assert s["worktree"] == str(repo.resolve()) and s["branch"] == "main"
    wb.run("rm", sid)
    assert repo.is_dir() and (repo / "README.md").exists()
    assert git(repo, "branch", "--list", "main").strip().endswith("main")


def test_gc_removes_orphaned_worktrees(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, *OFF)
    s = wb.wait_state(sid, "running")
    root = Path(s["worktree"]).parent
    orphan = root / "orphan-dir"
    orphan.mkdir()
    (orphan / "f").write_text("x")
    out = wb.run("gc").stdout
    assert str(orphan) in out and not orphan.exists()
    assert Path(s["worktree"]).is_dir()


# bad input


def test_not_a_git_repo(wb: Wb, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    res = wb.run("new", "--repo", str(plain), *OFF, check=False)
    assert res.returncode == 2
    assert res.stderr.startswith("error: not a git repository") and "Traceback" not in res.stderr


def test_missing_repo_path(wb: Wb, tmp_path: Path) -> None:
    res = wb.run("new", "--repo", str(tmp_path / "nope"), *OFF, check=False)
    assert res.returncode == 2 and "does not exist" in res.stderr


def test_repo_without_commits(wb: Wb, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    res = wb.run("new", "--repo", str(empty), *OFF, check=False)
    assert res.returncode == 2 and "no commits yet" in res.stderr


def test_dirty_main_checkout_warns_and_keeps_changes(wb: Wb, repo: Path) -> None:
    (repo / "README.md").write_text("local edit\n")
    res = wb.run("new", "--repo", str(repo), *OFF)
    assert "uncommitted change" in res.stderr and "not in the session" in res.stderr
    s = wb.session(res.stdout.strip())
    assert (Path(s["worktree"]) / "README.md").read_text() == "# demo\n"
    assert (repo / "README.md").read_text() == "local edit\n"


def test_detached_head(wb: Wb, repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "--detach")
    res = wb.run("new", "--repo", str(repo), *OFF)
    assert "detached" in res.stderr
    assert wb.session(res.stdout.strip())["base_commit"] == head


def test_base_ref_that_does_not_exist(wb: Wb, repo: Path) -> None:
    res = wb.run("new", "--repo", str(repo), "--base", "no-such-branch", *OFF, check=False)
    assert res.returncode == 2 and "base ref 'no-such-branch' does not exist" in res.stderr
    assert git(repo, "branch", "--list", "wb/*").strip() == ""


def test_base_ref_starting_with_dash_is_not_an_option(wb: Wb, repo: Path, tmp_path: Path) -> None:
    target = tmp_path / "written-by-git"
    res = wb.run("new", "--repo", str(repo), f"--base=--output={target}", *OFF, check=False)
    assert res.returncode == 2 and "may not" in res.stderr
    assert not target.exists()


def test_duplicate_session_name(wb: Wb, repo: Path) -> None:
    wb.new(repo, "--name", "dup", *OFF)
    res = wb.run("new", "--repo", str(repo), "--name", "dup", *OFF, check=False)
    assert res.returncode == 2 and "already exists" in res.stderr
    assert len(wb.json("ls")) == 1


@pytest.mark.parametrize("name", ["-rf", "a/../../etc", "x/..", "a\nb", "..", "bad/name"])
def test_bad_session_names(wb: Wb, repo: Path, name: str) -> None:
    res = wb.run("new", "--repo", str(repo), f"--name={name}", *OFF, check=False)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error:") and "Traceback" not in res.stderr
    assert git(repo, "branch", "--list", "wb/*").strip() == ""


def test_missing_shell_or_agent_command(wb: Wb, repo: Path) -> None:
    res = wb.run("new", "--repo", str(repo), "--agent", "/nonexistent/shell", *OFF, check=False)
    assert res.returncode == 2 and "not found" in res.stderr
    res = wb.run("new", "--repo", str(repo), "--agent", "no-such-agent-cli", *OFF, check=False)
    assert res.returncode == 2 and "not found on PATH" in res.stderr
    assert wb.json("ls") == []


def test_unknown_session_id_exits_2(wb: Wb) -> None:
    for args in (["screen", "zzzz"], ["keys", "zzzz", "x"], ["stop", "zzzz"], ["rm", "zzzz"]):
        res = wb.run(*args, check=False)
        assert res.returncode == 2, args
        assert res.stderr.startswith("error: no session 'zzzz'")


def test_garbage_bytes_are_shown_safely(wb: Wb, repo: Path, tmp_path: Path) -> None:
    script = tmp_path / "garbage.py"
    script.write_text(
        "import os, sys, random\n"
        "r = random.Random(7)\n"
        "for _ in range(200):\n"
        "    os.write(1, bytes(r.randrange(256) for _ in range(512)))\n"
        "os.write(1, b'\\x18\\x1b\\\\\\x1bc\\x1b[?1049h\\x1b[H\\x1b[2J\\x1b]0;title\\x07')\n"
        "os.write(1, b'\\xff\\xfe\\x1b[999;999H\\x1b[99999X\\x1b[1;1Hend-marker')\n"
        "sys.stdin.readline()\n"
    )
    sid = wb.new(repo, "--agent", f"{sys.executable} {script}", *OFF)
    wb.wait_screen(sid, "end-marker")
    assert wb.json("daemon", "status")["sessions"] == 1
    out = wb.run("screen", sid).stdout
    assert "\x1b" not in out  # plain screen output carries no escapes


def test_bad_config_file_names_file_line_and_key(wb: Wb, repo: Path) -> None:
    cfg = Path(os.environ["XDG_CONFIG_HOME"]) / "workbench" / "config.toml"
    cfg.write_text('[session]\nagent = "shell"\nsandbox = "nope"\n')
    res = wb.run("new", "--repo", str(repo), check=False)
    assert res.returncode == 2
    assert f"{cfg}:3" in res.stderr and "session.sandbox" in res.stderr
    cfg.write_text("[session\n")
    res = wb.run("new", "--repo", str(repo), check=False)
    assert res.returncode == 2 and str(cfg) in res.stderr and "invalid TOML" in res.stderr


def test_headless_core_does_not_import_textual() -> None:
    code = (
        "import sys, pkgutil, importlib, workbench.core, workbench.agent, workbench.daemon\n"
        "for pkg in (workbench.core, workbench.agent, workbench.daemon):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "import workbench.cli, workbench.cli_full\n"
        "bad = [m for m in sys.modules if m == 'textual' or m.startswith('textual.')]\n"
        "assert not bad, bad\n"
        "print('clean')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"


def test_concurrent_new_in_one_repo(wb: Wb, repo: Path) -> None:
    """Four `new` at once in one repo: git's worktree bookkeeping must not race."""
    from concurrent.futures import ThreadPoolExecutor

    wb.run("daemon", "start")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: wb.run("new", "--repo", str(repo), *OFF, check=False), range(4)))
    assert [r.returncode for r in results] == [0, 0, 0, 0], [r.stderr for r in results]
    ids = {r.stdout.strip() for r in results}
    listed = wb.json("ls")
    assert {s["id"] for s in listed} == ids
    assert len({s["name"] for s in listed}) == 4
    assert all(Path(s["worktree"]).is_dir() for s in listed)
