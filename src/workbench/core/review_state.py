"""Review state of one session, and where it is kept: reviewed marks, comments, rejections
with reasons, the undo stack and the last check's result.

The state is a JSON file under the data directory, outside every sandbox, replaced whole
(a temporary file renamed over it) so no reader sees half of one; whole-file snapshots
kept for undo sit in a directory beside it. A damaged file is set aside, not fatal.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench import paths
from workbench.protocol import review as wire


@dataclass
class Comment:
    id: int
    path: str
    line: int
    end_line: int
    text: str
    hunk: str | None
    excerpt: list[str]
    created_at: float = field(default_factory=time.time)
    sent: bool = False


@dataclass
class Rejection:
    """A reverted hunk (`hunk` set) or a whole reverted file (`whole_file`)."""

    id: int
    hunk: str | None
    path: str
    old_path: str | None
    status: str
    header: str
    reason: str
    whole_file: bool
    new_start: int
    new_lines: int
    excerpt: list[str]
    where: str = ""  # the changed lines: "12", "12-15" (new file) or "old 7-9" (only removals)
    # Undo: a single-hunk rejection re-applies `patch`; a whole file restores `snapshots`
    # if the paths are still as the rejection left them (`after` digests).
    patch: str | None = None
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    after: dict[str, str] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    sent: bool = False


@dataclass
class ReviewState:
    session_id: str
    reviewed: dict[str, float] = field(default_factory=dict)  # hunk ids and file keys
    comments: list[Comment] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    undo: list[dict[str, Any]] = field(default_factory=list)
    check: wire.CheckResult | None = None
    next_id: int = 1

    # persistence

    @staticmethod
    def file(session_id: str) -> Path:
        return paths.data_dir() / "reviews" / f"{session_id}.json"

    @property
    def blob_dir(self) -> Path:
        return paths.data_dir() / "reviews" / self.session_id

    @classmethod
    def load(cls, session_id: str) -> ReviewState:
        path = cls.file(session_id)
        try:
            raw = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return cls(session_id)
        except (OSError, ValueError):
            # A damaged file must not block reviewing; start over, keep the bad file aside.
            with contextlib.suppress(OSError):
                path.replace(path.with_suffix(".bad"))
            return cls(session_id)
        return cls(
            session_id=session_id,
            reviewed={str(k): float(v) for k, v in (raw.get("reviewed") or {}).items()},
            comments=[Comment(**c) for c in raw.get("comments") or []],
            rejections=[Rejection(**r) for r in raw.get("rejections") or []],
            undo=list(raw.get("undo") or []),
            check=raw.get("check"),
            next_id=int(raw.get("next_id") or 1),
        )

    def save(self) -> None:
        path = self.file(self.session_id)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {
            "reviewed": self.reviewed,
            "comments": [asdict(c) for c in self.comments],
            "rejections": [asdict(r) for r in self.rejections],
            "undo": self.undo,
            "check": self.check,
            "next_id": self.next_id,
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".review-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)

    @classmethod
    def delete(cls, session_id: str) -> None:
        cls.file(session_id).unlink(missing_ok=True)
        shutil.rmtree(paths.data_dir() / "reviews" / session_id, ignore_errors=True)

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    # queries

    def pending(self) -> tuple[list[Rejection], list[Comment]]:
        return [r for r in self.rejections if not r.sent], [c for c in self.comments if not c.sent]

    def summary(self) -> wire.ReviewSummary:
        rej, com = self.pending()
        return {
            "reviewed": len(self.reviewed),
            "pending_rejections": len(rej),
            "pending_comments": len(com),
            "undo": self.undo[-1]["kind"] if self.undo else None,
        }

    def to_json(self) -> wire.ReviewState:
        """What clients see: no patches or snapshots."""
        return {
            "comments": [
                {k: v for k, v in asdict(c).items() if k != "excerpt"} for c in self.comments
            ],
            "rejections": [
                {k: v for k, v in asdict(r).items() if k not in ("patch", "snapshots", "after")}
                for r in self.rejections
            ],
            "reviewed": sorted(self.reviewed),
            "undo": [a["kind"] for a in self.undo],
        }

    def reset(self) -> None:
        """After a merge or discard: what was reviewed is gone."""
        self.reviewed.clear()
        self.comments.clear()
        self.rejections.clear()
        self.undo.clear()
        shutil.rmtree(self.blob_dir, ignore_errors=True)
