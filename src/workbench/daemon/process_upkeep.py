"""Process-wide settings and upkeep of the daemon: how it waits for children, and handing
freed memory back to the system.

The daemon lives for days with dozens of sessions; its worker threads (git, snapshots,
checks) each grow a malloc arena, and a large diff's transient buffers leave the heap
fragmented. glibc keeps such memory (RSS went 61 -> 92-115 MB within minutes of mixed use
with 8 sessions, see docs/performance.md) unless it is asked to return it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import sys
import tracemalloc
import warnings

log = logging.getLogger(__name__)

TRIM_EVERY_S = 30.0
# Debugging memory growth: WORKBENCH_TRACEMALLOC=N traces the daemon's allocations (slow)
# and logs, at each trim, the N source lines whose allocations grew most since the start.
TRACE_ENV = "WORKBENCH_TRACEMALLOC"
_M_ARENA_MAX = -8  # mallopt() parameter (glibc's malloc.h)
_ARENAS = 2


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim, libc.mallopt  # noqa: B018 - glibc only (not musl)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def watch_children_with_pidfds() -> None:
    """Python 3.11's default child watcher starts a thread per child to block in waitpid and
    hands the exit back through the loop; a pidfd in the loop's selector does it without the
    thread (3.12 does this by default). Every tool call and check spawns a child."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # an old kernel, or a seccomp policy that refuses it
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        watcher = asyncio.PidfdChildWatcher()
        watcher.attach_loop(asyncio.get_running_loop())
        asyncio.set_child_watcher(watcher)


def limit_arenas() -> None:
    """At most two malloc arenas: threads share them instead of each keeping its own."""
    if _LIBC is not None:
        _LIBC.mallopt(_M_ARENA_MAX, _ARENAS)


def trim() -> bool:
    """Return freed heap pages to the system (glibc's malloc_trim); False where unsupported."""
    if _LIBC is None:
        return False
    _LIBC.malloc_trim(0)
    return True


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]


_MALLINFO2 = getattr(_LIBC, "mallinfo2", None)
if _MALLINFO2 is not None:
    _MALLINFO2.restype = _MallInfo2


def heap_bytes() -> tuple[int, int, int] | None:
    """glibc's own count of the heap: (bytes in use, of them mmapped, bytes freed but kept):
    a leak grows the first, fragmentation the last. None where mallinfo2 is missing
    (glibc < 2.33, musl)."""
    if _MALLINFO2 is None:
        return None
    info = _MALLINFO2()
    return info.uordblks + info.hblkhd, info.hblkhd, info.fordblks


def heap_stats() -> str:
    """`heap_bytes` for the log; "" where it is unknown."""
    counts = heap_bytes()
    if counts is None:
        return ""
    used, mapped, free = counts
    return f"heap: {used / 1e6:.1f} MB in use ({mapped / 1e6:.1f} mmapped), {free / 1e6:.1f} MB freed but kept"


def trace_top() -> int:
    """How many growth lines WORKBENCH_TRACEMALLOC asks for (0: not tracing)."""
    try:
        return max(int(os.environ.get(TRACE_ENV, "0")), 0)
    except ValueError:
        return 0


class AllocationTrace:
    """tracemalloc from now on; `report` logs what grew most since the first snapshot."""

    def __init__(self, top: int) -> None:
        self.top = top
        tracemalloc.start(4)
        self.baseline = tracemalloc.take_snapshot()

    def report(self) -> str:
        snap = tracemalloc.take_snapshot()
        # Leave out tracemalloc's own bookkeeping.
        ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
        stats = snap.filter_traces(ignore).compare_to(self.baseline.filter_traces(ignore), "traceback")
        current, peak = tracemalloc.get_traced_memory()
        lines = [f"tracemalloc: {current / 1e6:.1f} MB traced (peak {peak / 1e6:.1f}); {heap_stats()}; "
                 "grew most since start:"]
        for st in stats[: self.top]:
            # the allocating line first, then its callers
            where = " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}" for f in reversed(st.traceback))
            lines.append(f"  {st.size_diff / 1024:+.0f} KiB ({st.count_diff:+d} blocks) {where}")
        text = "\n".join(lines)
        log.warning("%s", text)
        return text


async def trim_periodically(every_s: float = TRIM_EVERY_S) -> None:
    """Trim now and then, in a worker thread (ctypes drops the GIL; the loop keeps serving)."""
    loop = asyncio.get_running_loop()
    top = trace_top()
    trace = AllocationTrace(top) if top else None
    trimming = True
    while True:
        await asyncio.sleep(every_s)
        with contextlib.suppress(Exception):
            if trimming and not await loop.run_in_executor(None, trim):
                if trace is None:
                    return
                trimming = False
        if trace is not None:
            with contextlib.suppress(Exception):
                trace.report()
