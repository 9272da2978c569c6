"""Background work yields the CPU to what a person is waiting for.

A cold diff of 2,000 files costs ~70 ms of CPU in git and the session's snapshot helper
(and ~12 ms in the daemon); on a 2-core machine that CPU was taken from the sessions being
typed into, whose echo p99 went from 3.8 to 6.9 ms while diffs were computed
(benchmarks/diff_e2e.py). The processes of a snapshot and a tree diff run at nice
`NICE`: they get every idle cycle and give way to the terminals' programs and the daemon.
"""

from __future__ import annotations

import functools
import shutil

NICE = 10


@functools.cache
def _nice() -> str | None:
    return shutil.which("nice")


def niced(argv: list[str]) -> list[str]:
    """`argv` run at nice NICE (unchanged where coreutils' `nice` is missing)."""
    nice = _nice()
    return [nice, "-n", str(NICE), *argv] if nice else list(argv)
