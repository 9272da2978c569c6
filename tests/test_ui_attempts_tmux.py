"""Issue 16: attempts (best-of-N) from the UI, counted in keys. The real `workbench` UI in a
real terminal (tmux) against a real daemon and the fake model server."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_for
from tests.test_e2e_tmux import Tmux
from tests.test_ui_new_user_tmux import UI, quit_ui, write_config
from tests.wb import Wb
from workbench import paths
from workbench.fakes.model_server import FakeOpenAI, Script, Turn

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI([Script("", [Turn(text="Renamed the flag to --verbose.")])])
    server.start()
    yield server
    server.stop()


def test_two_attempts_across_agents_and_compare_in_at_most_six_keys(wb: Wb, repo: Path, fake: FakeOpenAI) -> None:
    write_config(fake)
    cfg = paths.config_file()
    cfg.write_text(cfg.read_text().replace("[session]\n", '[session]\nagent = "builtin"\n', 1))
    assert wb.json("ls") == []  # the daemon is up before the UI
    tmux = Tmux(120, 32)
    try:
        tmux.type(f"cd {repo} && {UI}; echo \"RC$?\"END")
        tmux.send("Enter")
        tmux.wait("ctrl+n starts one", timeout=30)
        prompt = "rename the flag"
        # ctrl+n, the prompt, ctrl+t adds an attempt with the next agent (shell) to the Agent
        # field's (builtin), enter starts both; then the compare key
        keys = ["C-n", prompt, "C-t", "Enter", "P"]
        tmux.send(keys[0])
        tmux.wait("New session")
        tmux.type(keys[1])
        time.sleep(0.3)
        tmux.send(keys[2])
        tmux.wait("2 sessions")
        tmux.send(keys[3])

        def group() -> list[dict[str, Any]] | None:
            ss = [s for s in wb.json("ls") if s["prompt"] == prompt]
            return ss if len(ss) == 2 else None

        ss = wait_for(group, 60, what="both attempts")
        assert {s["agent"] for s in ss} == {"builtin", "shell"}
        groups = {s["extra"].get("attempt_group") for s in ss}
        assert len(groups) == 1 and None not in groups
        names = sorted(s["name"] for s in ss)
        tmux.wait(names[0])
        time.sleep(0.5)
        tmux.send(keys[4])
        screen = tmux.wait(f"Attempts {groups.pop()}", timeout=30)
        screen = tmux.wait("check none", timeout=30)
        # the compare view's two columns, one per attempt, side by side on one line
        assert screen.count("check none") == 2, screen
        assert any(names[0] in ln and names[1] in ln for ln in screen.splitlines()), screen
        assert len(keys) - 1 <= 6  # every key but the typed prompt
        tmux.send("Escape")
        time.sleep(0.5)
        quit_ui(tmux)
    finally:
        tmux.kill()
