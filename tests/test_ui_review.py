"""Pilot tests of the diff review viewer: navigation, each review action, finishing (merge,
discard), checks and attempts, over the fake daemon link (tests/ui_review_fakes.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.test_ui_app import SIZE, calls, started, sync
from tests.ui_fakes import HarnessApp, sample_sessions, session
from tests.ui_review_fakes import FakeReview
from workbench.protocol import review as pr
from workbench.ui.dialogs import ConfirmScreen, LineInputScreen
from workbench.ui.messages import DaemonEvent
from workbench.ui.screens.compare import CompareScreen
from workbench.ui.screens.merge import MergeScreen
from workbench.ui.widgets.diff_panel import DiffPanel
from workbench.ui.widgets.diff_view import DiffView


async def until(pilot: Any, pred: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    """Wait for `pred`; the timeout only bounds a hang (CI machines are loaded), it times nothing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (got := pred()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.03)
    return got


def view_text(view: DiffView) -> list[str]:
    return [view.render_line(y).text for y in range(view.size.height)]


async def open_diff(app: HarnessApp, pilot: Any, sid: str = "b2") -> DiffPanel:
    """Focus `sid`, press 3 (diff view) and enter (into the diff), as a reviewer would."""
    await started(app, pilot)
    app.main.show_session(sid)
    await pilot.pause(0.05)
    await pilot.press("3")
    panel = app.main.panes[sid].diff
    await until(pilot, lambda: panel.loads >= 1, "the diff")
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.focused, DiffView), "focus in the diff")
    return panel


def cursor_row(panel: DiffPanel) -> tuple[str, str, int]:
    """(kind, path, hunk index) under the cursor."""
    row = panel.view.current()
    assert row is not None and panel.doc is not None
    return row.kind, panel.doc.files[row.file].path, row.hunk


@sync
async def test_hunk_and_file_navigation_with_single_keys() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_diff(app, pilot)
        assert "diff" in app.link.apart  # type: ignore[attr-defined]
        assert cursor_row(panel) == ("file", "docs/new.md", -1)
        await pilot.press("n")
        assert cursor_row(panel) == ("hunk", "docs/new.md", 0)
        await pilot.press("n")  # logo.png has no hunks: on to old_script.sh's
        assert cursor_row(panel) == ("hunk", "old_script.sh", 0)
        await pilot.press("n")
        assert cursor_row(panel) == ("hunk", "src/mod0.py", 0)
        await pilot.press("n")
        assert cursor_row(panel) == ("hunk", "src/mod0.py", 1)
        await pilot.press("p")
        assert cursor_row(panel) == ("hunk", "src/mod0.py", 0)
        await pilot.press("right_square_bracket")
        assert cursor_row(panel) == ("file", "src/mod1.py", -1)
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert cursor_row(panel) == ("file", "old_script.sh", -1)
        await pilot.pause(0.05)
        assert panel.files.highlighted == 2  # the file list follows the cursor
        await pilot.press("j", "j")
        assert cursor_row(panel)[0] == "line"
        # the file list jumps too
        panel.files.focus()
        panel.files.highlighted = 5
        await pilot.press("enter")
        await pilot.pause(0.05)
        assert cursor_row(panel) == ("file", "src/mod2.py", -1) and isinstance(app.focused, DiffView)
        # the list's escape takes you back to the session list
        await pilot.press("escape")
        assert app.focused is app.main.session_list


@sync
async def test_unified_and_split_toggle_with_one_key() -> None:
    app = HarnessApp()
    async with app.run_test(size=(160, 40)) as pilot:
        panel = await open_diff(app, pilot)
        await pilot.press("right_square_bracket", "right_square_bracket", "right_square_bracket")
        assert cursor_row(panel) == ("file", "src/mod0.py", -1)
        text = "\n".join(view_text(panel.view))
        assert "-     value_3 = compute(3)" in text and "+     value_3 = compute_fast(3)" in text
        await pilot.press("v")
        await until(pilot, lambda: panel.view.split, "split view")
        assert cursor_row(panel) == ("file", "src/mod0.py", -1)  # the cursor stays put
        rows = view_text(panel.view)
        pair = next(r for r in rows if "compute_fast(3)" in r)
        # old on the left, new on the right, on one row
        assert pair.index("compute(3)") < pair.index("│") < pair.index("compute_fast(3)")
        assert "split (v)" in str(panel.header.render())
        await pilot.press("v")
        await until(pilot, lambda: not panel.view.split, "unified again")


