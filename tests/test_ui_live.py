"""The UI against a real daemon: attach and type, act from the list, new session, daemon loss."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.wb import Wb
from workbench import paths
from workbench.ui.app import WorkbenchApp
from workbench.ui.screens.new_session import NewSessionScreen
from workbench.ui.widgets.terminal import TerminalView


async def until(pilot: Any, pred: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        got = pred()
        if got:
            return got
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def test_live_session_round_trip(wb: Wb, repo: Path) -> None:
    cfg = paths.config_file()
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[session]\nsandbox = "off"\n')
    sid = wb.new(repo, "--sandbox", "off", "--name", "alpha")
    wb.wait_state(sid, "running")

    async def scenario() -> None:
        app = WorkbenchApp(strict=True)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: sid in app.main.panes, "the session's pane")
            # attach, type, see it on the daemon's screen and in the pane
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.focused, TerminalView), "attach")
            term = app.focused
            await until(pilot, lambda: term.state.cols == term.size.width, "PTY resized to the pane")
            await pilot.press(*"echo live-$((6*7))", "enter")
            await until(pilot, lambda: any(line.strip() == "live-42" for line in term.visible_text()),
                        "echoed output in the pane")
            assert "live-42" in wb.screen(sid)
            await pilot.press("ctrl+right_square_bracket")
            assert app.focused is app.main.session_list
            # stop and restart from the list
            await pilot.press("s")
            await until(pilot, lambda: app.sessions[sid]["state"] == "stopped", "stopped")
            await pilot.press("r")
            await until(pilot, lambda: app.sessions[sid]["state"] == "running", "running again")
            # a new session from the dialog
            await pilot.press("ctrl+n")
            await until(pilot, lambda: isinstance(app.screen, NewSessionScreen), "dialog")
            await pilot.press(*"hello")
            app.screen.query_one("#name").value = "beta"
            await pilot.press("enter")
            await until(pilot, lambda: any(s["name"] == "beta" for s in app.sessions.values()),
                        "the new session in the list", timeout=20)
            beta = next(s["id"] for s in app.sessions.values() if s["name"] == "beta")
            assert app.layout.focus == beta
            # remove it again, after confirming
            await pilot.press("d", "y")
            await until(pilot, lambda: beta not in app.sessions, "removal")
            assert [s["name"] for s in wb.json("ls")] == ["alpha"]
            # the daemon goes away: the UI says so; F5 starts it again
            await asyncio.to_thread(wb.run, "daemon", "stop")
            await until(pilot, lambda: not app.link.up, "daemon loss noticed")
            assert "down" in str(app.main.status.render())
            await pilot.press("f5")
            await until(pilot, lambda: app.link.up and "ok" in app.daemon_label, "reconnected", 20)
            await until(pilot, lambda: sid in app.sessions, "sessions listed again")
            await pilot.press("q")
        assert app.return_code in (0, None)

    asyncio.run(scenario())
    # quitting the UI left the session in place
    assert wb.session(sid)["name"] == "alpha"
    # The UI started this daemon (F5), so it is our child: stop it and reap it, or it lingers
    # as a zombie that the fixture's teardown would wait for.
    pid = wb.daemon_pid()
    assert pid is not None
    stopper = subprocess.Popen([sys.executable, "-m", "workbench", "daemon", "stop"], env=wb.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    assert stopper.wait(30) == 0
