"""Nothing a session's start or end does may stall the daemon's event loop for long: the
other sessions' echo waits behind it. Found with a per-callback timer on the loop: every
session's end slept 100 ms in ptyprocess's close() (it waits "for the kernel" before
checking a child we had already reaped), and the first session's start parsed libghostty's
C types (~130 ms) on the loop."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest
from ptyprocess import ptyprocess as ptyprocess_module

from workbench.core import screen
from workbench.core.pty import PtyProcess


def test_a_pty_that_ends_is_closed_without_sleeping_on_the_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[tuple[float, str]] = []
    real_sleep = ptyprocess_module.time.sleep

    def recording(seconds: float) -> None:
        slept.append((seconds, threading.current_thread().name))
        real_sleep(seconds)

    monkeypatch.setattr(ptyprocess_module.time, "sleep", recording)

    async def run() -> int | None:
        proc = PtyProcess(["/bin/sh", "-c", "echo bye"], cwd=tmp_path, env=dict(os.environ), cols=80, rows=24)
        output: list[bytes] = []
        proc.start(output.append, lambda p: None)
        code = await asyncio.wait_for(proc.wait(), 30)
        assert b"bye" in b"".join(output)
        return code

    assert asyncio.run(run()) == 0
    assert [s for s in slept if s[0] > 0] == [], slept


def test_the_screen_types_are_parsed_before_the_first_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """`warm()` (run in a thread at the daemon's start) leaves nothing for a session's
    screen to parse: a new screen's whole life then asks cffi for no new C type."""
    from pyghostty import ffi

    screen.warm()
    parsed: list[str] = []
    typeof = type(ffi)._typeof

    def recording(self: object, cdecl: object, consider_function_as_funcptr: bool = False) -> object:
        if isinstance(cdecl, str) and cdecl not in ffi._parsed_types:  # type: ignore[attr-defined]
            parsed.append(cdecl)
        return typeof(self, cdecl, consider_function_as_funcptr)  # type: ignore[arg-type]

    monkeypatch.setattr(type(ffi), "_typeof", recording)
    with screen.TerminalScreen(120, 40, scrollback_lines=1000) as scr:
        scr.feed(b"\x1b[32mgreen\x1b[0m\r\n" * 60)
        scr.dirty_rows()
        scr.frame()
        scr.take_replies()
        _ = (scr.cursor, scr.title, scr.alt_screen)
    assert parsed == []


def test_quiet_histories_are_compacted_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compaction and the rebuilt terminal after it take 10-20 ms a screen: the sweep runs
    them in a worker thread, and one screen's failure does not stop it for the others."""
    from types import SimpleNamespace

    from workbench.daemon import server

    ran: list[tuple[str, float]] = []

    class Runtime:
        def __init__(self, sid: str, fails: bool = False) -> None:
            self.session_id, self.fails = sid, fails

        def compact_if_quiet(self, now: float) -> int:
            ran.append((self.session_id, threading.get_ident()))
            if self.fails:
                raise RuntimeError("broken screen")
            return 1

    daemon = server.Daemon.__new__(server.Daemon)
    daemon.manager = SimpleNamespace(runtimes={"a": Runtime("a", fails=True), "b": Runtime("b")})  # type: ignore[assignment]
    monkeypatch.setattr(server, "COMPACT_EVERY_S", 0.0)

    async def sweep() -> int:
        task = asyncio.create_task(daemon._compact_quiet_histories())
        while len(ran) < 4:
            await asyncio.sleep(0.01)
        task.cancel()
        return threading.get_ident()

    loop_thread = asyncio.run(sweep())
    assert {sid for sid, _ in ran} == {"a", "b"}
    assert all(thread != loop_thread for _, thread in ran), ran

