"""Sandbox resource caps: tmpfs size and process count (core/limits.py).

The attack tests run real bubblewrap: a session fills /tmp and /run past the cap, and
forks until it cannot. As root the process cap needs a writable pids cgroup (the kernel
never applies RLIMIT_NPROC to host root); as an ordinary user RLIMIT_NPROC holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_repo
from tests.helpers import wait_for
from workbench import doctor
from workbench.config import Config, SandboxSettings
from workbench.core import bwrap_argv, limits, sandbox_paths, sandbox_policy, sandbox_probe

FORKER = """
import errno, os, time
n = 0
try:
    while n < {tries}:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
    print("unbounded", n)
except OSError as e:
    print("capped", n, errno.errorcode[e.errno])
"""


def _spec(tmp_path: Path, **kw: object) -> sandbox_policy.SandboxSpec:
    repo = make_repo(tmp_path / "r")
    home = tmp_path / "home"
    home.mkdir()
    # An in-place strict session: the simplest real layout bwrap accepts.
    base: dict[str, object] = {
        "mode": "strict", "worktree": repo, "repo": repo, "git_common_dir": repo / ".git",
        "worktree_gitdir": repo / ".git", "branch": "main", "home": home,
    }
    base.update(kw)
    return sandbox_policy.SandboxSpec(**base)  # type: ignore[arg-type]


def _run(spec: sandbox_policy.SandboxSpec, script: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    with bwrap_argv.wrap(spec, ["/bin/sh", "-c", script]) as cmd:
        return subprocess.run(cmd.argv, env=cmd.env, pass_fds=cmd.pass_fds, cwd=cmd.cwd,
                              capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def real_bwrap() -> None:
    res = sandbox_probe.probe()
    if not res.ok:
        pytest.skip(f"bubblewrap cannot run here: {res.reason}")


# ------------------------------------------------------------------------ settings


def test_defaults_and_settings_reach_the_spec() -> None:
    s = Config().sandbox
    assert (s.tmp_size_mb, s.max_processes) == (512, 1024)
    spec = sandbox_policy.SandboxSpec.from_settings(
        SandboxSettings(tmp_size_mb=64, max_processes=99), mode="strict", worktree=Path("/w"),
        repo=Path("/w"), git_common_dir=Path("/w/.git"), worktree_gitdir=Path("/w/.git"),
        branch="main", home=Path("/h"))
    assert (spec.tmp_size_mb, spec.max_processes) == (64, 99)


def test_tmpfs_args_put_size_right_before_tmpfs() -> None:
    assert limits.tmpfs_args("/tmp", 2, True) == ["--size", str(2 << 20), "--tmpfs", "/tmp"]
    assert limits.tmpfs_args("/tmp", 2, False) == ["--tmpfs", "/tmp"]
    assert limits.tmpfs_args("/tmp", 0, True) == ["--tmpfs", "/tmp"]


def test_nproc_prefix_without_prlimit_uses_python(monkeypatch: pytest.MonkeyPatch) -> None:
    assert limits.nproc_prefix(0) == []
    monkeypatch.setattr(sandbox_paths, "which", lambda _name: None)
    pre = limits.nproc_prefix(7)
    assert pre[0] == sys.executable and pre[-1] == "7"
    # exec'd straight into cat: no fork, which an ordinary user already over 7 could not do
    out = subprocess.run([*pre, "cat", "/proc/self/limits"], capture_output=True,
                         text=True, check=True).stdout
    assert any(line.startswith("Max processes") and line.split()[2:4] == ["7", "7"]
               for line in out.splitlines())


def test_doctor_reports_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "pids_cgroup_parent", lambda: None)
    monkeypatch.setattr(limits.os, "geteuid", lambda: 0)
    rep = limits.describe(None, 512, 1024)
    assert not rep.ok and "NOT capped" in rep.tmp and "NOT capped" in rep.processes
    check = doctor.check_limits()
    assert check.name == "limits" and check.detail


# --------------------------------------------------------------------- real bwrap


@pytest.mark.sandbox
@pytest.mark.usefixtures("real_bwrap")
def test_writing_past_the_tmp_cap_fails_with_enospc(tmp_path: Path) -> None:
    bwrap = bwrap_argv.find_bwrap()
    assert bwrap
    if not limits.tmpfs_size_supported(bwrap):
        pytest.skip("this bubblewrap has no --size (needs 0.7+)")
    spec = _spec(tmp_path, tmp_size_mb=4)
    for d in ("/tmp", "/run"):
        res = _run(spec, f"head -c 16777216 /dev/zero > {d}/fill; echo rc=$?; wc -c < {d}/fill")
        assert "No space left on device" in res.stderr, res.stderr
        assert "rc=1" in res.stdout
        assert int(res.stdout.split()[-1]) <= 4 << 20


@pytest.mark.sandbox
@pytest.mark.usefixtures("real_bwrap")
def test_a_fork_loop_stops_at_the_process_cap(tmp_path: Path) -> None:
    if os.geteuid() == 0 and limits.pids_cgroup_parent() is None:
        pytest.skip("as root only a pids cgroup caps processes, and none is writable here")
    cap = 40
    spec = _spec(tmp_path, max_processes=cap, process_group=f"test-{os.getpid()}-{tmp_path}")
    script = FORKER.format(tries=400)
    res = _run(spec, f"exec {sys.executable} -c '{script}'")
    words = res.stdout.split()
    assert words[:1] == ["capped"], (res.stdout, res.stderr)
    assert int(words[1]) < cap and words[2] == "EAGAIN"
    # The host is unharmed: it still forks, and the sandbox's processes are gone.
    assert subprocess.run(["true"], check=False).returncode == 0
    procs = limits.session_cgroup(spec.process_group or "", cap)
    if procs is not None:  # the pid namespace's teardown kills the sleepers
        wait_for(lambda: procs.read_text().strip() == "", 10, what="sandbox processes gone")


@pytest.mark.sandbox
@pytest.mark.usefixtures("real_bwrap")
def test_limits_off_means_no_caps(tmp_path: Path) -> None:
    spec = _spec(tmp_path, tmp_size_mb=0, max_processes=0)
    with bwrap_argv.wrap(spec, ["true"]) as cmd:
        assert "--size" not in cmd.argv and "prlimit" not in " ".join(cmd.argv)
        assert cmd.argv[0] == bwrap_argv.find_bwrap()


@pytest.mark.sandbox
@pytest.mark.usefixtures("real_bwrap")
def test_default_caps_are_in_the_argv(tmp_path: Path) -> None:
    bwrap = bwrap_argv.find_bwrap()
    assert bwrap
    with bwrap_argv.wrap(_spec(tmp_path), ["true"]) as cmd:
        inner = cmd.argv[cmd.argv.index("--") + 1 :]
        assert inner == [*limits.nproc_prefix(1024), "true"]
        if limits.tmpfs_size_supported(bwrap):
            for d in ("/tmp", "/run"):
                assert f"--size\0{512 << 20}\0--tmpfs\0{d}" in "\0".join(cmd.argv)


def test_old_bwrap_without_size_is_detected(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'usage: bwrap [OPTIONS...] [--] COMMAND\n    --tmpfs DEST'\n")
    fake.chmod(0o755)
    assert not limits.tmpfs_size_supported(str(fake))
    assert "NOT capped" in limits.describe(str(fake), 512, 0).tmp
