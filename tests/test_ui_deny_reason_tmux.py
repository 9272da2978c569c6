"""Deny with a reason from the real UI in a terminal: the jump key, `r`, the reason, Enter
(2 keys + the reason + Enter), and the model reads the reason in its next request."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_support import Factory, calls, shell
from tests.helpers import wait_for
from tests.test_agent_daemon import point, wait_waiting
from tests.test_e2e_tmux import Tmux
from tests.wb import Wb
from workbench.fakes.model_server import Script, Turn

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

REASON = "use the existing helper instead"


@pytest.fixture
def term() -> Iterator[Tmux]:
    t = Tmux(120, 35)
    yield t
    t.kill()


def test_deny_with_a_reason_takes_two_keys_and_the_reason(
    wb: Wb, repo: Path, term: Tmux, fake_factory: Factory
) -> None:
    fake = fake_factory([Script("", [calls(shell(["touch", "made-by-agent"])), Turn(text="understood")])])
    point(wb, fake)
    sid = wb.new(repo, "--agent", "builtin", "--prompt", "create the marker file", "--sandbox", "off")
    wait_waiting(wb, sid, "touch made-by-agent")

    term.type(f"{sys.executable} -m workbench")
    term.send("Enter")
    term.wait("create marker file")
    keys = 0
    term.send("C-Space")  # the jump: to the waiting session, its approval card focused
    keys += 1
    term.wait("r deny with a reason")
    time.sleep(0.6)  # the card arms 0.4 s after it is focused (a stray key cannot answer)
    term.send("r")
    keys += 1
    term.wait("Deny: why?")
    term.type(REASON)
    term.send("Enter")
    assert keys == 2

    def denied() -> bool:
        log = json.loads(wb.run("log", sid, "--json").stdout)
        return any(e["kind"] == "approval" and e["data"].get("decision") == "deny"
                   and e["data"].get("reason") == REASON for e in log)

    wait_for(denied, 15, what="the denial with its reason in the session's log")
    wait_for(lambda: len(fake.requests) >= 2, 15, what="the model's next request")
    assert REASON in json.dumps(fake.requests[-1].body)
    assert not (Path(wb.session(sid)["worktree"]) / "made-by-agent").exists()
