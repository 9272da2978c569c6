"""Small helpers importable by tests (`from tests.helpers import ...`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(fn: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, what: str = "") -> T:
    """Poll `fn` until it returns a truthy value; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T = fn()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or fn!r}: {last!r}")
        time.sleep(interval)
        last = fn()
    return last


def process_ended(pid: int) -> bool:
    """`pid` is gone, or a zombie whose every thread has exited (its files, the daemon's
    listening socket among them, are closed only then: a leader that shows as a zombie
    while its other threads still exit keeps accepting connections that are then reset)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            status = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return True
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return fields.get("State", "").strip().startswith("Z") and fields.get("Threads", "").strip() == "1"


def end_process(pid: int, grace_s: float = 10.0) -> None:
    """Wait up to `grace_s` for `pid` (asked to stop) to exit, then SIGKILL it."""
    import contextlib
    import os
    import signal

    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def sandbox_visible_binds() -> list[str]:
    """The checkout and the Python running the tests, for sandboxed test programs.

    The sandbox gives sessions a private /tmp; a checkout or venv under /tmp (as in a CI
    clone) would otherwise be invisible to fake agents started inside it.
    """
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    return sorted({str(root), sys.prefix, sys.base_prefix})
