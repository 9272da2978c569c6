"""Issue 16, the UI as a new user meets it: the real `workbench` UI in a real terminal (tmux)
against a real daemon and the fake model server, counting the keys a task takes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.test_e2e_tmux import Tmux
from tests.wb import Wb
from workbench import paths
from workbench.fakes.model_server import FakeOpenAI, Script, Turn

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
UI = f"{sys.executable} -m workbench"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI([Script("", [Turn(text="Renamed the flag to --verbose and updated its help.")])])
    server.start()
    yield server
    server.stop()


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux(80, 24)
    yield t
    t.kill()


def write_config(fake: FakeOpenAI | None, extra: str = "") -> None:
    cfg = paths.config_file()
    cfg.parent.mkdir(parents=True, exist_ok=True)
    text = '[session]\nsandbox = "off"\n'
    if fake is not None:
        text = (f'[session]\nsandbox = "off"\nprovider = "fake"\n\n[providers.fake]\nbase_url = "{fake.base_url}"\n'
                'model = "fake-model"\n')
    cfg.write_text(text + extra)


def start_ui(tmux: Tmux, repo: Path, expect: str) -> str:
    tmux.send("C-l")
    tmux.type(f"cd {repo} && {UI}; echo \"RC$?\"END")
    tmux.send("Enter")
    return tmux.wait(expect, timeout=30)


def run_shell(tmux: Tmux, command: str) -> tuple[int, str]:
    """Run a command at the tmux shell; its exit code and the screen once it exited."""
    tmux.send("C-l")
    tmux.type(f"{command}; echo \"RC$?\"END")
    tmux.send("Enter")

    def done() -> tuple[int, str] | None:
        screen = tmux.capture()
        m = re.search(r"RC(\d+)END", screen)
        return (int(m.group(1)), screen) if m else None

    return wait_for(done, 30, what=f"{command} exits")


def quit_ui(tmux: Tmux) -> None:
    time.sleep(0.5)
    tmux.send("Escape")
    time.sleep(0.5)
    tmux.send("q")
    tmux.wait("RC0END")


def test_invalid_keymap_spec_is_an_error_naming_the_key(wb: Wb, repo: Path, tmux: Tmux) -> None:
    write_config(None, '\n[keymap]\n"main.grid" = "ctrl-g"\n')
    rc, screen = run_shell(tmux, f"cd {repo} && {UI}")
    assert rc == 2, screen
    assert "main.grid" in screen and "'ctrl-g'" in screen
    assert "Traceback" not in screen
    doctor = wb.run("doctor", check=False)
    assert "main.grid" in doctor.stdout + doctor.stderr and "ctrl-g" in doctor.stdout + doctor.stderr
    # a valid spec starts the UI as before
    write_config(None, '\n[keymap]\n"main.grid" = "G,ctrl+g"\n')
    start_ui(tmux, repo, "ctrl+n starts one")
    tmux.send("q")
    tmux.wait("RC0END")


def test_enter_on_a_builtin_session_is_not_a_trap(wb: Wb, repo: Path, tmux: Tmux, fake: FakeOpenAI) -> None:
    write_config(fake)
    sid = wb.new(repo, "--agent", "builtin", "--prompt", "rename the flag", "--name", "bi", "--sandbox", "off")
    wb.new(repo, "--name", "sh2", "--sandbox", "off")
    wait_for(lambda: wb.session(sid)["state"] not in ("starting", "running"), 30, what="the turn ends")
    start_ui(tmux, repo, "◆ bi waiting")
    time.sleep(1)
    for view in ("1", "4", "2"):  # whatever the pane shows: terminal, side by side, transcript
        tmux.wait("│ ◆ bi waiting")
        tmux.send(view)
        time.sleep(0.3)
        tmux.send("Enter")
        tmux.wait("Renamed the flag")
        time.sleep(0.5)
        tmux.send("Escape")  # leaves the session, as from any pane
        time.sleep(0.5)
        tmux.send("Down")  # and the arrows move in the list again
        tmux.wait("│ ● sh2 running  ⚠")
        tmux.send("Up")
    tmux.send("q")
    tmux.wait("RC0END")


def test_merge_asks_once_about_unreviewed_hunks_and_the_message_is_the_task(
        wb: Wb, repo: Path, tmux: Tmux, fake: FakeOpenAI) -> None:
    write_config(fake)
    sid = wb.new(repo, "--agent", "builtin", "--prompt", "rename the flag\nand say so in its help", "--name", "bi",
                 "--sandbox", "off")
    wait_for(lambda: wb.session(sid)["state"] not in ("starting", "running"), 30, what="the turn ends")
    wt = Path(wb.session(sid)["worktree"])
    (wt / "flags.txt").write_text("--verbose\n")
    (wt / "help.txt").write_text("--verbose: say more\n")
    (wt / "README.md").write_text("# demo, verbose\n")
    start_ui(tmux, repo, "◆ bi waiting")
    time.sleep(1)
    tmux.send("M")
    tmux.wait("3 of 3 hunks not reviewed — merge anyway?")
    tmux.send("y")
    tmux.wait("Merge bi")
    tmux.send("C-s")

    def merged() -> str:
        out = subprocess.run(["git", "log", "-1", "--format=%B"], cwd=repo, capture_output=True, text=True).stdout
        return out if "flag" in out else ""

    message = wait_for(merged, 30, what="the merge commit")
    assert message.startswith("rename the flag\n\nRenamed the flag to --verbose and updated its help.")
    assert "(script finished)" not in message and "workbench:" not in message
    assert (repo / "flags.txt").read_text() == "--verbose\n"
    # everything reviewed: no question, straight to the dialog
    (wt / "flags.txt").write_text("--verbose\n--quiet\n")
    tmux.send("3")
    tmux.wait("reviewed 0/1")
    tmux.send("Enter")
    time.sleep(0.3)
    tmux.send("a")
    tmux.wait("reviewed 1/1")
    tmux.send("M")
    tmux.wait("Merge bi")
    assert "not reviewed" not in tmux.capture()
    tmux.send("Escape")
    time.sleep(0.3)
    quit_ui(tmux)


def test_a_task_with_the_last_agent_is_ctrl_n_the_prompt_and_enter(
        wb: Wb, repo: Path, tmux: Tmux, fake: FakeOpenAI) -> None:
    write_config(fake)
    assert wb.json("ls") == []  # the daemon is up before the UI
    start_ui(tmux, repo, "ctrl+n starts one")
    # the first time, the agent is chosen in the dialog
    tmux.send("C-n")
    tmux.wait("New session")
    tmux.type("first task")
    time.sleep(0.3)
    tmux.send("Tab")
    tmux.send("Tab")
    time.sleep(0.3)
    tmux.send("C-a")
    tmux.send("C-k")
    time.sleep(0.3)
    tmux.type("builtin")
    time.sleep(0.3)
    tmux.send("Enter")
    wait_for(lambda: [s for s in wb.json("ls") if s["prompt"] == "first task"], 30, what="the first session")
    quit_ui(tmux)
    # the next time (even after a restart of the UI): ctrl+n, the prompt, enter
    start_ui(tmux, repo, "first")
    time.sleep(1)
    keys = ["C-n", *"second task", "Enter"]
    tmux.send(keys[0])
    tmux.wait("New session")
    tmux.type("".join(keys[1:-1]))
    tmux.send(keys[-1])
    second = wait_for(lambda: [s for s in wb.json("ls") if s["prompt"] == "second task"], 30, what="the second")
    assert second[0]["agent"] == "builtin"
    assert len(keys) == 2 + len("second task")
    quit_ui(tmux)


def test_the_status_bar_names_the_focused_sessions_model_not_the_configured_one(
        wb: Wb, repo: Path, fake: FakeOpenAI) -> None:
    """The demo's status bar showed the configured default model, which no session used."""
    write_config(fake)  # the configured default: fake-model
    sid = wb.new(repo, "--agent", "builtin", "--model", "qwen-local", "--prompt", "rename the flag", "--name", "bi",
                 "--sandbox", "off")
    wb.new(repo, "--name", "sh2", "--sandbox", "off")
    wait_for(lambda: wb.session(sid)["state"] not in ("starting", "running"), 30, what="the turn ends")
    wide = Tmux(140, 30)  # room for the model on the status line
    try:
        start_ui(wide, repo, "◆ bi waiting")

        def status() -> str:
            return [ln for ln in wide.capture().splitlines() if ln.strip()][-1]

        wait_for(lambda: "qwen-local" in status(), 15, what="the focused session's model on the status bar")
        assert "fake-model" not in status()
        wide.send("Down")  # the shell session: no model of its own, and not the configured one
        wait_for(lambda: "qwen-local" not in status(), 15, what="the model to leave the status bar")
        assert "fake-model" not in status()
        wide.send("q")
        wide.wait("RC0END")
    finally:
        wide.kill()
