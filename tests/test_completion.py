"""`workbench completion bash|zsh|fish`: the script loads in the shell, completes commands
and the ids of running sessions, and never starts a daemon to do it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.wb import Wb


def _complete(wb: Wb, words: str, cword: int) -> list[str]:
    env = {**wb.env, "_WORKBENCH_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    out = subprocess.run([sys.executable, "-m", "workbench"], env=env, capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    return [line.split(",", 1)[1] for line in out.stdout.splitlines() if "," in line]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_for_each_shell(wb: Wb, shell: str) -> None:
    out = wb.run("completion", shell).stdout
    assert "_WORKBENCH_COMPLETE" in out
    assert f"{shell}_complete" in out


def test_the_bash_script_loads_in_bash(wb: Wb) -> None:
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    script = wb.run("completion", "bash").stdout
    res = subprocess.run(["bash", "-c", script + "\ncomplete -p workbench"], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stderr
    assert "_workbench_completion" in res.stdout


def test_an_unknown_shell_is_a_usage_error(wb: Wb) -> None:
    res = wb.run("completion", "tcsh", check=False)
    assert res.returncode == 2 and "tcsh" in res.stderr


def test_commands_and_session_ids_complete(wb: Wb, repo: Path) -> None:
    assert "diff" in _complete(wb, "workbench di", 1)
    sid = wb.new(repo, "--sandbox", "off", "--name", "alpha")
    assert _complete(wb, "workbench screen ", 2) == [sid]
    assert _complete(wb, f"workbench diff {sid[:3]}", 2) == [sid]
    assert _complete(wb, "workbench approve zzz", 2) == []


def test_completing_a_session_never_starts_a_daemon(wb: Wb) -> None:
    assert wb.daemon_pid() is None
    assert _complete(wb, "workbench screen ", 2) == []
    assert wb.daemon_pid() is None
