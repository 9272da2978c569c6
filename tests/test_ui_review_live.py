"""The review flow against a real daemon, keyboard only: a 10-file change, two hunks rejected
with reasons, the review sent to the agent (a `cat` in a PTY, so its screen shows what it
got), the rest accepted, then merged; every step is in the session's event log."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import make_repo
from tests.test_ui_review import cursor_row, until
from tests.wb import Wb
from workbench import paths
from workbench.ui.app import WorkbenchApp
from workbench.ui.dialogs import ConfirmScreen, LineInputScreen
from workbench.ui.screens.merge import MergeScreen
from workbench.ui.widgets.diff_view import DiffView

REJECT = {"src/f3.py": "keep the old constant", "src/f7.py": "this breaks the API"}


def ten_file_repo(tmp: Path) -> Path:
    files = {f"src/f{i}.py": "".join(f"VALUE_{n} = {n}\n" for n in range(30)) for i in range(10)}
    return make_repo(tmp / "proj", files)


def edit_worktree(wt: Path) -> None:
    for i in range(10):
        f = wt / f"src/f{i}.py"
        lines = f.read_text().splitlines(keepends=True)
        lines[5] = f"VALUE_5 = {500 + i}  # tuned\n"
        if i == 0:
            lines[25] = "VALUE_25 = 'second hunk'\n"
        f.write_text("".join(lines))


def test_review_ten_files_by_keyboard_reject_two_send_and_merge(wb: Wb, tmp_path: Path) -> None:
    repo = ten_file_repo(tmp_path)
    cfg = paths.config_file()
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[session]\nsandbox = "off"\n')
    sid = wb.new(repo, "--sandbox", "off", "--agent", "cat", "--name", "rev")
    s = wb.wait_state(sid, "running")
    edit_worktree(Path(s["worktree"]))

    async def scenario() -> None:
        app = WorkbenchApp(strict=True)
        async with app.run_test(size=(140, 40)) as pilot:
            await until(pilot, lambda: sid in app.main.panes, "the session's pane", 10)
            await pilot.press("3")
            panel = app.main.panes[sid].diff
            await until(pilot, lambda: panel.doc is not None and len(panel.doc.files) == 10, "10 files", 10)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.focused, DiffView), "focus in the diff")
            await pilot.press("n")
            # Walk every hunk: reject the two, accept the rest; each key acts on the cursor's hunk.
            handled = 0
            while handled < 11:
                kind, path, _h = cursor_row(panel)
                assert kind == "hunk", (kind, path)
                before = panel.loads
                if path in REJECT:
                    await pilot.press("x")
                    await until(pilot, lambda: isinstance(app.screen, LineInputScreen), "reason dialog")
                    await pilot.press(*REJECT[path], "enter")
                else:
                    await pilot.press("a")
                await until(pilot, lambda b=before: panel.loads > b, "the diff reloaded", 10)  # type: ignore[misc]
                handled += 1
                if handled < 11:
                    await until(pilot, lambda: cursor_row(panel)[0] == "hunk", "on the next hunk")
            await until(pilot, lambda: panel.doc is not None and panel.doc.hunk_count() == (9, 9), "all reviewed")
            assert "2 rejected" in str(panel.header.render())
            # send the review: the agent (cat) receives both reasons
            await pilot.press("S")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "review preview", 10)
            await pilot.press("y")
            await until(pilot, lambda: "pending" not in str(panel.header.render()), "review sent", 10)
            screen = await asyncio.to_thread(wb.wait_screen, sid, "this breaks the API")
            assert "keep the old constant" in screen
            # merge with an edited message
            await pilot.press("M")
            merge = await until(pilot, lambda: isinstance(app.screen, MergeScreen) and app.screen, "merge")
            merge.query_one("#message").text = "tune the values"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: app.screen is app.main, "dialog closed", 20)
            await until(pilot, lambda: panel.doc is not None and not panel.doc.files, "empty diff after merge", 20)
            await pilot.press("q")

    asyncio.run(scenario())
    log = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%s"], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert log == "tune the values"
    merged = {i: (repo / f"src/f{i}.py").read_text() for i in range(10)}
    assert "VALUE_5 = 503" not in merged[3] and "VALUE_5 = 507" not in merged[7]  # rejected
    assert "VALUE_5 = 502  # tuned" in merged[2] and "'second hunk'" in merged[0]  # accepted
    events: list[dict[str, Any]] = wb.json("events", sid)
    kinds = [e["kind"] for e in events]
    assert kinds.count("review_reject") == 2 and kinds.count("review_mark") == 9
    assert "review_sent" in kinds and "merge" in kinds
    reasons = {e["data"].get("reason") for e in events if e["kind"] == "review_reject"}
    assert reasons == set(REJECT.values())
