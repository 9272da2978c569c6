"""The session list repaints only the entries whose text or style changed: the 1 s tick and
every session event rebuilt all of it (5-7 ms of the UI's CPU for ten sessions, taken from
the echo of whatever is being typed; docs/performance.md)."""

from __future__ import annotations

from typing import Any

from tests.test_ui_app import SIZE, started, sync, until
from tests.ui_fakes import HarnessApp, record_calls, sample_sessions
from workbench.ui.messages import DaemonEvent
from workbench.ui.widgets.terminal import TerminalView


@sync
async def test_the_list_repaints_only_the_entries_that_changed() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        lst = app.main.session_list
        calls = record_calls(lst, "render_line")

        def painted() -> list[tuple[int, str]]:
            return [(c.args[0], c.result.text) for c in calls]

        await pilot.pause(0.1)
        calls.clear()

        app.main.tick()  # the once-a-second refresh, nothing changed
        await pilot.pause(0.1)
        assert painted() == []

        renamed: Any = {**sample_sessions()[1], "name": "docs-final"}
        app.post_message(DaemonEvent("session", renamed))
        await pilot.pause(0.1)
        texts = [t for _, t in painted()]
        assert len(painted()) == 2, texts  # the entry's two lines, nothing else of the list
        assert "docs-final" in texts[0]
        assert "docs-final" in str(lst.get_option("b2").prompt)

        calls.clear()
        waiting: Any = {**sample_sessions()[1], "name": "docs-final", "state": "waiting",
                        "needs_attention": True}
        app.post_message(DaemonEvent("session", waiting))  # a new mark and icon, same name
        await pilot.pause(0.1)
        assert [y for y, _ in painted()] == sorted({y for y, _ in painted()}) and len(painted()) >= 2
        assert "⚑" in painted()[0][1]


def _renamed(app: HarnessApp, ids: list[str], suffix: str) -> None:
    """Sessions renamed without an event, as a tick finds them (ages move the same way)."""
    for sid in ids:
        app.sessions[sid] = {**app.sessions[sid], "name": f"{sid}-{suffix}"}  # type: ignore[index]


def _shown(lst: Any, sid: str) -> str:
    return str(lst.get_option(sid).prompt)


@sync
async def test_entries_changed_together_are_repainted_one_at_a_time() -> None:
    """A tick that changes every entry (ages, each second) repaints one now and the next
    one a moment later: one compositor pass over all of them held the echo of the session
    typed into for 4-14 ms once a second."""
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        lst = app.main.session_list
        ids = ["a1", "b2", "c3"]
        _renamed(app, ids, "renamed")
        app.main.tick()
        now = [sid for sid in ids if "renamed" in _shown(lst, sid)]
        assert len(now) == 1, now
        await until(pilot, lambda: all("renamed" in _shown(lst, sid) for sid in ids))


@sync
async def test_while_someone_types_the_tick_waits_and_still_comes() -> None:
    from workbench.ui.screens import main as main_screen

    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        screen, lst = app.main, app.main.session_list
        sid = app.layout.focus
        assert sid is not None
        screen.tick()
        screen.post_message(TerminalView.Input(screen.panes[sid].terminal, sid, b"x"))
        await until(pilot, lambda: screen._typed_at > 0)
        _renamed(app, ["b2"], "typing")
        screen.tick()
        await pilot.pause(0.1)
        assert "typing" not in _shown(lst, "b2")  # deferred while a key was typed just now
        screen._ticked_at -= main_screen.TYPING_TICK_S  # ... but not for longer than this
        screen.tick()
        await until(pilot, lambda: "typing" in _shown(lst, "b2"))
        _renamed(app, ["b2"], "quiet")
        screen._typed_at -= main_screen.TYPING_S  # typing stopped: every tick repaints
        screen.tick()
        await until(pilot, lambda: "quiet" in _shown(lst, "b2"))


@sync
async def test_the_status_bar_repaints_only_when_its_text_changes_and_lays_out_nothing() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        status = app.main.status
        calls = record_calls(status, "refresh")
        app.main.refresh_status()
        app.main.refresh_status()
        assert calls == []  # the same text: nothing to repaint
        app.model_name = "another-model"
        app.main.session_list.focus()
        app.layout.focus = None
        app.main.refresh_status()
        assert calls and not any(c.kwargs.get("layout") for c in calls), calls
        assert "another-model" in str(status.content)
