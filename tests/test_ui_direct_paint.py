"""A terminal's changed rows go to the terminal in the frame's own call (ui/widgets/direct_paint.py),
not after Textual's idle wait, update timer and compositor pass (3.6 ms at p50, 19-30 ms at p99
of a keystroke's echo with 8 sessions streaming); and never where something else is drawn on
top of them. The real app over the fake daemon link, its terminal output captured."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

from textual.app import App
from textual.widgets import Static

from tests.test_ui_app import SIZE, started, sync, until
from tests.ui_fakes import HarnessApp, frame, record_calls
from workbench.ui.messages import FrameEvent
from workbench.ui.screens.help import HelpScreen
from workbench.ui.widgets.terminal import TerminalView


class Terminal:
    """What the app writes to its terminal, and which rows the view rendered."""

    def __init__(self, app: HarnessApp, view: TerminalView) -> None:
        self.out: list[str] = []
        assert app._driver is not None
        app._driver.write = self.out.append  # type: ignore[method-assign]
        self.renders = record_calls(view, "render_lines")

    @property
    def rendered(self) -> list[int]:
        return [y for c in self.renders for y in range(c.args[0].y, c.args[0].y + c.args[0].height)]

    def text(self) -> str:
        return "".join(self.out)


def delta(sid: str, lines: dict[int, str], rows: int = 12, cursor: tuple[int, int] = (0, 0)) -> FrameEvent:
    """A frame as the daemon sends while typing: the rows it names changed, no others."""
    f = frame(sid, [lines.get(i, "") for i in range(rows)], rows=rows, cursor=cursor)
    return FrameEvent({**f, "rows": {k: v for k, v in f["rows"].items() if int(k) in lines}, "full": False})


def on_a_real_terminal() -> Any:
    """The headless test driver, taken for a terminal: only then is painting direct."""
    return mock.patch.object(App, "is_headless", new_callable=mock.PropertyMock, return_value=False)


@contextlib.asynccontextmanager
async def attached() -> AsyncIterator[tuple[HarnessApp, Any, str, TerminalView]]:
    """The real app, its focused session's terminal view shown and laid out."""
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        sid = app.layout.focus
        assert sid is not None
        view = app.main.panes[sid].terminal
        await until(pilot, lambda: view.size.height > 12)
        await pilot.pause(0.1)
        yield app, pilot, sid, view


@sync
async def test_a_frame_is_on_the_terminal_at_once_and_rendered_once() -> None:
    async with attached() as (app, pilot, sid, view):
        region = app.main._compositor.visible_widgets[view][0]
        with on_a_real_terminal():
            term = Terminal(app, view)
            app.main.on_frame_event(delta(sid, {0: "echo: hello direct"}, cursor=(18, 0)))
            # Written in the same call, at the view's first row, before any compositor pass.
            assert "echo: hello direct" in term.text()
            assert f"\x1b[{region.y + 1};{region.x + 1}H" in term.text()
            painted = list(term.rendered)  # the row and the old cursor's row
            assert 0 in painted and len(painted) <= 2
            await pilot.pause(0.2)
            assert term.rendered == painted, "the compositor painted the rows again"
        assert view.visible_text()[0] == "echo: hello direct"


@sync
async def test_under_another_screen_the_compositor_paints_it() -> None:
    async with attached() as (app, pilot, sid, view):
        await app.push_screen(HelpScreen(app.user_keymap, app.detach_key))
        await pilot.pause(0.1)
        with on_a_real_terminal():
            term = Terminal(app, view)
            app.main.on_frame_event(delta(sid, {0: "hidden by help"}))
            assert "hidden by help" not in term.text()
        assert view.visible_text()[0] == "hidden by help"


@sync
async def test_rows_under_a_widget_drawn_on_top_are_left_to_the_compositor() -> None:
    async with attached() as (app, pilot, sid, view):
        region = app.main._compositor.visible_widgets[view][0]
        app.main.styles.layers = ("default", "cover")
        cover = Static("a cover", id="cover")
        cover.styles.layer = "cover"
        cover.styles.position = "absolute"
        cover.styles.width, cover.styles.height = 20, 2
        cover.styles.offset = (region.x + 5, region.y + 10)
        await app.main.mount(cover)
        await until(pilot, lambda: cover in app.main._compositor.visible_widgets)
        rows = view.size.height
        app.main.on_frame_event(FrameEvent(frame(sid, [], rows=rows)))  # the view's height
        await pilot.pause(0.1)
        with on_a_real_terminal():
            term = Terminal(app, view)
            app.main.on_frame_event(delta(sid, {i: f"row {i}" for i in range(rows)}, rows=rows))
            assert "row 0" not in term.text()  # some of the rows are covered: none is direct
            await pilot.pause(0.1)
            term.out.clear()
            app.main.on_frame_event(delta(sid, {2: "row 2 changed"}, rows=rows))  # not covered
            assert "row 2 changed" in term.text()
        assert view.visible_text()[10] == "row 10"
