"""A rejected hunk goes to an idle agent at once and waits for `S` while the agent is busy
(issue 16); the attention jump lands on the first hunk to review. Pilot, over the fake link."""

from __future__ import annotations

from tests.test_ui_app import SIZE, calls, sync
from tests.test_ui_review import until
from tests.ui_fakes import HarnessApp, session
from workbench.ui.dialogs import LineInputScreen
from workbench.ui.messages import DaemonEvent
from workbench.ui.widgets.diff_view import DiffView


@sync
async def test_a_rejection_is_sent_at_once_only_when_the_agent_is_idle() -> None:
    busy = session("b2", "docs-pass", "waiting", agent="builtin", files_changed=10, turn_active=True)
    app = HarnessApp(sessions=[busy], screens={})
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "b2" in app.main.panes, "the pane")
        panel = app.main.panes["b2"].diff
        await pilot.press("ctrl+@")  # the jump: b2's diff, focused, on its first hunk
        await until(pilot, lambda: isinstance(app.focused, DiffView), "focus in the diff")
        await until(pilot, lambda: (row := panel.view.current()) is not None and row.kind == "hunk", "on a hunk")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, LineInputScreen), "reason dialog")
        await pilot.press(*"too slow", "enter")
        await until(pilot, lambda: any("queued with the review" in m for _s, m in app.notes), "queued")
        assert len(calls(app, "reject")) == 1 and calls(app, "review") == []
        # the turn ends: the next rejection takes the pending one along, with no further key
        app.post_message(DaemonEvent("session", {**busy, "turn_active": False}))
        await until(pilot, lambda: not app.sessions["b2"].get("turn_active"), "the idle agent")
        await until(pilot, lambda: (row := panel.view.current()) is not None and row.kind == "hunk", "on a hunk")
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, LineInputScreen), "reason dialog")
        await pilot.press(*"keep it", "enter")
        await until(pilot, lambda: calls(app, "review"), "the review sent")
        assert calls(app, "review") == [{"id": "b2", "send": True}]
        await until(pilot, lambda: any("sent to docs-pass" in m for _s, m in app.notes), "said so")
