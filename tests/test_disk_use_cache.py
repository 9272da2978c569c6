"""A session's disk use: walked once, then refreshed in the background, so a listing, a
`get` or a session event never waits on the event loop for a worktree walk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import wait_for
from workbench.core.models import Session
from workbench.core.store import Store
from workbench.daemon import disk_use
from workbench.daemon import sessions as sm
from workbench.daemon.hub import Hub


def test_a_stale_size_is_shown_while_a_background_walk_refreshes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / "a").write_bytes(b"x" * 8192)
    m = sm.SessionManager(Store(tmp_path / "db.sqlite3"), Hub())
    s = Session(id="s1", name="s1", repo=str(tmp_path), branch="wb/s1", worktree=str(wt),
                base_commit="0" * 40, base_ref="main", agent="shell", command=["bash"])
    m.sessions[s.id] = s
    assert not m.disk_sizes_known()  # `ls` takes a thread for the first walk
    first = m.describe(s)["disk_bytes"]
    assert first is not None and first >= 8192 and m.disk_sizes_known()
    (wt / "b").write_bytes(os.urandom(1 << 20))
    assert m.describe(s)["disk_bytes"] == first  # fresh: no walk
    monkeypatch.setattr(disk_use, "DISK_TTL_S", 0.0)
    assert m.describe(s)["disk_bytes"] == first  # stale: shown as it was, a walk starts
    wait_for(lambda: m.describe(s)["disk_bytes"] >= first + (1 << 20), 10, what="the background walk")
    del m.sessions[s.id]
    m.disk._sizes.clear()
    m.disk.measure(s.id, s.worktree)
    assert s.id not in m.disk._sizes  # a walk that ends after the session's removal keeps nothing