@sync
async def test_mark_reviewed_moves_on_and_undo_takes_it_back() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_diff(app, pilot)
        await pilot.press("n")
        hunk = panel.doc.files[0].hunks[0]  # type: ignore[union-attr]
        await pilot.press("a")
        await until(pilot, lambda: calls(app, "mark_reviewed"), "mark_reviewed")
        assert calls(app, "mark_reviewed") == [{"id": "b2", "hunk": hunk.id, "reviewed": True}]
        await until(pilot, lambda: panel.doc.files[0].review_status == "reviewed", "file reviewed")  # type: ignore[union-attr]
        assert cursor_row(panel) == ("hunk", "old_script.sh", 0)  # on to the next hunk
        assert "reviewed 1/11" in str(panel.header.render())
        assert str(panel.files.get_option_at_index(0).prompt).startswith("✓")
        # a whole file at once (the binary has no hunks: its key)
        panel.view.jump_to_file(1)
        await pilot.press("A")
        await until(pilot, lambda: len(calls(app, "mark_reviewed")) == 2, "file mark")
        assert calls(app, "mark_reviewed")[1] == {"id": "b2", "path": "logo.png", "reviewed": True}
        await until(pilot, lambda: "reviewed 2/11" in str(panel.header.render()), "2 reviewed")
        await pilot.press("u")
        await until(pilot, lambda: calls(app, "undo"), "undo")
        await until(pilot, lambda: "reviewed 1/11" in str(panel.header.render()), "undo shown")


@sync
async def test_reject_two_hunks_with_reasons_comment_and_send_the_review() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_diff(app, pilot)
        fake: FakeReview = app.link.review  # type: ignore[attr-defined]
        panel.view.jump_to_file(3)  # src/mod0.py, two hunks
        await pilot.press("n")
        first = panel.doc.files[3].hunks[0].id  # type: ignore[union-attr]
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, LineInputScreen), "reason dialog")
        await pilot.press(*"too slow", "enter")
        await until(pilot, lambda: calls(app, "reject"), "reject")
        assert calls(app, "reject") == [{"id": "b2", "hunk": first, "reason": "too slow"}]
        # the hunk is gone from the diff; a note says it was rejected, with the reason
        await until(pilot, lambda: len(panel.doc.files[3].hunks) == 1, "reloaded diff")  # type: ignore[union-attr]
        assert any("✖ rejected @@ -1,7 +1,7 @@: too slow" in line for line in view_text(panel.view))
        # reject a second one, in another file
        panel.view.jump_to_file(5)
        await pilot.press("n", "x")
        await until(pilot, lambda: isinstance(app.screen, LineInputScreen), "reason dialog")
        await pilot.press(*"keep the old name", "enter")
        await until(pilot, lambda: len(calls(app, "reject")) == 2, "second reject")
        assert calls(app, "reject")[1]["reason"] == "keep the old name"
        # escape in the dialog cancels: nothing is called
        await pilot.press("n", "x")
        await until(pilot, lambda: isinstance(app.screen, LineInputScreen), "reason dialog")
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert len(calls(app, "reject")) == 2
        # a comment on a line range: select two lines, then c
        assert [f.path for f in panel.doc.files][5] == "src/mod3.py"  # type: ignore[union-attr]
        panel.view.jump_to_file(5)  # src/mod2.py is gone: its only hunk was rejected
        await pilot.press("n", "j", "j", "J")
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, LineInputScreen), "comment dialog")
        await pilot.press(*"name this better", "enter")
        await until(pilot, lambda: calls(app, "comment"), "comment")
        assert calls(app, "comment") == [{"id": "b2", "path": "src/mod3.py", "line": 5, "end_line": 6,
                                          "text": "name this better"}]
        await until(pilot, lambda: any("✎ line 5-6: name this better" in ln for ln in view_text(panel.view)),
                    "comment shown under its lines")
        assert "2 rejected, 1 comment" in str(panel.header.render())
        # S: preview, then y sends it to the agent
        await pilot.press("S")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "preview")
        body = str(app.screen.query_one("#body").render())
        assert "too slow" in body and "keep the old name" in body and "name this better" in body
        await pilot.press("y")
        await until(pilot, lambda: fake.sent, "sent")
        assert {"id": "b2", "send": True} in calls(app, "review")
        await until(pilot, lambda: ("information", "review sent to docs-pass (keys)") in app.notes, "note")
        await until(pilot, lambda: "pending" not in str(panel.header.render()), "nothing pending")


@sync
async def test_revert_file_and_nothing_to_send() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_diff(app, pilot)
        await pilot.press("S")
        await until(pilot, lambda: any("nothing to send" in m for _s, m in app.notes), "nothing to send")
        panel.view.jump_to_file(2)
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, LineInputScreen), "revert dialog")
        await pilot.press("enter")  # no reason: fine
        await until(pilot, lambda: calls(app, "revert_file"), "revert")
        assert calls(app, "revert_file") == [{"id": "b2", "path": "old_script.sh", "reason": ""}]
        await until(pilot, lambda: len(panel.doc.files) == 9, "file gone from the diff")  # type: ignore[union-attr]


