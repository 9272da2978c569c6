"""The launcher `make install` writes (workbench/launcher.py): the fast commands run without
`site` (a fifth of their own cost), print what `python -m workbench` prints, and every other
command loads `site` first, so click, the UI and the daemon see a normal start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.wb import Wb
from workbench import launcher


def run(exe: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60,
                          env=env, stdin=subprocess.DEVNULL)


def imported_site(proc: subprocess.CompletedProcess[str]) -> bool:
    """With PYTHONVERBOSE, Python names every module it imports on stderr."""
    return any(line.startswith("import 'site'") for line in proc.stderr.splitlines())


def test_fast_commands_skip_site_and_print_the_same(wb: Wb, repo: Path, tmp_path: Path) -> None:
    exe = tmp_path / "bin" / "workbench"
    exe.parent.mkdir()
    exe.write_text("pip's console script\n")
    assert launcher.main([str(exe)]) == 0
    assert exe.read_text().startswith(f"#!{sys.executable} -S\n")
    assert os.access(exe, os.X_OK)

    sid = wb.new(repo, "--agent", "cat", "--sandbox", "off")
    wb.run("keys", sid, "hello launcher")
    wb.wait_screen(sid, "hello launcher")
    for args in (["screen", sid], ["log", sid]):
        fast = run(exe, *args, env=wb.env)
        assert fast.returncode == 0, fast.stderr
        assert fast.stdout == wb.run(*args).stdout
    listed = run(exe, "ls", env=wb.env)  # its columns move on their own (changes, age)
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].startswith(sid)

    verbose = {**wb.env, "PYTHONVERBOSE": "1"}
    fast = run(exe, "screen", sid, env=verbose)
    assert fast.returncode == 0 and "hello launcher" in fast.stdout
    assert not imported_site(fast), "the fast path imported site"
    slow = run(exe, "new", "--help", env=verbose)  # click: site is loaded first
    assert slow.returncode == 0 and "Usage: workbench new" in slow.stdout
    assert imported_site(slow)


def test_the_makefile_installs_the_launcher() -> None:
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert makefile.count("-m workbench.launcher $(BIN)/workbench") == 2  # both install stamps


def test_a_bad_call_is_a_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert launcher.main([]) == 2
    assert "usage: python -m workbench.launcher PATH" in capsys.readouterr().err
