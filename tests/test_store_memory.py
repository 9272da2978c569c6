"""The store's memory does not grow with its file: a daemon that replaces sessions for hours
keeps every removed session's row and events on disk, and SQLite's page cache (2 MB by
default) filled with them."""

from __future__ import annotations

import ctypes
from pathlib import Path

import pytest

from workbench.core.models import Session
from workbench.core.store import Store


def _loaded_sqlite() -> ctypes.CDLL | None:
    """The libsqlite3 this interpreter's `sqlite3` module uses (its counters are process-wide),
    or None when it is linked in statically."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
        if "libsqlite3" in path:
            lib = ctypes.CDLL(path)
            lib.sqlite3_memory_used.restype = ctypes.c_int64
            return lib
    return None


def _session(n: int) -> Session:
    return Session(id=f"s{n:05d}", name=f"s{n}", repo="/r", branch=f"wb/s{n}", worktree=f"/w/s{n}",
                   base_commit="0" * 40, base_ref="main", agent="shell", command=["bash"])


def test_reading_a_large_store_keeps_little_of_it_in_memory(tmp_path: Path) -> None:
    lib = _loaded_sqlite()
    if lib is None:
        pytest.skip("sqlite is linked into the interpreter statically: its memory counter is not reachable")
    before = lib.sqlite3_memory_used()
    store = Store(tmp_path / "db.sqlite3")
    for n in range(3000):  # what two hours of replacing sessions leave: rows, and events
        s = _session(n)
        store.save_session(s)
        store.add_event(s.id, "created", {"note": "x" * 600})
        store.mark_removed(s.id)
    for n in range(0, 3000, 3):
        assert store.events(f"s{n:05d}")[0]["kind"] == "created"
    assert store.sessions() == []
    assert len(store.removed_worktrees()) == 3000
    held = lib.sqlite3_memory_used() - before  # everything this connection keeps
    assert (tmp_path / "db.sqlite3").stat().st_size + (tmp_path / "db.sqlite3-wal").stat().st_size > 3_000_000
    assert held < 700_000, f"SQLite keeps {held} bytes of a 3,000-session store in memory"
