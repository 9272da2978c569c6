"""SVG snapshots of key screens, from the real app over canned data (no daemon).

Update with `pytest tests/test_ui_snapshots.py --snapshot-update` and review the SVGs.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from tests.ui_fakes import HarnessApp


async def settle(pilot: Pilot[Any]) -> None:
    """Wait until the panes are mounted and painted, however loaded the machine is."""
    app = pilot.app
    assert isinstance(app, HarnessApp)
    for _ in range(100):
        panes = list(app.main.panes.values())
        if panes and all(p.terminal.state.received and p.is_mounted for p in panes):
            break
        await pilot.pause(0.05)
    await pilot.pause(0.2)
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def test_main_screen(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("down", "down")  # docs-pass
        await settle(pilot)

    assert snap_compare(HarnessApp(), terminal_size=(100, 30), run_before=run_before)


def test_grid_mode(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)

    assert snap_compare(HarnessApp(), terminal_size=(120, 32), run_before=run_before)


def test_approval_card(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("space")  # the waiting session, its card focused
        await settle(pilot)

    assert snap_compare(HarnessApp(), terminal_size=(100, 30), run_before=run_before)


def test_new_session_dialog(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await pilot.press("ctrl+n")
        await settle(pilot)
        from textual.widgets import Input

        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False  # a blinking cursor makes the SVG differ run to run
        await pilot.pause(0.1)

    assert snap_compare(HarnessApp(), terminal_size=(100, 30), run_before=run_before)


@pytest.mark.parametrize("theme", ["workbench-dark", "workbench-light", "workbench-high-contrast"])
def test_theme(snap_compare: Any, theme: str) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)

    assert snap_compare(HarnessApp(theme=theme), terminal_size=(90, 24), run_before=run_before)


async def diff_ready(pilot: Pilot[Any], keys: tuple[str, ...]) -> None:
    """docs-pass's diff, focused, the cursor moved by `keys`."""
    await settle(pilot)
    await pilot.press("down", "down", "3")
    app = pilot.app
    assert isinstance(app, HarnessApp)
    panel = app.main.panes["b2"].diff
    for _ in range(100):
        if panel.loads:
            break
        await pilot.pause(0.05)
    await pilot.press("enter", *keys)
    for _ in range(100):
        if panel.loads >= 1 and panel.view.split == ("v" in keys):
            break
        await pilot.pause(0.05)
    await settle(pilot)


def test_diff_unified(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await diff_ready(pilot, ("right_square_bracket",) * 3 + ("n", "j", "j", "j"))

    assert snap_compare(HarnessApp(), terminal_size=(120, 34), run_before=run_before)


def test_diff_split(snap_compare: Any) -> None:
    async def run_before(pilot: Pilot[Any]) -> None:
        await diff_ready(pilot, ("b",) + ("right_square_bracket",) * 3 + ("v",))

    assert snap_compare(HarnessApp(), terminal_size=(140, 34), run_before=run_before)
