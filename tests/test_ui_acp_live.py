"""An ACP session in the real UI against a real daemon: it opens on the transcript like a
built-in session, its permission request is the approval card (with the edit's diff), `y`
on the card approves it, and the agent's message, plan and tool call show in the transcript."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.conftest import make_repo
from tests.test_ui_review import until
from tests.wb import Wb
from workbench.ui.app import WorkbenchApp
from workbench.ui.widgets.approval_card import ApprovalCard

AGENT = Path(__file__).parent / "fake_agents" / "acp_agent.py"


@pytest.mark.timeout(120)
def test_an_acp_session_is_answered_and_read_in_the_ui(wb: Wb, tmp_path: Path) -> None:
    state = tmp_path / "acp-state"
    state.mkdir()
    wb.env["ACP_FAKE_STATE"] = str(state)
    repo = make_repo(tmp_path / "proj", {"README.md": "hello\n"})
    sid = wb.new(repo, "--agent", f"acp:{sys.executable} {AGENT}", "--prompt", "write notes.txt first note",
                 "--sandbox", "off")

    async def scenario() -> None:
        app = WorkbenchApp(strict=True)
        app.approval_arm_ms = 50
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: sid in app.main.panes, "the pane")
            pane = app.main.panes[sid]
            assert pane.view == "transcript"  # like a built-in session, not a terminal
            card = pane.card
            await until(pilot, lambda: card.pending and card.pending.get("kind") == "patch", "the approval card")
            body = str(card._body.render())
            assert "Write notes.txt" in body and "+first note" in body
            await pilot.press("y")  # from the list: opens the card
            await until(pilot, lambda: isinstance(app.focused, ApprovalCard), "card focused")
            await until(pilot, lambda: card.armed_in() == 0, "armed")
            await pilot.press("y")
            await until(pilot, lambda: app.sessions[sid]["state"] == "review", "the turn ends")
            assert (Path(app.sessions[sid]["worktree"]) / "notes.txt").read_text() == "first note\n"
            tr = pane.transcript
            await until(pilot, lambda: any("wrote notes.txt" in str(w.render()) for w in tr.query(".assistant")),
                        "the agent's answer")
            text = "\n".join(str(w.render()) for w in tr.query("Static"))
            assert "> write notes.txt first note" in text
            assert "write notes.txt" in text  # the plan's step
            await pilot.press("q")

    asyncio.run(scenario())
