"""The UI refuses to start without a terminal, and `attach` refuses an unknown session,
each with one line and a failing exit code (before: escape codes into the pipe, a core
spinning on a closed stdin for minutes, and exit 0)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.wb import Wb


def _run(wb: Wb, *args: str, stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workbench", *args], stdin=stdin, capture_output=True,
                          text=True, env=wb.env, timeout=60)


def test_the_ui_without_a_terminal_says_so(wb: Wb) -> None:
    res = _run(wb)
    assert res.returncode == 2
    assert res.stdout == ""  # no escape codes written into the pipe
    assert res.stderr.startswith("error: the full-screen UI needs a terminal")
    assert "stdin and stdout are not one" in res.stderr
    assert "\x1b" not in res.stderr and "Traceback" not in res.stderr


def test_attach_to_an_unknown_session_fails(wb: Wb) -> None:
    res = _run(wb, "attach", "deadbeef")
    assert res.returncode != 0
    assert res.stdout == ""
    assert "deadbeef" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_attach_to_a_real_session_without_a_terminal_says_so(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo, "--sandbox", "off")
    res = _run(wb, "attach", sid)
    assert res.returncode == 2 and res.stdout == ""
    assert "needs a terminal" in res.stderr


def test_demo_without_a_terminal_prints_what_to_run(wb: Wb, tmp_path: Path) -> None:
    res = _run(wb, "demo", "--dir", str(tmp_path / "demo"))
    assert res.returncode == 0, res.stderr
    assert "not opening the UI" in res.stderr
    assert "what to run:" in res.stdout and "\x1b[" not in res.stdout
