"""A removed session's objects are freed by reference counting, not left for the cycle
collector: the daemon raises its thresholds (core/gc_pauses.py), so a full collection is
rare, and in a soak of create/remove steps such cycles held ~10 KB a session."""

from __future__ import annotations

import asyncio
import gc
import os
import weakref
from pathlib import Path

from workbench.core.pty import PtyProcess


def test_an_ended_ptys_owner_is_freed_without_the_cycle_collector(tmp_path: Path) -> None:
    """The owner (a session's runtime) hands its bound methods to the process it holds: the
    process drops them once it has ended, so a removed session's screen and buffers are
    freed at once, not at a full collection (rare with the daemon's raised thresholds)."""
    class Owner:
        def __init__(self) -> None:
            self.proc = PtyProcess(["/bin/sh", "-c", "echo bye"], cwd=tmp_path, env=dict(os.environ),
                                   cols=80, rows=24)
            self.out: list[bytes] = []

        def output(self, data: bytes) -> None:
            self.out.append(data)

        def exited(self, proc: PtyProcess) -> None:
            self.out.append(b"<exit>")

    async def run() -> weakref.ref[Owner]:
        owner = Owner()
        owner.proc.start(owner.output, owner.exited)
        await asyncio.wait_for(owner.proc.wait(), 30)
        for _ in range(100):  # the exit callback runs on the loop after the wait ends
            if owner.out[-1:] == [b"<exit>"]:
                break
            await asyncio.sleep(0.01)
        assert b"bye" in b"".join(owner.out) and owner.out[-1] == b"<exit>"
        return weakref.ref(owner)

    gc.disable()
    try:
        ref = asyncio.run(run())
        assert ref() is None, "the ended process still holds its owner through its callbacks"
    finally:
        gc.enable()
