"""Pilot tests of every binding and dialog, and of notification merging, on the real app over a
fake daemon link."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message
from textual.widgets import Input

from tests.ui_fakes import HarnessApp, frame, sample_sessions, session
from workbench import paths
from workbench.ui.dialogs import ConfirmScreen, LineInputScreen
from workbench.ui.messages import DaemonEvent, FrameEvent
from workbench.ui.screens.help import HelpScreen
from workbench.ui.screens.main import MainScreen
from workbench.ui.screens.new_session import NewSessionScreen
from workbench.ui.widgets.approval_card import ApprovalCard
from workbench.ui.widgets.grid import PaneGrid
from workbench.ui.widgets.terminal import TerminalView

SIZE = (110, 32)


def sync(fn: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test on a fresh loop (no pytest async plugin is installed)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))

    return wrapper


async def started(app: HarnessApp, pilot: Any) -> None:
    await pilot.pause(0.2)
    assert app.main.panes, "no pane mounted"


def calls(app: HarnessApp, method: str) -> list[dict[str, Any]]:
    return [p for m, p in app.link.calls if m == method]  # type: ignore[attr-defined]



async def until(pilot: Any, cond: Callable[[], bool], tries: int = 200) -> None:
    """Poll the app until `cond` holds (no fixed sleeps: the machine may be loaded)."""
    for _ in range(tries):
        if cond():
            return
        await pilot.pause(0.05)
    assert cond(), "condition not reached"

@sync
async def test_list_groups_by_repo_and_status_counts() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        keys = app.main.session_list._keys
        assert keys == ["repo:/work/api", "c3", "a1", "b2", "repo:/work/web", "d4"]
        status = str(app.main.status.render())
        assert "1 running" in status and "1 waiting" in status and "1 error" in status
        assert "daemon ok" in status
        assert "gpt-test" not in status  # the focused session is a shell: no model to show
        # the first session is focused and its terminal painted from the frame
        assert app.layout.focus == "c3"
        pane = app.main.panes["c3"]
        assert pane.terminal.visible_text()[1] == "AssertionError: flaky"


@sync
async def test_status_bar_shows_the_model_of_the_focused_session() -> None:
    """Not the configured default (the demo showed `gpt-5.1-codex`, which no session used)."""
    sessions = [session("m1", "local", agent="builtin", model="qwen-local"), session("m2", "shell")]
    app = HarnessApp(sessions=sessions, screens={})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        app.main.show_session("m1")
        await until(pilot, lambda: "qwen-local" in str(app.main.status.render()))
        assert "gpt-test" not in str(app.main.status.render())
        app.main.show_session("m2")
        await until(pilot, lambda: "qwen-local" not in str(app.main.status.render()))
        assert "gpt-test" not in str(app.main.status.render())


@sync
async def test_attention_jumps_in_queue_order_and_focuses_card() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("space")
        await pilot.pause(0.1)
        assert app.layout.focus == "a1"  # waiting beats error
        assert isinstance(app.focused, ApprovalCard)
        await pilot.press("escape")  # leave the card
        await pilot.press("space")  # a1 is the head already -> the next one
        await pilot.pause(0.1)
        assert app.layout.focus == "c3"
        await pilot.press("ctrl+@")  # the global key (ctrl+space) works from anywhere too
        await pilot.pause(0.1)
        assert app.layout.focus == "a1"


@sync
async def test_attention_with_nobody_waiting_says_so() -> None:
    app = HarnessApp(sessions=[session("x", "calm")], screens={})
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("space")
        assert ("information", "nobody needs you right now") in app.notes


@sync
async def test_approval_card_keys_need_focus_and_arming() -> None:
    app = HarnessApp()
    app.approval_arm_ms = 60_000  # never arms on its own during the test, however slow the machine
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.main.show_session("a1")
        await pilot.pause(0.1)
        # in the list, y only opens the card; it never approves
        await pilot.press("y")
        await pilot.pause(0.05)
        card = app.focused
        assert isinstance(card, ApprovalCard)
        await pilot.press("y")  # too soon: the card is still arming
        await pilot.pause(0.05)
        assert not calls(app, "approve")
        assert any("arming" in m for _s, m in app.notes)
        card.arm_ms = 0  # the moment passes
        card._arm_later()
        await until(pilot, lambda: card.has_class("-armed"))
        await pilot.press("y")
        await pilot.pause(0.1)
        assert calls(app, "approve") == [{"id": "a1", "always": False}]
        # this daemon has no approve yet: a clear note, no crash
        assert ("warning", "approvals are not available in this daemon yet") in app.notes


@sync
async def test_deny_and_always_from_card() -> None:
    app = HarnessApp()
    app.approval_arm_ms = 0
    app.link.unavailable.discard("approve")  # type: ignore[attr-defined]
    app.link.unavailable.discard("deny")  # type: ignore[attr-defined]
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.main.show_session("a1")
        await pilot.press("n")
        await pilot.pause(0.05)
        await pilot.press("a")
        await pilot.pause(0.1)
        assert calls(app, "approve") == [{"id": "a1", "always": True}]
        app.main.panes["a1"].card.focus()
        await pilot.pause(0.05)
        await pilot.press("n")
        await pilot.pause(0.1)
        assert calls(app, "deny") == [{"id": "a1"}]
        assert ("information", "fix-login: denied") in app.notes


@sync
async def test_open_approval_without_pending_says_so() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.main.show_session("b2")
        await pilot.press("y")
        assert ("information", "docs-pass has no pending approval") in app.notes
        assert not isinstance(app.focused, ApprovalCard)


@sync
async def test_attach_types_into_the_pty_and_detach_key_returns() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.main.show_session("b2")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.focused, TerminalView)
        # every key goes to the PTY, including the UI's own keys and ctrl+c
        await pilot.press("q", "g", "space", "ctrl+c", "up", "enter", "escape")
        sent = b"".join(d for _sid, d in app.link.keys)  # type: ignore[attr-defined]
        assert sent == b"qg \x03\x1b[A\r\x1b"
        assert {sid for sid, _d in app.link.keys} == {"b2"}  # type: ignore[attr-defined]
        assert not app.layout.grid
        await pilot.press("ctrl+right_square_bracket")
        await pilot.pause(0.05)
        assert app.focused is app.main.session_list
        assert len(app.link.keys) == 7  # type: ignore[attr-defined]


@sync
async def test_paste_is_bracketed_when_the_program_asks() -> None:
    from textual import events

    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.main.show_session("b2")  # a running one: c3's process has exited
        await pilot.press("enter")
        await pilot.pause(0.05)
        term = app.focused
        assert isinstance(term, TerminalView)
        term.post_message(events.Paste("ls\nrm -rf x"))
        await pilot.pause(0.05)
        assert app.link.keys[-1][1] == b"\x1b[200~ls\rrm -rf x\x1b[201~"  # type: ignore[attr-defined]


@sync
async def test_attach_resizes_the_pty_to_the_pane() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.main.show_session("b2")
        await pilot.press("enter")
        await pilot.pause(0.2)
        term = app.focused
        assert isinstance(term, TerminalView)
        want = f"{term.size.width}x{term.size.height}"
        assert {"id": app.layout.focus, "size": want} in calls(app, "resize")


@sync
async def test_grid_zoom_resize_pin_and_cycle() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("g")
        await pilot.pause(0.1)
        assert app.layout.grid and len(app.main.panes) == 4
        assert len(app.main.query(PaneGrid)) == 1
        assert app.link.frame_ids == set(app.main.panes)  # type: ignore[attr-defined]
        # every pane is live: a frame for a pane that is not focused repaints it
        other = next(sid for sid in app.main.panes if sid != app.layout.focus)
        app.post_message(DaemonEvent("noop", {}))
        app.post_message(FrameEvent(frame(other, ["fresh output"])))
        await pilot.pause(0.1)
        assert app.main.panes[other].terminal.visible_text()[0] == "fresh output"
        # zoom and back
        await pilot.press("z")
        await pilot.pause(0.1)
        zoomed = [sid for sid, p in app.main.panes.items() if not p.has_class("-zoomed-out")]
        assert zoomed == [app.layout.focus] and app.layout.zoomed
        assert app.main.panes[app.layout.focus].size.width > SIZE[0] - 5
        await pilot.press("z")
        await pilot.pause(0.1)
        assert not app.layout.zoomed
        # resize the focused pane
        focus = app.layout.focus
        await pilot.press("plus", "plus")
        await pilot.pause(0.1)
        assert app.layout.weights[focus] == 3
        await pilot.press("minus")
        assert app.layout.weights[focus] == 2
        # cycle panes
        before = app.layout.focus
        await pilot.press("right_square_bracket")
        assert app.layout.focus != before
        await pilot.press("left_square_bracket")
        assert app.layout.focus == before
        # unpin, then leave the grid
        await pilot.press("p")
        await pilot.pause(0.1)
        assert before not in app.layout.panes and len(app.main.panes) == 3
        await pilot.press("g")
        await pilot.pause(0.1)
        assert not app.layout.grid and len(app.main.panes) == 1


@sync
async def test_views_and_sidebar() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        sid = app.layout.focus
        pane = app.main.panes[sid]
        for key, view in (("2", "transcript"), ("3", "diff"), ("4", "split"), ("1", "terminal")):
            await pilot.press(key)
            await pilot.pause(0.1)
            assert pane.view == view and app.layout.views[sid] == view
            assert pane.has_class(f"-view-{view}")
        await pilot.press("3")
        await pilot.pause(0.3)
        # the diff comes from the daemon's `diff` method, on a connection of its own
        assert pane.diff.loads >= 1 and len(pane.diff.doc.files) == 10
        assert "diff" in app.link.apart  # type: ignore[attr-defined]
        await pilot.press("2")
        await pilot.pause(0.2)
        assert pane.transcript.entries == 1  # from `events`: the state change
        await pilot.press("b")
        assert app.main.has_class("-no-sidebar") and not app.layout.sidebar
        await pilot.press("b")
        assert not app.main.has_class("-no-sidebar")


@sync
async def test_send_stop_restart_interrupt() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.main.show_session("b2")
        await pilot.press("m")
        await pilot.pause(0.05)
        assert isinstance(app.screen, LineInputScreen)
        await pilot.press(*"go on", "enter")
        await pilot.pause(0.1)
        assert calls(app, "keys")[-1] == {"id": "b2", "data": "go on\r"}
        await pilot.press("s")
        await pilot.press("r")
        await pilot.press("i")
        await pilot.pause(0.1)
        assert calls(app, "stop") == [{"id": "b2"}] and calls(app, "restart") == [{"id": "b2"}]
        assert calls(app, "keys")[-1] == {"id": "b2", "data": "\x03"}
        assert ("information", "docs-pass: stopped") in app.notes


@sync
async def test_send_to_builtin_agent_when_send_is_missing() -> None:
    app = HarnessApp(sessions=[session("k", "agent-1", agent="builtin")], screens={})
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert app.main.panes["k"].view == "transcript"
        await pilot.press("m")
        await pilot.press(*"hi", "enter")
        await pilot.pause(0.1)
        assert calls(app, "send") == [{"id": "k", "text": "hi"}]
        assert ("warning", "sending to the built-in agent is not available yet") in app.notes


@sync
async def test_remove_asks_first() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("d")
        await pilot.pause(0.05)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause(0.05)
        assert not calls(app, "rm")
        await pilot.press("d")
        await pilot.press("y")
        await pilot.pause(0.1)
        assert calls(app, "rm") == [{"id": app.layout.focus}]


@sync
async def test_removed_and_session_events_update_the_list() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.post_message(DaemonEvent("removed", {"id": "c3"}))
        await pilot.pause(0.1)
        assert "c3" not in app.main.session_list._keys and "c3" not in app.main.panes
        b2 = {**sample_sessions()[1], "state": "waiting", "reason": "idle prompt"}
        app.post_message(DaemonEvent("session", b2))
        await pilot.pause(0.1)
        # b2 started waiting while we look elsewhere: a toast
        assert ("warning", "docs-pass: idle prompt") in app.notes
        assert "⚑" in str(app.main.session_list.get_option("b2").prompt)


@sync
async def test_new_session_dialog_submits_every_field() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("ctrl+n")
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, NewSessionScreen)
        assert screen.form.recent == ["/work/api", "/work/web"]
        assert screen.form.repo == "/work/api"  # the focused session's repo
        await pilot.press(*"add tests")
        screen.query_one("#sandbox").value = "off"
        screen.query_one("#approval").value = "full-auto"
        screen.query_one("#network").value = True
        screen.query_one("#base").value = "main"
        await pilot.press("enter")
        await pilot.pause(0.2)
        new = calls(app, "new")
        assert len(new) == 1
        p = new[0]
        assert (p["repo"], p["prompt"], p["sandbox"], p["approval"], p["network"], p["base"]) == (
            "/work/api", "add tests", "off", "full-auto", True, "main")
        assert p["cols"] >= 20 and p["rows"] >= 5


@sync
async def test_new_session_dialog_offers_the_providers_config_defines_now(isolated_env: Path) -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        # Written after the UI started: the dialog reads config.toml when it opens.
        (isolated_env / "config" / "workbench").mkdir(parents=True, exist_ok=True)
        (isolated_env / "config" / "workbench" / "config.toml").write_text(
            '[providers.local]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n')
        await pilot.press("ctrl+n")
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, NewSessionScreen)
        assert "local" in str(screen.query_one("#provider", Input).placeholder)
        screen.query_one("#agent", Input).value = "builtin"
        screen.query_one("#provider", Input).value = "local"
        screen.query_one("#model", Input).value = "qwen2.5-coder"
        await pilot.press("enter")
        await pilot.pause(0.2)
        p = calls(app, "new")[0]
        assert (p["agent"], p["provider"], p["model"]) == ("builtin", "local", "qwen2.5-coder")


@sync
async def test_new_session_dialog_needs_a_repo_and_escape_cancels() -> None:
    app = HarnessApp(sessions=[], screens={})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        await pilot.press("ctrl+n")
        await pilot.pause(0.2)
        screen = app.screen
        assert isinstance(screen, NewSessionScreen)
        screen.query_one("#repo").value = ""
        await pilot.press("ctrl+s")
        assert "a repository path is needed" in str(screen.query_one("#error").render())
        await pilot.press("escape")
        await pilot.pause(0.05)
        assert app.screen is app.main and not calls(app, "new")


@sync
async def test_help_lists_every_binding_id() -> None:
    from workbench.ui.keymap import DEFAULT_KEYS

    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-keys").render())
        for bid in [*DEFAULT_KEYS, "terminal.detach"]:
            assert bid in text
        await pilot.press("escape")
        assert app.screen is app.main


def test_help_shows_keys_as_typed_in_their_own_column() -> None:
    """The help showed `exclamation_mark`, and `ctrl+space, ctrl+@` ran into its binding id
    (`ctrl+@app.attention`): keys read as a person types them, in a column wide enough."""
    from workbench.ui.keymap import DEFAULT_KEYS
    from workbench.ui.screens.help import help_content, key_label

    assert key_label("exclamation_mark") == "!"
    assert key_label("ctrl+right_square_bracket") == "ctrl+]"
    assert key_label("plus,equals_sign") == "+, ="
    assert key_label("question_mark,f1") == "?, f1"
    assert key_label("shift+down") == "shift+↓"
    # Names whose character is a control or blank one stay names.
    assert key_label("space,escape,tab,enter") == "space, escape, tab, enter"
    lines = str(help_content({**DEFAULT_KEYS, "terminal.detach": "ctrl+right_square_bracket"})).splitlines()
    rows = {ln.split()[-1]: ln for ln in lines if ln.startswith("  ")}
    by_id = {bid: next(ln for ln in lines if f" {bid} " in ln) for bid in DEFAULT_KEYS}
    assert "ctrl+space, ctrl+@  app.attention " in by_id["app.attention"]
    assert by_id["app.suggestions"].split()[0] == "!"
    # Every binding id starts in the same column.
    assert len({ln.index(f" {bid} ") for bid, ln in by_id.items()}) == 1
    assert rows


@sync
async def test_every_binding_has_an_id_and_a_description() -> None:
    from workbench.ui.app import WorkbenchApp
    from workbench.ui.keymap import DEFAULT_KEYS, DESCRIPTIONS
    from workbench.ui.screens.main import MainScreen

    for cls in (WorkbenchApp, MainScreen, ApprovalCard, NewSessionScreen, HelpScreen, LineInputScreen,
                ConfirmScreen):
        for b in cls.BINDINGS:
            assert b.id, f"{cls.__name__} {b.key} has no id"  # type: ignore[union-attr]
            if b.id in DEFAULT_KEYS:  # type: ignore[union-attr]
                assert b.key == DEFAULT_KEYS[b.id] and b.id in DESCRIPTIONS  # type: ignore[union-attr]


@sync
async def test_user_keymap_overrides_a_binding(isolated_env: Path) -> None:
    cfg = paths.config_file()
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[keymap]\n"main.grid" = "G"\n"no.such" = "x"\n"terminal.detach" = "ctrl+c"\n')
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert any("unknown binding id 'no.such'" in m for _s, m in app.notes)
        assert app.detach_key == "ctrl+right_square_bracket"  # ctrl+c is the shell's
        await pilot.press("g")
        assert not app.layout.grid
        await pilot.press("G")
        await pilot.pause(0.1)
        assert app.layout.grid


@sync
async def test_palette_reaches_sessions_actions_and_themes() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause(0.1)
        await pilot.press(*"refactor-db")
        await pilot.pause(0.4)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.layout.focus == "d4"
        await pilot.press("ctrl+p")
        await pilot.press(*"high-contrast")
        await pilot.pause(0.4)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert app.theme == "workbench-high-contrast"
        await pilot.press("ctrl+p")
        await pilot.press(*"grid mode")
        await pilot.pause(0.4)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.layout.grid


@sync
async def test_theme_key_cycles_and_bad_theme_falls_back(isolated_env: Path) -> None:
    user = paths.user_themes_dir()
    user.mkdir(parents=True)
    (user / "broken.toml").write_text('name = "broken"\n[colors]\nprimary = "not-a-colour"\n')
    (user / "mine.toml").write_text('name = "mine"\ndark = true\n[colors]\nprimary = "#ff0000"\n')
    cfg = paths.config_file()
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[ui]\ntheme = "broken"\n')
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert app.theme == "workbench-dark"
        assert any("broken.toml" in m for _s, m in app.notes)
        assert any("theme 'broken' not found" in m for _s, m in app.notes)
        assert "mine" in app.wb_themes
        assert app.theme_variables["wb-waiting"]  # app variables present in a user theme too
        await pilot.press("f9")
        assert app.theme != "workbench-dark"


@sync
async def test_layout_is_restored_after_quitting() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("g")
        await pilot.pause(0.1)
        await pilot.press("right_square_bracket", "2", "plus")
        await pilot.pause(0.1)
        want = (app.layout.focus, list(app.layout.panes), dict(app.layout.views), dict(app.layout.weights))
        await pilot.press("q")
    saved = json.loads((paths.state_dir() / "ui.json").read_text())
    assert saved["grid"] is True
    app2 = HarnessApp()
    async with app2.run_test(size=SIZE) as pilot:
        await started(app2, pilot)
        got = (app2.layout.focus, list(app2.layout.panes), dict(app2.layout.views), dict(app2.layout.weights))
        assert got == want
        assert app2.layout.grid and len(app2.main.panes) == 4
        assert app2.main.panes[want[0]].view == "transcript"


@sync
async def test_daemon_down_is_shown_and_f5_reconnects() -> None:
    from workbench.ui.messages import DaemonDown

    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.link.up = False
        app.post_message(DaemonDown("connection reset"))
        await pilot.pause(0.1)
        assert "down" in str(app.main.status.render())
        assert app.main.status.has_class("-down")
        app.link.up = True
        await pilot.press("f5")
        await pilot.pause(0.3)
        assert "daemon ok" in str(app.main.status.render())
        assert ("information", "reconnected to the daemon") in app.notes


@sync
async def test_attach_to_a_session_by_name() -> None:
    app = HarnessApp(focus_session="docs-pass")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.focused, TerminalView))
        assert app.layout.focus == "b2"
        assert isinstance(app.focused, TerminalView) and app.focused.state.session == "b2"


@pytest.mark.parametrize("size", [(80, 24), (200, 50)])
@sync
async def test_four_sessions_side_by_side_at_both_sizes(size: tuple[int, int]) -> None:
    app = HarnessApp()
    async with app.run_test(size=size) as pilot:
        await started(app, pilot)
        await pilot.press("g")
        await pilot.pause(0.2)
        panes = list(app.main.panes.values())
        assert len(panes) == 4
        for p in panes:
            assert p.terminal.size.width >= 10 and p.terminal.size.height >= 3
            assert p.region.right <= size[0] and p.region.bottom <= size[1]


@sync
async def test_transcript_shows_stream_tools_plan_errors_and_compaction() -> None:
    from textual.widgets import Collapsible

    app = HarnessApp(sessions=[session("k", "agent-1", agent="builtin")], screens={})
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        tr = app.main.panes["k"].transcript

        def log(seq: int, kind: str, **data: Any) -> None:
            app.post_message(DaemonEvent("log", {"session": "k", "seq": seq, "ts": 0, "kind": kind,
                                                 "data": data}))

        log(10, "user", text="fix the bug")
        app.post_message(DaemonEvent("delta", {"session": "k", "text": "Looking"}))
        app.post_message(DaemonEvent("delta", {"session": "k", "text": " at it\x1b]0;x\x07"}))
        await pilot.pause(0.1)
        assert tr._stream is not None and tr._stream_text == "Looking at it"
        log(11, "assistant", text="Looking at it.")
        log(12, "tool_call", call_id="c1", name="shell", describe="pytest -q")
        log(13, "tool_output", call_id="c1", output="1 failed", is_error=True)
        log(14, "plan", steps=[{"step": "reproduce", "status": "completed"},
                               {"step": "fix", "status": "in_progress"}])
        log(15, "error", message="rate limited")
        log(16, "compaction", before=120000, after=30000)
        log(11, "assistant", text="duplicate is ignored")
        await pilot.pause(0.2)
        assert tr._stream is None
        texts = [str(w.render()) for w in tr.query("Static") if not w.has_class("output")]
        joined = "\n".join(texts)
        assert "> fix the bug" in joined and "Looking at it." in joined
        assert "duplicate" not in joined
        assert "☑ reproduce" in joined and "▶ fix" in joined
        assert "error: rate limited" in joined and "120000 → 30000" in joined
        box = tr.query_one(Collapsible)
        assert box.collapsed and box.has_class("-error") and "pytest -q" in box.title
        assert str(tr._outputs["c1"].render()) == "1 failed"


@sync
async def test_wheel_scrolls_back_through_history() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        term = app.main.panes[app.layout.focus].terminal
        term._wheel(-1, None)  # type: ignore[arg-type]
        await pilot.pause(0.2)
        assert term.scroll_back == 3
        lines = term.visible_text()
        assert lines[0] == "old line 47" and lines[2] == "old line 49"
        assert lines[3] == "Traceback (most recent call last):"
        term._wheel(1, None)  # type: ignore[arg-type]
        await pilot.pause(0.05)
        assert term.scroll_back == 0 and term.visible_text()[0].startswith("Traceback")


@sync
async def test_identical_notifications_are_merged() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.notes.clear()
        for _ in range(30):
            app.notify("session x is not running", severity="error")
        app.notify("something else")
        assert app.notes == [("error", "session x is not running"), ("information", "something else")]
        # and a burst of different ones is capped
        for i in range(20):
            app.notify(f"distinct {i}")
        assert len(app.notes) <= 5


@sync
async def test_j_and_k_move_in_the_list_and_space_jumps_to_attention() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert app.layout.focus == "c3"
        await pilot.press("j")
        assert app.layout.focus == "a1"
        await pilot.press("j")
        assert app.layout.focus == "b2"
        await pilot.press("k")
        assert app.layout.focus == "a1"
        app.main.show_session("b2")
        await pilot.press("space")
        await pilot.pause(0.1)
        assert app.layout.focus == "a1"  # waiting first


class RecordingScreen(MainScreen):
    """The main screen, recording the app's messages it is posted and the calls of the methods
    those messages lead to: a call without its message first means the app reached in."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def post_message(self, message: Message) -> bool:
        if type(message).__module__ == "workbench.ui.messages":
            self.seen.append(type(message).__name__)
        return super().post_message(message)

    def sessions_changed(self) -> None:
        self.seen.append("sessions_changed()")
        super().sessions_changed()

    def show_session(self, sid: str) -> None:
        self.seen.append("show_session()")
        super().show_session(sid)


@sync
async def test_the_app_tells_the_screen_by_messages() -> None:
    app = HarnessApp()
    screen = app.main = RecordingScreen()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        screen.seen.clear()
        app.post_message(DaemonEvent("session", {**app.sessions["b2"], "state": "waiting"}))
        await until(pilot, lambda: "sessions_changed()" in screen.seen)
        assert screen.seen[:2] == ["SessionsChanged", "sessions_changed()"]
        screen.seen.clear()
        app.action_attention()  # b2 is waiting now; a1 (waiting, with a card) comes first
        await until(pilot, lambda: "show_session()" in screen.seen)
        assert screen.seen[:2] == ["ShowSession", "show_session()"]
        await pilot.pause(0.1)
        assert app.layout.focus == "a1" and isinstance(app.focused, ApprovalCard)  # shown, then focused
        screen.seen.clear()
        app.post_message(FrameEvent(frame("a1", ["straight to the screen"])))
        await until(pilot, lambda: screen.seen == ["FrameEvent"])  # the app does not apply it first