@sync
async def test_merge_error_keeps_the_input_then_merges() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        await open_diff(app, pilot)
        await pilot.press("M")
        # nothing was reviewed: asked once, before the dialog
        ask = await until(pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen, "the question")
        assert ask.question == "11 of 11 hunks not reviewed — merge anyway?"
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, MergeScreen), "merge dialog")
        await pilot.press(*"fix: a conflict")
        app.screen.query_one("#strategy").value = "rebase"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: calls(app, "merge"), "merge call")
        assert calls(app, "merge") == [{"id": "b2", "message": "fix: a conflict", "strategy": "rebase"}]
        # the error is shown in the dialog, which keeps what was typed and chosen
        screen = await until(pilot, lambda: isinstance(app.screen, MergeScreen) and app.screen, "dialog again")
        await pilot.pause(0.1)
        assert "merge conflict in src/mod0.py" in str(screen.query_one("#merge-error").render())
        assert screen.query_one("#message").text == "fix: a conflict"
        assert screen.query_one("#strategy").value == "rebase"
        screen.query_one("#message").text = "fix: login"
        screen.query_one("#strategy").value = "ff"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(calls(app, "merge")) == 2, "second merge")
        assert calls(app, "merge")[1] == {"id": "b2", "message": "fix: login", "strategy": "ff"}
        await until(pilot, lambda: any("merged into main (ff" in m for _s, m in app.notes), "merged note")
        assert app.screen is app.main


@sync
async def test_discard_asks_first() -> None:
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_diff(app, pilot)
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm")
        assert "Discard every change of docs-pass" in str(app.screen.query_one("#question").render())
        await pilot.press("n")
        await pilot.pause(0.1)
        assert not calls(app, "discard")
        await pilot.press("D", "y")
        await until(pilot, lambda: calls(app, "discard"), "discard")
        await until(pilot, lambda: panel.doc is not None and not panel.doc.files, "empty diff")
        assert "no changes" in str(panel.header.render())


@sync
async def test_check_beside_the_diff_and_in_the_list_and_send_check() -> None:
    sessions = sample_sessions()
    sessions[1].update(check="failed", check_tail="1 failed", check_exit_code=1)
    app = HarnessApp(sessions=sessions)
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_diff(app, pilot)
        assert "✖ check" in str(app.main.session_list.get_option("b2").prompt)
        text = str(panel.check.render())
        assert "check failed (pytest -q, exit 1" in text and "FAILED tests/test_a.py::test_x" in text
        assert "E sends the output to the agent" in text
        await pilot.press("E")
        await until(pilot, lambda: calls(app, "send_check"), "send_check")
        assert calls(app, "send_check") == [{"id": "b2"}]
        assert "send_check" in app.link.apart  # type: ignore[attr-defined]
        await pilot.press("C")
        await until(pilot, lambda: calls(app, "check"), "check")
        await until(pilot, lambda: "check passed" in str(panel.check.render()), "check result shown")
        # a running check shows in the panel and the list, from the session event
        app.post_message(DaemonEvent("session", {**sessions[1], "check_running": True}))
        await pilot.pause(0.1)
        assert "check running" in str(panel.check.render())
        assert "checking" in str(app.main.session_list.get_option("b2").prompt)


@sync
async def test_compare_attempts_and_pick_the_winner() -> None:
    sessions = [session("t1", "task-1", "review", extra={"attempt_group": "g1"}, added=3, removed=1),
                session("t2", "task-2", "review", extra={"attempt_group": "g1"}, added=9, removed=0)]
    app = HarnessApp(sessions=sessions, screens={})
    failed = pr.CheckResult(status="failed", exit_code=1, duration_s=0.8, tail="AssertionError", command="pytest -q",
                            reason="", finished_at=0.0)
    app.link.compare = pr.CompareResult(group="g1", sessions=[  # type: ignore[attr-defined]
        pr.AttemptEntry(id="t1", name="task-1", state="review", check="failed",
                        stat=pr.DiffStat(files=1, added=3, removed=1),
                        files=[pr.AttemptFile(path="a.py", status="modified", added=3, removed=1, binary=False)],
                        check_result=failed),
        pr.AttemptEntry(id="t2", name="task-2", state="review", check="passed",
                        stat=pr.DiffStat(files=2, added=9, removed=0),
                        files=[pr.AttemptFile(path="a.py", status="modified", added=4, removed=0, binary=False),
                               pr.AttemptFile(path="b.py", status="added", added=5, removed=0, binary=False)])])
    async with app.run_test(size=SIZE) as pilot:
        await started(app, pilot)
        await pilot.press("P")
        screen = await until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen, "compare")
        assert calls(app, "compare") == [{"id": "t1"}]
        texts = [str(s.render()) for s in screen.query("VerticalScroll Static")]
        assert "task-1" in texts[0] and "✖ check failed" in texts[0] and "AssertionError" in texts[0]
        assert "task-2" in texts[1] and "b.py  +5 -0" in texts[1] and "✔ check passed" in texts[1]
        await pilot.press("right", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "confirm pick")
        assert "Pick task-2? The other attempts (task-1)" in str(app.screen.query_one("#question").render())
        await pilot.press("y")
        await until(pilot, lambda: calls(app, "pick"), "pick")
        assert calls(app, "pick") == [{"id": "t2"}]
        await until(pilot, lambda: ("information", "task-2 wins; removed task-1") in app.notes, "note")


