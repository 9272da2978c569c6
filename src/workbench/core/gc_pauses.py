"""Short garbage-collector pauses for the long-running processes (the daemon, the UI).

A full collection walks every tracked object. Measured under load (8 sessions streaming,
benchmarks/echo_under_load.py), full collections took 100-200 ms in both the daemon and
the UI, and were the tail of the key-echo latency. What exists once a process has started
(modules, the widget tree, recovered sessions) lives as long as the process, so it is
frozen, never scanned again; and the young generation is collected less often, so fewer
collections reach the old one.
"""

from __future__ import annotations

import gc

# CPython's default is (700, 10, 10); frames and rows allocate many short-lived containers.
THRESHOLDS = (10_000, 20, 20)


def settle() -> None:
    """Call once start-up is done: collect, freeze the survivors, raise the thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
