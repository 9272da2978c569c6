"""The transcript and the approval card against a real daemon running the built-in agent on
the fake model server: the exact command and patch on the card, approvals from the UI,
streaming text, tool calls with collapsible output, plan, usage."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Collapsible

from tests.agent_support import CALC, FIX, TEST_CALC, calls, patch, shell
from tests.conftest import make_repo
from tests.test_ui_review import until
from tests.wb import Wb
from workbench.fakes.model_server import FakeOpenAI, Script, Turn
from workbench.ui.app import WorkbenchApp
from workbench.ui.widgets.approval_card import ApprovalCard


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI([Script("fix mean", [
        calls(shell(["cat", "calc.py"]), usage=(1000, 100)),
        calls(patch(FIX), usage=(1200, 50)),
        Turn(text="Fixed mean(): it divided by one too many.", usage=(1500, 10)),
    ])])
    server.start()
    yield server
    server.stop()


def test_transcript_and_approval_card_with_the_builtin_agent(wb: Wb, tmp_path: Path, fake: FakeOpenAI,
                                                             isolated_env: Path) -> None:
    repo = make_repo(tmp_path / "calc", {"calc.py": CALC, "test_calc.py": TEST_CALC})
    (isolated_env / "config" / "workbench").mkdir(parents=True, exist_ok=True)
    (isolated_env / "config" / "workbench" / "config.toml").write_text(
        f'[session]\nprovider = "fake"\nsandbox = "off"\n\n[providers.fake]\nbase_url = "{fake.base_url}"\n'
        'model = "fake-model"\n')
    sid = wb.new(repo, "--agent", "builtin", "--prompt", "fix mean in calc.py", "--approval", "suggest",
                 "--sandbox", "off")

    async def scenario() -> None:
        app = WorkbenchApp(strict=True)
        app.approval_arm_ms = 50
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: sid in app.main.panes, "the pane", 15)
            pane = app.main.panes[sid]
            assert pane.view == "transcript"  # built-in sessions open on the transcript
            card = pane.card
            await until(pilot, lambda: card.pending and card.pending.get("kind") == "command", "command card", 20)
            body = str(card._body.render())
            assert "$ cat calc.py" in body
            # the sandbox is off: red in the pane title and the status bar
            assert "sandbox off" in str(pane.header.render())
            assert "1 sandbox off" in str(app.main.status.render())
            await pilot.press("y")  # from the list: opens the card
            await until(pilot, lambda: isinstance(app.focused, ApprovalCard), "card focused")
            await until(pilot, lambda: card.armed_in() == 0, "armed")
            await pilot.press("y")
            await until(pilot, lambda: card.pending and card.pending.get("kind") == "patch", "patch card", 20)
            body = str(card._body.render())
            assert "*** Begin Patch" in body and "*** Update File: calc.py" in body
            assert "+    return sum(values) / len(values)" in body
            app.main.panes[sid].card.focus()
            await until(pilot, lambda: card.has_focus and card.armed_in() == 0, "armed again")
            await pilot.press("y")
            await until(pilot, lambda: app.sessions[sid]["state"] == "review", "the turn ends", 20)
            tr = pane.transcript
            await until(pilot, lambda: any("Fixed mean()" in str(w.render()) for w in tr.query(".assistant")),
                        "the answer", 10)
            text = "\n".join(str(w.render()) for w in tr.query("Static"))
            assert "> fix mean in calc.py" in text
            assert "approval requested: cat calc.py" in text and "approve" in text
            assert "tokens 1000 in · 100 out" in text
            boxes = list(tr.query(Collapsible))
            assert any("cat calc.py" in b.title for b in boxes) and all(b.collapsed for b in boxes)
            out = next(w for cid, w in tr._outputs.items() if "cat calc.py" in tr._calls[cid].title)
            assert "def mean" in str(out.render())
            await pilot.press("q")

    asyncio.run(scenario())
