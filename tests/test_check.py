"""core.check: the check command with a timeout, its output tail, and its process group."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from workbench.core.check import check_argv, run_check, tail_text
from workbench.daemon.sandboxing import PlainCommand
from workbench.errors import UsageError


def sh(script: str) -> PlainCommand:
    return PlainCommand(["/bin/sh", "-c", script], dict(os.environ))


def test_pass_and_fail_with_tail(tmp_path: Path) -> None:
    ok = asyncio.run(run_check(sh("echo fine"), tmp_path, timeout_s=10, command="echo fine"))
    assert ok.status == "passed" and ok.exit_code == 0 and ok.tail == "fine"
    script = "for i in $(seq 1 100); do echo line $i; done; echo oops >&2; exit 3"
    bad = asyncio.run(run_check(sh(script), tmp_path, timeout_s=10, command="t"))
    assert bad.status == "failed" and bad.exit_code == 3
    lines = bad.tail.splitlines()
    assert len(lines) == 40 and lines[-1] == "oops" and lines[0] == "line 62"


def test_runs_in_cwd_and_strips_escapes(tmp_path: Path) -> None:
    (tmp_path / "marker").write_text("here\n")
    res = asyncio.run(run_check(sh("cat marker; printf '\\033[31mred\\033[0m\\n'"), tmp_path,
                                timeout_s=10, command="x"))
    assert res.tail == "here\nred"


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pidfile}; echo started; wait"
    res = asyncio.run(run_check(sh(script), tmp_path, timeout_s=0.5, command="slow"))
    assert res.status == "failed" and res.exit_code is None and "timed out after 0.5 s" in res.reason
    assert res.tail.startswith("started") and "[workbench: timed out" in res.tail
    child = int(pidfile.read_text())
    for _ in range(100):
        if not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]:
            break
        time.sleep(0.02)
    else:
        pytest.fail("the check's background child survived")


def test_background_child_does_not_hold_the_result(tmp_path: Path) -> None:
    pidfile = tmp_path / "bg.pid"
    # Waiting for the 600 s child would trip pytest-timeout (no wall-clock assert).
    res = asyncio.run(run_check(sh(f"sleep 600 & echo $! > {pidfile}; echo done"), tmp_path, timeout_s=300,
                                command="bg"))
    assert res.status == "passed" and res.tail == "done"
    child = int(pidfile.read_text())
    time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


def test_missing_command_fails_with_reason(tmp_path: Path) -> None:
    cmd = PlainCommand([str(tmp_path / "nope")], dict(os.environ))
    res = asyncio.run(run_check(cmd, tmp_path, timeout_s=5, command="nope"))
    assert res.status == "failed" and res.exit_code is None and "could not start" in res.reason


def test_argv_and_tail_helpers() -> None:
    assert check_argv("pytest -q") == ["/bin/sh", "-c", "pytest -q"]
    assert check_argv(["npm", "test"]) == ["npm", "test"]
    for empty in (None, "", "  ", []):
        with pytest.raises(UsageError, match="no check command"):
            check_argv(empty)
    assert tail_text(b"a\r\nb\n\n", lines=1) == "b"
    assert len(tail_text(b"x" * 10_000)) == 4000
