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
