"""End to end: the real `workbench` UI in a real terminal (tmux), driven as a person would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.wb import Wb
from workbench import paths

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, cols: int, rows: int) -> None:
        self.sock = f"wb-e2e-{uuid.uuid4().hex[:8]}"
        env = {**os.environ, "PS1": "$ ", "TERM": "xterm-256color"}
        subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null", "new-session", "-d", "-x", str(cols),
                        "-y", str(rows), "bash --norc --noprofile"], check=True, env=env)

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "-L", self.sock, "send-keys", "-t", "0", *keys], check=True)

    def type(self, text: str) -> None:
        subprocess.run(["tmux", "-L", self.sock, "send-keys", "-t", "0", "-l", text], check=True)

    def capture(self) -> str:
        return subprocess.run(["tmux", "-L", self.sock, "capture-pane", "-p", "-t", "0"],
                              check=True, capture_output=True, text=True).stdout

    def wait(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared on screen:\n{screen}")

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.sock, "kill-server"], check=False, capture_output=True)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux(100, 30)
    yield t
    t.kill()


def test_real_ui_in_tmux(wb: Wb, repo: Path, tmux: Tmux) -> None:
    cfg = paths.config_file()
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[session]\nsandbox = "off"\n')
    sid = wb.new(repo, "--sandbox", "off", "--name", "alpha")
    wb.wait_state(sid, "running")
    ui = f"{sys.executable} -m workbench"

    tmux.type(f"cd {repo} && {ui}")
    tmux.send("Enter")
    tmux.wait("alpha")
    tmux.wait("1 running")
    # a second session from the new-session dialog
    tmux.send("C-n")
    tmux.wait("New session")
    tmux.type("second task")
    tmux.send("Enter")
    tmux.wait("2 running", timeout=20)
    second = next(s for s in wb.json("ls") if s["name"] != "alpha")
    assert second["prompt"] == "second task" and second["sandbox"] == "off"
    # back to alpha, attach, type into its shell
    tmux.send("Up")
    time.sleep(0.3)
    tmux.send("Enter")
    time.sleep(0.5)
    tmux.type("echo e2e-$((6*7))")
    tmux.send("Enter")
    screen = tmux.wait("e2e-42")
    assert "e2e-42" in wb.screen(sid)
    # a change in the worktree, reviewed in the diff view with the keyboard
    tmux.type("printf 'one\\ntwo\\n' > e2e-note.txt")
    tmux.send("Enter")
    tmux.send("C-]")
    time.sleep(0.3)
    tmux.send("3")
    tmux.wait("e2e-note.txt")
    screen = tmux.wait("reviewed 0/1")
    assert "+ two" in screen
    tmux.send("Enter")
    time.sleep(0.3)
    tmux.send("n")
    time.sleep(0.2)
    tmux.send("a")
    tmux.wait("reviewed 1/1")
    assert any(e["kind"] == "review_mark" for e in wb.json("events", sid))
    tmux.send("Escape")
    time.sleep(0.2)
    tmux.send("1")
    # detach from the terminal, then the grid with both sessions
    time.sleep(0.3)
    tmux.send("g")
    screen = tmux.wait(f"● {second['name']} running")
    assert "● alpha running" in screen
    # quit: the sessions keep running
    tmux.send("q")
    tmux.wait("bash")
    tmux.type("echo back-$((1+1))")
    tmux.send("Enter")
    tmux.wait("back-2")
    assert {s["state"] for s in wb.json("ls")} == {"running"}
    # come back: the layout (grid) and the screens are as they were
    tmux.type(f"clear; {ui} attach alpha")
    tmux.send("Enter")
    screen = tmux.wait("e2e-42")
    assert "● alpha running" in screen and f"● {second['name']} running" in screen
    tmux.type("echo again")
    tmux.send("Enter")
    tmux.wait("again", timeout=10)
    tmux.send("C-]")
    time.sleep(0.3)
    tmux.send("q")
    tmux.wait("bash")
