"""SQLite store (WAL) for sessions, their event log, conversations and pending approvals.

Every write commits at once: after `kill -9` of the daemon the next one sees all of it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workbench.core.models import Session
from workbench.errors import WorkbenchError
from workbench.protocol.session import LogEntry

SCHEMA_VERSION = 1
CACHE_KIB = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL,
    removed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_session ON events(session_id, seq);
CREATE TABLE IF NOT EXISTS conversation (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0,
    item TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversation_session ON conversation(session_id, generation, seq);
CREATE TABLE IF NOT EXISTS approvals (
    session_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS repos (
    path TEXT PRIMARY KEY,
    last_used REAL NOT NULL
);
"""


class StoreError(WorkbenchError):
    """The store could not be written (disk full, read-only, damaged): nothing of the change was saved."""


def store_error(e: sqlite3.Error, path: Path) -> StoreError:
    text = str(e)
    if "full" in text or getattr(e, "sqlite_errorcode", None) == 13:  # SQLITE_FULL
        return StoreError(
            f"the disk holding the workbench store ({path.parent}) is full; the change was not saved",
            hint="free some space there and try again",
        )
    if "readonly" in text or "read-only" in text:
        return StoreError(f"the workbench store {path} is read-only; the change was not saved",
                          hint="check the permissions and free space of its directory")
    return StoreError(f"the workbench store {path} failed: {text}",
                      hint="see `workbench doctor`; docs/runbook.md explains how to recover")


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        # SQLite's own page cache (2 MB by default) filled as removed sessions' rows and
        # events piled up: ~1.9 MB of a long-running daemon's growth. The file stays in
        # the kernel's page cache; this keeps only the hot B-tree pages.
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        with self._lock:
            self._db.executescript(_SCHEMA)
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise store_error(e, self.path) from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as e:
                # After a failed COMMIT (disk full) SQLite may have rolled back already.
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise store_error(e, self.path) from None
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # sessions

    def save_session(self, s: Session) -> None:
        s.updated_at = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions(id, name, data) VALUES (?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name=excluded.name, data=excluded.data",
                (s.id, s.name, json.dumps(s.to_dict())),
            )

    def sessions(self, include_removed: bool = False) -> list[Session]:
        q = "SELECT data FROM sessions" + ("" if include_removed else " WHERE removed = 0")
        with self._lock:
            rows = self._db.execute(q + " ORDER BY rowid").fetchall()
        return [Session.from_dict(json.loads(r[0])) for r in rows]

    def name_taken(self, name: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM sessions WHERE name = ?", (name,)).fetchone()
        return row is not None

    def mark_removed(self, session_id: str) -> None:
        """Keep the row (its events stay readable) but free the name for reuse."""
        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET removed = 1, name = id || ':' || name WHERE id = ?",
                (session_id,),
            )

    def removed_worktrees(self) -> list[tuple[str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT id, data FROM sessions WHERE removed = 1").fetchall()
        return [(r[0], json.loads(r[1])["worktree"]) for r in rows]

    # events

    def add_event(self, session_id: str, kind: str, data: dict[str, Any]) -> int:
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO events(session_id, ts, kind, data) VALUES (?, ?, ?, ?)",
                (session_id, time.time(), kind, json.dumps(data)),
            )
            return int(cur.lastrowid or 0)

    def events(self, session_id: str, after: int = 0, limit: int = 10_000) -> list[LogEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, ts, kind, data FROM events WHERE session_id = ? AND seq > ? "
                "ORDER BY seq LIMIT ?",
                (session_id, after, limit),
            ).fetchall()
        return [LogEntry(seq=r[0], ts=r[1], kind=r[2], data=json.loads(r[3])) for r in rows]

    # conversation (built-in agent)

    def append_items(self, session_id: str, items: list[dict[str, Any]], generation: int) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT INTO conversation(session_id, generation, item) VALUES (?, ?, ?)",
                [(session_id, generation, json.dumps(i)) for i in items],
            )

    def replace_conversation(
        self, session_id: str, items: list[dict[str, Any]], generation: int
    ) -> None:
        """Compaction: the new generation replaces the active one atomically; old ones are kept."""
        self.append_items(session_id, items, generation)

    def conversation(self, session_id: str) -> tuple[int, list[dict[str, Any]]]:
        with self._lock:
            row = self._db.execute(
                "SELECT MAX(generation) FROM conversation WHERE session_id = ?", (session_id,)
            ).fetchone()
            gen = int(row[0]) if row and row[0] is not None else 0
            rows = self._db.execute(
                "SELECT item FROM conversation WHERE session_id = ? AND generation = ? ORDER BY seq",
                (session_id, gen),
            ).fetchall()
        return gen, [json.loads(r[0]) for r in rows]

    # pending approvals

    def set_approval(self, session_id: str, data: dict[str, Any] | None) -> None:
        with self._tx() as db:
            if data is None:
                db.execute("DELETE FROM approvals WHERE session_id = ?", (session_id,))
            else:
                db.execute(
                    "INSERT INTO approvals(session_id, data) VALUES (?, ?) "
                    "ON CONFLICT(session_id) DO UPDATE SET data = excluded.data",
                    (session_id, json.dumps(data)),
                )

    def approval(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM approvals WHERE session_id = ?", (session_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    # recent repos (new-session dialog)

    def touch_repo(self, path: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO repos(path, last_used) VALUES (?, ?) "
                "ON CONFLICT(path) DO UPDATE SET last_used = excluded.last_used",
                (path, time.time()),
            )

    def recent_repos(self, limit: int = 20) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT path FROM repos ORDER BY last_used DESC LIMIT ?", (limit,)
            ).fetchall()
        return [r[0] for r in rows]
