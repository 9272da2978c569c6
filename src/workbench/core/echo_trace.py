"""Timestamps along a keystroke's way to its echo, for `benchmarks/echo_under_load.py --trace`.

Off unless `WORKBENCH_ECHO_TRACE` names a directory; then every process that marks (the
benchmark, the UI, the daemon) appends "STAGE MONOTONIC_SECONDS" lines to DIR/PID.log.
CLOCK_MONOTONIC is one clock for all processes of the machine, so the benchmark can line
the stages of each key up across them. Off, a mark costs one global lookup and a test.
"""

from __future__ import annotations

import os
import time

_DIR = os.environ.get("WORKBENCH_ECHO_TRACE") or ""
_fd = -1


def mark(stage: str) -> None:
    """Record that a keystroke reached `stage` now (no-op unless tracing)."""
    if not _DIR:
        return
    global _fd
    if _fd < 0:
        _fd = os.open(os.path.join(_DIR, f"{os.getpid()}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.write(_fd, f"{stage} {time.monotonic():.6f}\n".encode())


def enable(directory: str) -> None:
    """Trace this process (its children learn it from the environment variable)."""
    global _DIR
    _DIR = directory
    os.environ["WORKBENCH_ECHO_TRACE"] = directory
