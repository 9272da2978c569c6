"""The session list repaints only the entries whose text or style changed: the 1 s tick and
every session event rebuilt all of it (5-7 ms of the UI's CPU for ten sessions, taken from
the echo of whatever is being typed; docs/performance.md)."""

from __future__ import annotations

from typing import Any

from textual.strip import Strip

from tests.test_ui_app import SIZE, started, sync
from tests.ui_fakes import HarnessApp, sample_sessions
from workbench.ui.messages import DaemonEvent


@sync
async def test_the_list_repaints_only_the_entries_that_changed() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        lst = app.main.session_list
        painted: list[tuple[int, str]] = []
        render_line = lst.render_line

        def counting(y: int) -> Strip:
            strip = render_line(y)
            painted.append((y, strip.text))
            return strip

        lst.render_line = counting  # type: ignore[method-assign]
        await pilot.pause(0.1)
        painted.clear()

        app.main.tick()  # the once-a-second refresh, nothing changed
        await pilot.pause(0.1)
        assert painted == []

        renamed: Any = {**sample_sessions()[1], "name": "docs-final"}
        app.post_message(DaemonEvent("session", renamed))
        await pilot.pause(0.1)
        texts = [t for _, t in painted]
        assert len(painted) == 2, texts  # the entry's two lines, nothing else of the list
        assert "docs-final" in texts[0]
        assert "docs-final" in str(lst.get_option("b2").prompt)

        painted.clear()
        waiting: Any = {**sample_sessions()[1], "name": "docs-final", "state": "waiting",
                        "needs_attention": True}
        app.post_message(DaemonEvent("session", waiting))  # a new mark and icon, same name
        await pilot.pause(0.1)
        assert [y for y, _ in painted] == sorted({y for y, _ in painted}) and len(painted) >= 2
        assert "⚑" in painted[0][1]
