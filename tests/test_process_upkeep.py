"""The daemon's process-wide upkeep: children watched without a thread each, freed memory
handed back to the system."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux (glibc, pidfd) only")


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_trim_returns_a_fragmented_heap_to_the_system() -> None:
    # 160 MB of 2 KB blocks, one in 200 kept: free() alone keeps nearly all of it mapped.
    out = _run("""
        from workbench.daemon import process_upkeep
        def rss():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        blocks = [bytes(2000) + i.to_bytes(4, "little") for i in range(80_000)]
        keep = blocks[::200]
        del blocks
        before = rss()
        trimmed = process_upkeep.trim()
        print(before, rss(), trimmed)
    """)
    before, after, trimmed = out.split()
    if trimmed != "True":
        pytest.skip("no glibc malloc_trim here")
    assert int(after) < int(before) // 2


def test_a_child_is_watched_without_a_thread_of_its_own() -> None:
    if sys.version_info >= (3, 12):
        pytest.skip("Python 3.12+ watches children with pidfds by itself")
    out = _run("""
        import asyncio, threading
        from workbench.daemon import process_upkeep

        async def main():
            process_upkeep.watch_children_with_pidfds()
            proc = await asyncio.create_subprocess_exec("sleep", "0.5")
            names = [t.name for t in threading.enumerate()]
            code = await asyncio.wait_for(proc.wait(), 30)
            print(code, len(names), *names)

        asyncio.run(main())
    """)
    code, count, *names = out.split()
    assert code == "0"
    assert count == "1", names  # only the main thread: no waitpid-N thread per child


def test_the_allocation_trace_names_the_line_that_grew(monkeypatch: pytest.MonkeyPatch) -> None:
    import tracemalloc

    from workbench.daemon import process_upkeep

    monkeypatch.setenv(process_upkeep.TRACE_ENV, "5")
    assert process_upkeep.trace_top() == 5
    monkeypatch.setenv(process_upkeep.TRACE_ENV, "many")
    assert process_upkeep.trace_top() == 0  # a typo does not trace (nor fail the daemon)
    trace = process_upkeep.AllocationTrace(5)
    try:
        held = [bytearray(4096) for _ in range(500)]  # ~2 MB kept across the report
        text = trace.report()
    finally:
        tracemalloc.stop()
    assert len(held) == 500
    assert "MB traced" in text
    assert "test_process_upkeep.py" in text.splitlines()[1]  # the biggest growth comes first
