"""How the UI shows a session's state and acts on it: keys to a stopped session are refused
with one inline notice (no toast per key), attaching to one says so in its pane, a session
without a sandbox is red in the list, the pane title and the status bar, check labels, and the
list's change counts come from the session description (no diff call)."""

from __future__ import annotations

from tests.test_ui_app import SIZE, calls, started, sync
from tests.ui_fakes import HarnessApp, sample_sessions, session
from workbench.ui import model
from workbench.ui.messages import DaemonEvent
from workbench.ui.widgets.session_list import entry
from workbench.ui.widgets.session_pane import header_content
from workbench.ui.widgets.status_bar import status_content
from workbench.ui.widgets.terminal import TerminalView


@sync
async def test_keys_to_a_stopped_session_give_one_inline_notice() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        app.main.show_session("b2")
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert isinstance(app.focused, TerminalView)
        # the session stops while attached
        b2 = {**sample_sessions()[1], "state": "stopped", "alive": False}
        app.post_message(DaemonEvent("session", b2))
        await pilot.pause(0.1)
        await pilot.press(*"hello world")
        await pilot.pause(0.1)
        assert app.link.keys == []  # type: ignore[attr-defined]
        pane = app.main.panes["b2"]
        assert pane.has_class("-notice")
        assert "stopped: keys are not sent — ctrl+] detaches, then r restarts it" in str(pane.notice.render())
        assert not [n for n in app.notes if n[0] == "error"]  # no toast, let alone one per key
        # detach, restart: the notice goes once it runs again
        await pilot.press("ctrl+right_square_bracket")
        app.post_message(DaemonEvent("session", {**b2, "state": "running", "alive": True}))
        await pilot.pause(0.1)
        assert not pane.has_class("-notice")


@sync
async def test_attach_to_a_stopped_session_says_so_in_the_pane() -> None:
    app = HarnessApp(sessions=[session("s1", "old", "stopped", alive=False)], screens={})
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert not isinstance(app.focused, TerminalView)
        assert "■ stopped — r restarts it" in str(app.main.panes["s1"].notice.render())


def test_sandbox_off_is_red_in_the_list_the_pane_title_and_the_status_bar() -> None:
    s = session("z", "risky", sandbox="off")
    safe = session("y", "safe", sandbox="workspace")
    line = entry(s, 0.0, {}, 40)
    assert any("$error" in str(span.style) and line.plain[span.start:span.end] == "risky" for span in line.spans)
    assert "no sandbox" in line.plain
    assert "no sandbox" not in entry(safe, 0.0, {}, 40).plain
    head = header_content(s)
    assert "sandbox off" in head.plain
    assert any("$error" in str(span.style) and head.plain[span.start:span.end] == "risky" for span in head.spans)
    assert "sandbox off" not in header_content(safe).plain
    bar = status_content([s, safe], "ok", True, "")
    assert "⚠ 1 sandbox off" in bar.plain
    assert any("$error" in str(span.style) for span in bar.spans if "sandbox" in bar.plain[span.start:span.end])


def test_keys_refused_and_check_labels() -> None:
    assert model.accepts_keys(session("a", "a", "running", alive=True))
    assert not model.accepts_keys(session("a", "a", "running", alive=False))
    assert not model.accepts_keys(session("a", "a", "stopped"))
    assert model.check_label(session("a", "a", check="failed")) == ("✖ check", "bold $error")
    assert model.check_label(session("a", "a", check="none")) is None


@sync
async def test_session_descriptions_give_the_list_its_counts_without_a_diff_call() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert "+37 -5" in str(app.main.session_list.get_option("a1").prompt)
        assert not calls(app, "diff")
