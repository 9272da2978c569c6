"""Approval prompts answered once, `approve` that answers or says what to type, and no
false idle before a CLI draws: the real-run failures of issue 14, on the fake CLIs
(tests/fake_agents/fake_agent.py) in real PTYs under a real daemon."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.test_attention import _argv, agents, call, detects, new, screen, state, wait_state
from tests.wb import Wb
from workbench.errors import WorkbenchError

__all__ = ["agents"]  # the fixture, imported for pytest


def test_answered_prompt_is_answered_once(agents: Wb, repo: Path) -> None:
    """aider leaves its answered question on screen: it is not a new prompt."""
    s = new(repo, "aider", prompt="task for aider")
    sid, worktree = s["id"], Path(s["worktree"])
    wait_state(sid, "waiting")
    call("approve", id=sid)
    wait_state(sid, "review")
    assert "(Y)es/(N)o [Yes]: y" in screen(sid)  # the stale question is still drawn
    time.sleep(0.8)  # well past the answer grace and a few scans
    assert state(sid)["state"] == "review", detects(sid)
    with pytest.raises(WorkbenchError, match=r"no approval is pending .*answered"):
        call("approve", id=sid)
    time.sleep(0.3)
    assert "echo: y" not in screen(sid)
    assert (worktree / "fake_output.txt").read_text() == "done: task for aider\n"
    assert [d for d in detects(sid) if d[0] == "waiting" and d[1].startswith("pattern:")] == \
        [("waiting", "pattern:approval")]
    # The next message works as usual, with the answered question still in the chat.
    call("send", id=sid, text="another")
    wait_for(lambda: "echo: another" in screen(sid), 10, what="echo of the next message")
    wait_state(sid, "review")
    assert [d for d in detects(sid) if d[0] == "waiting" and d[1].startswith("pattern:")] == \
        [("waiting", "pattern:approval")]


def test_approve_answers_opencode_and_says_what_to_type(agents: Wb, repo: Path) -> None:
    s = new(repo, "opencode", prompt="task for opencode")
    sid, worktree = s["id"], Path(s["worktree"])
    waiting = wait_state(sid, "waiting")
    assert waiting["reason"] == "approval requested"
    # No single key takes "Allow always": workbench says what to do instead of typing a guess.
    res = agents.run("approve", sid, "--always", check=False)
    assert res.returncode != 0
    assert "no key for approve_always" in res.stderr and f"workbench attach {sid}" in res.stderr
    assert state(sid)["state"] == "waiting"
    call("approve", id=sid)
    wait_state(sid, "review")
    assert (worktree / "fake_output.txt").read_text() == "done: task for opencode\n"


def test_no_idle_before_the_cli_draws(agents: Wb, repo: Path, isolated_env: Path) -> None:
    """opencode sets up its terminal, then draws only later: that silence is not idle."""
    cfg = isolated_env / "config" / "workbench" / "config.toml"
    cfg.write_text(cfg.read_text().replace(f"command = {_argv('opencode')}",
                                           f"command = {_argv('opencode', '--draw-delay=1.5')}"))
    sid = new(repo, "opencode", prompt="slow start")["id"]
    time.sleep(1.2)  # three times the profile's silence_ms, nothing on screen yet
    assert state(sid)["state"] == "running", detects(sid)
    wait_state(sid, "waiting")
    assert [d for d in detects(sid) if d[0] == "waiting"] == [("waiting", "pattern:approval")], detects(sid)


def test_bell_asks_for_the_human(agents: Wb, repo: Path, isolated_env: Path) -> None:
    """A CLI without hooks or notifications that rings the bell at its prompt is `waiting`."""
    cfg = isolated_env / "config" / "workbench" / "config.toml"
    cfg.write_text(cfg.read_text() + f"\n[profiles.bellbot]\ncommand = {_argv('bell')}\nsilence_ms = 400\n")
    s = new(repo, "bellbot", prompt="ring")
    sid, worktree = s["id"], Path(s["worktree"])
    waiting = wait_state(sid, "waiting")
    assert waiting["reason"] == "needs your attention" and detects(sid)[0] == ("waiting", "bell"), detects(sid)
    time.sleep(0.5)  # the detector takes its reference screen just after the signal
    call("keys", id=sid, text="y")
    wait_state(sid, "review")
    assert (worktree / "fake_output.txt").read_text() == "done: ring\n"
