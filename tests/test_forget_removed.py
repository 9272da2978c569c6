"""A removed session leaves nothing behind in the daemon's per-session tables: a daemon
that replaces sessions for weeks must not grow with every session it ever had."""

from __future__ import annotations

import asyncio
import types
from pathlib import Path

from workbench.core.models import Session
from workbench.core.store import Store
from workbench.daemon import sessions as sm
from workbench.daemon.bus import SessionRemoved
from workbench.daemon.hub import Hub
from workbench.daemon.review_service import ReviewService


def _session(tmp_path: Path, n: int) -> Session:
    wt = tmp_path / f"wt{n}"
    wt.mkdir()
    return Session(id=f"s{n}", name=f"s{n}", repo=str(tmp_path), branch=f"wb/s{n}", worktree=str(wt),
                   base_commit="0" * 40, base_ref="main", agent="shell", command=["bash"])


def test_removed_sessions_leave_the_review_tables_empty(tmp_path: Path) -> None:
    async def main() -> None:
        m = sm.SessionManager(Store(tmp_path / "db.sqlite3"), Hub())
        svc = ReviewService(types.SimpleNamespace(manager=m))  # type: ignore[arg-type]
        removed = [_session(tmp_path, n) for n in range(20)]
        for s in removed:
            m.sessions[s.id] = s
            async with svc.lock(s.id):  # what a review, a check and a diff leave
                pass
            svc.state(s.id)
            svc.stats[s.id] = {"files": 1}
            svc.checks._checked[s.id] = "digest"
            svc.checks._again.add(s.id)
            svc.checks._locks.setdefault(s.id, asyncio.Lock())
        for s in removed:
            del m.sessions[s.id]
            m.bus.publish(SessionRemoved(s))
        tables = {
            "locks": svc.locks, "states": svc.states, "stats": svc.stats, "watchers": svc.watchers,
            "cache": svc.cache.entries, "check locks": svc.checks._locks,
            "checked": svc.checks._checked, "checks again": svc.checks._again,
        }
        assert {name: len(t) for name, t in tables.items() if t} == {}
        svc.close()

    asyncio.run(main())