@sync
async def test_large_file_and_huge_hunk_collapsed_until_opened() -> None:
    big_old = [f"line {i}\n" for i in range(1600)]
    big_new = [f"line {i} changed\n" if i % 20 == 1 else f"line {i}\n" for i in range(1600)]
    files = {"big.txt": (big_old, big_new), "small.py": (["a = 1\n"], ["a = 2\n"]),
             "huge.txt": ([], [f"row {i}\n" for i in range(300)])}
    app = HarnessApp()
    app.link.review = FakeReview(files)  # type: ignore[attr-defined]
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_diff(app, pilot)
        text = "\n".join(view_text(panel.view))
        assert "▸ ○ M big.txt" in text and "lines — enter opens" in text
        big = panel.doc.files[0]  # type: ignore[union-attr]
        assert big.collapsed and all(h.lines is None for h in big.hunks)
        await pilot.press("enter")  # on big.txt's header: open it
        await until(pilot, lambda: not panel.doc.files[0].collapsed, "opened")  # type: ignore[union-attr]
        assert any("line 1 changed" in ln for ln in view_text(panel.view))
        await pilot.press("enter")  # and close it again
        await until(pilot, lambda: panel.doc.files[0].collapsed, "closed")  # type: ignore[union-attr]
        # the 300-line hunk of huge.txt is folded inside an open file
        panel.view.jump_to_file(1)
        await pilot.press("n", "j")
        assert panel.view.current().kind == "fold"  # type: ignore[union-attr]
        await pilot.press("enter")
        await until(pilot, lambda: panel.doc.files[1].hunks[0].lines is not None, "hunk opened")  # type: ignore[union-attr]


@sync
async def test_review_keys_are_listed_in_help_and_have_ids() -> None:
    from workbench.ui.keymap import DEFAULT_KEYS, DESCRIPTIONS
    from workbench.ui.screens.merge import MergeScreen

    for cls in (DiffView, MergeScreen, CompareScreen):
        for b in cls.BINDINGS:
            assert b.id in DEFAULT_KEYS and b.key == DEFAULT_KEYS[b.id], b  # type: ignore[union-attr]
            assert b.id in DESCRIPTIONS  # type: ignore[union-attr]


@sync
async def test_the_review_keys_line_fits_and_keeps_the_help_key() -> None:
    """At 110 columns the line was cut at the panel's edge, taking `? keys` (the way to every
    other key) with it; now the keys that fit are shown, then `? keys`."""
    from workbench.ui.widgets.diff_panel import REVIEW_KEYS, keys_hint

    assert keys_hint(500) == " · ".join([*REVIEW_KEYS, "? keys"])
    assert keys_hint(30) == "n/p hunk · ]/[ file · ? keys"
    assert keys_hint(3) == "? keys"
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        panel = await open_diff(app, pilot)
        await pilot.pause(0.1)
        line = str(panel.keys_line.render())
        assert line.endswith("? keys") and "n/p hunk" in line
        assert len(line) <= panel.keys_line.content_region.width


@sync
async def test_a_test_runners_separator_is_one_line_of_the_check_panel() -> None:
    """unittest's 70-dash separator wrapped into three lines of dashes in the ~35-column
    panel, pushing the output's last lines out of the tail it shows."""
    from workbench.ui.widgets.check_panel import check_content

    tail = "..\n" + "-" * 70 + "\nRan 2 tests in 0.000s\n" + "=" * 70 + "\nOK"
    assert str(check_content({"check": "passed", "check_tail": tail}, None, None, 30)).splitlines()[2:] == [
        "..", "-" * 30, "Ran 2 tests in 0.000s", "=" * 30, "OK"]
    app = HarnessApp()
    async with app.run_test(size=SIZE) as pilot:
        review = app.link.review  # type: ignore[attr-defined]
        review.check = {**review.check, "tail": tail}
        panel = await open_diff(app, pilot)
        await until(pilot, lambda: "Ran 2 tests" in str(panel.check.render()), "the check's tail")
        width = panel.check.content_region.width
        rules = [ln for ln in str(panel.check.render()).splitlines() if set(ln) in ({"-"}, {"="})]
        assert [len(r) for r in rules] == [width, width]
