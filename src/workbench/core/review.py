"""Review state of one session: reviewed marks, comments, rejections with reasons, an undo
stack, and the review message that carries the comments and rejections to the agent.

Headless and synchronous. Actions read the session's work only as imported objects (a
`TreeReader`) and return an edit request that the daemon runs inside the session's
sandbox (session_side/worktree_edit.py); one action per session at a time.
The state is a JSON file under the data directory, outside every
sandbox; whole-file snapshots kept for undo sit in a directory beside it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from workbench import paths
from workbench.core.diff_hunk import Hunk
from workbench.core.diff_model import Diff, FileDiff
from workbench.core.escapes import strip_escapes
from workbench.core.git_paths import check_path, quote_header_path, quote_path
from workbench.errors import GitError, NotFound, UsageError
from workbench.protocol import review as wire

CONTEXT = 3  # the context hunks are shown, rejected and re-applied with
MAX_TEXT = 10_000  # a comment or reason
MAX_EXCERPT = 30  # lines of code quoted per item in the review message
MAX_READ = 8 * 1024 * 1024  # bytes of a file read to quote commented lines


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

    def _new_id(self) -> int:
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


# --------------------------------------------------------------------------- file keys


def file_key(f: FileDiff) -> str:
    """Review key of a file as a whole (binary files and pure renames have no hunks)."""
    raw = "\0".join([f.path, f.old_path or "", f.status, f.index or "", str(f.binary), f.new_mode or ""])
    return "file:" + hashlib.sha1(raw.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def file_status(f: FileDiff, state: ReviewState) -> str:
    """reviewed | partial | unreviewed."""
    keys = [h.id for h in f.hunks] or [file_key(f)]
    done = sum(1 for k in keys if k in state.reviewed)
    if done == len(keys) or file_key(f) in state.reviewed:
        return "reviewed"
    return "partial" if done else "unreviewed"


# --------------------------------------------------------------------------- actions


def mark(
    state: ReviewState, diff: Diff, *, hunk: str | None = None, path: str | None = None, reviewed: bool = True
) -> list[str]:
    """Mark a hunk (or every hunk of a file) reviewed or not; returns the keys changed."""
    if hunk:
        diff.find_hunk(hunk)
        keys = [hunk]
    elif path:
        f = diff.file(path)
        keys = [h.id for h in f.hunks] + [file_key(f)]
    else:
        raise UsageError("give a hunk id or a path to mark")
    before = {k: state.reviewed.get(k) for k in keys}
    changed = [k for k in keys if (k in state.reviewed) != reviewed]
    if not changed:
        return []
    now = time.time()
    for k in keys:
        if reviewed:
            state.reviewed.setdefault(k, now)
        else:
            state.reviewed.pop(k, None)
    state.undo.append({"kind": "mark", "before": before})
    return changed


class TreeReader(Protocol):
    """The session's work as imported, verified objects (core/session_repo.py)."""

    def entry(self, path: str) -> tuple[str, str] | None:
        """(mode, blob id) of `path` in the snapshot, None when absent."""

    def blob(self, sha: str) -> bytes: ...


def hunk_patch(f: FileDiff, h: Hunk) -> str:
    """A `git apply`-able patch of one hunk of a modified file."""
    path = f.path
    return (
        f"diff --git {quote_path('a/' + path)} {quote_path('b/' + path)}\n"
        f"--- {quote_header_path('a/' + path)}\n+++ {quote_header_path('b/' + path)}\n"
        + h.render()
    )


def reject(
    state: ReviewState, diff: Diff, hunk_id: str, reason: str, files: TreeReader
) -> tuple[Rejection, dict[str, Any]]:
    """Plan reversing one hunk (a whole added, deleted or binary file goes back to base).

    Returns the rejection and the edit request that carries it out inside the session's
    sandbox; `applied()` records it once the edit succeeded.
    """
    reason = _clean_text(reason, "reason", required=False)
    f, h = diff.find_hunk(hunk_id)
    whole = f.status in ("added", "deleted", "typechange") or f.binary or f.is_symlink
    rej = Rejection(
        id=state._new_id(), hunk=hunk_id, path=f.path, old_path=f.old_path, status=f.status,
        header=h.header, reason=reason, whole_file=whole, new_start=h.new_start,
        new_lines=h.new_lines, excerpt=_hunk_excerpt(h), where=_changed_lines(h),
    )
    if whole:
        rej.snapshots = _snapshots(state, files, f)
        return rej, {"op": "restore", "base": diff.base, "paths": [s["path"] for s in rej.snapshots]}
    rej.patch = hunk_patch(f, h)
    return rej, {"op": "apply", "patch": rej.patch, "reverse": True, "zero": CONTEXT == 0}


def revert_file(
    state: ReviewState, diff: Diff, path: str, reason: str, files: TreeReader
) -> tuple[Rejection, dict[str, Any]]:
    """Plan putting a whole file back as it is in base (both sides of a rename); undoable."""
    check_path(path)
    reason = _clean_text(reason, "reason", required=False)
    f = diff.file(path)
    rej = Rejection(
        id=state._new_id(), hunk=None, path=f.path, old_path=f.old_path, status=f.status,
        header="", reason=reason, whole_file=True, new_start=0, new_lines=0,
        excerpt=[ln for h in f.hunks for ln in _hunk_excerpt(h)][:MAX_EXCERPT],
    )
    rej.snapshots = _snapshots(state, files, f)
    return rej, {"op": "restore", "base": diff.base, "paths": [s["path"] for s in rej.snapshots]}


def applied(state: ReviewState, rej: Rejection, reply: dict[str, Any]) -> None:
    """The edit for `rej` succeeded: record it (and what undo must find to restore it)."""
    if rej.whole_file:
        rej.after = {str(k): str(v) for k, v in (reply.get("after") or {}).items()}
    state.rejections.append(rej)
    if rej.hunk:
        state.reviewed.pop(rej.hunk, None)
    state.undo.append({"kind": "reject" if rej.hunk else "revert_file", "ref": rej.id})


def comment(
    state: ReviewState, diff: Diff, path: str, line: int, text: str, end_line: int | None,
    files: TreeReader,
) -> Comment:
    """A note on a line or a line range of a changed (or existing) file.

    Lines count in the file as the session has it; for a deleted file, as it was in base.
    """
    check_path(path)
    text = _clean_text(text, "comment")
    if not isinstance(line, int) or isinstance(line, bool) or line < 1:
        raise UsageError(f"invalid line {line!r}: lines count from 1")
    end = line if end_line is None else end_line
    if not isinstance(end, int) or isinstance(end, bool) or end < line:
        raise UsageError(f"invalid line range {line}-{end}: the end must not be before the start")
    f = next((g for g in diff.files if path in (g.path, g.old_path)), None)
    entry = files.entry(path)
    excerpt: list[str]
    hunk: Hunk | None
    if entry is not None and entry[0] != "120000":
        lines = files.blob(entry[1])[:MAX_READ].decode("utf-8", "replace").splitlines()
        if end > len(lines):
            raise UsageError(f"{path} has {len(lines)} line(s); line {end} is past its end")
        excerpt = lines[line - 1 : end][:MAX_EXCERPT]
        hunk = _hunk_at(f, line, end, new=True) if f is not None and f.path == path else None
    elif f is not None and f.status == "deleted":
        old = {ln.old_no: ln.text for h in f.hunks for ln in h.lines if ln.old_no is not None}
        if end > len(old):
            raise UsageError(f"{path} had {len(old)} line(s); line {end} is past its end")
        excerpt = [old[n] for n in range(line, end + 1)][:MAX_EXCERPT]
        hunk = _hunk_at(f, line, end, new=False)
    else:
        raise NotFound(f"{path} is not a file in the session's worktree")
    c = Comment(
        id=state._new_id(), path=path, line=line, end_line=end, text=text,
        hunk=hunk.id if hunk else None, excerpt=[strip_escapes(x) for x in excerpt],
    )
    state.comments.append(c)
    state.undo.append({"kind": "comment", "ref": c.id})
    return c


def undo_request(state: ReviewState) -> dict[str, Any] | None:
    """The edit inside the session that undoing the last action needs (None: no edit)."""
    if not state.undo:
        raise UsageError("nothing to undo", hint="actions already sent to the agent cannot be undone")
    act = state.undo[-1]
    if act["kind"] not in ("reject", "revert_file"):
        return None
    rej = next((r for r in state.rejections if r.id == act["ref"]), None)
    if rej is None:
        return None
    if rej.patch is not None:
        return {"op": "apply", "patch": rej.patch, "reverse": False, "zero": CONTEXT == 0}
    if any(s["kind"] == "other" for s in rej.snapshots):
        raise GitError(f"cannot undo the revert of {rej.path}: it was not a plain file")
    files = []
    for snap in rej.snapshots:
        item = dict(snap)
        if snap["kind"] == "file":
            item["data"] = base64.b64encode((state.blob_dir / snap["blob"]).read_bytes()).decode()
        files.append(item)
    return {"op": "put", "files": files, "expect": rej.after}


def undo(state: ReviewState) -> dict[str, Any]:
    """Pop the last review action (after `undo_request`'s edit, if any, succeeded)."""
    if not state.undo:
        raise UsageError("nothing to undo", hint="actions already sent to the agent cannot be undone")
    act = state.undo[-1]
    kind = act["kind"]
    result: dict[str, Any] = {"undone": kind}
    if kind == "mark":
        for k, v in act["before"].items():
            if v is None:
                state.reviewed.pop(k, None)
            else:
                state.reviewed[k] = float(v)
        result["keys"] = sorted(act["before"])
    elif kind == "comment":
        state.comments = [c for c in state.comments if c.id != act["ref"]]
        result["comment"] = act["ref"]
    elif kind in ("reject", "revert_file"):
        rej = next((r for r in state.rejections if r.id == act["ref"]), None)
        if rej is not None:
            state.rejections = [r for r in state.rejections if r.id != rej.id]
            result.update(path=rej.path, hunk=rej.hunk)
    state.undo.pop()
    return result


def mark_sent(state: ReviewState) -> None:
    """The pending comments and rejections went to the agent: they cannot be undone now."""
    for r in state.rejections:
        r.sent = True
        r.patch, r.snapshots, r.after = None, [], {}
    for c in state.comments:
        c.sent = True
    state.undo = [a for a in state.undo if a["kind"] == "mark"]
    shutil.rmtree(state.blob_dir, ignore_errors=True)


# --------------------------------------------------------------------------- the message


def build_message(state: ReviewState) -> str:
    """The pending rejections and comments as one message to the agent ("" if none)."""
    rej, com = state.pending()
    if not rej and not com:
        return ""
    counts = []
    if rej:
        counts.append(f"{len(rej)} rejected change{'s' if len(rej) != 1 else ''}")
    if com:
        counts.append(f"{len(com)} comment{'s' if len(com) != 1 else ''}")
    out = [f"Review of your changes: {' and '.join(counts)}."]
    if rej:
        out.append("Rejected changes have already been reverted in the worktree; do not re-apply them as they were.")
    items: list[tuple[str, int, int, Rejection | Comment]] = [
        (r.path, r.new_start, r.id, r) for r in rej
    ] + [(c.path, c.line, c.id, c) for c in com]
    items.sort(key=lambda t: (t[0], t[1], t[2]))
    for n, (_, _, _, item) in enumerate(items, 1):
        out.append("")
        if isinstance(item, Rejection):
            out.extend(_rejection_text(n, item))
        else:
            out.extend(_comment_text(n, item))
    out.append("")
    out.append("Please address each point above.")
    return "\n".join(out)


def _rejection_text(n: int, r: Rejection) -> list[str]:
    path = _safe(r.path)
    if r.whole_file:
        what = {
            "added": "the new file was deleted",
            "deleted": "the deleted file was restored",
            "renamed": f"the rename from {_safe(r.old_path or '')} was undone",
        }.get(r.status, "the whole file was put back as it was")
        lines = [f"{n}. {path}: rejected, {what}."]
    else:
        lines = [f"{n}. {path}:{r.where or r.new_start}: rejected this change (it was reverted):"]
    if r.reason:
        lines.append("   Reason: " + _indent(r.reason, "   "))
    lines.extend("   | " + _safe(x) for x in r.excerpt)
    return lines


def _comment_text(n: int, c: Comment) -> list[str]:
    where = f"{c.line}" if c.end_line == c.line else f"{c.line}-{c.end_line}"
    lines = [f"{n}. {_safe(c.path)}:{where}: comment:"]
    lines.extend("   > " + _safe(x) for x in c.excerpt)
    lines.append("   " + _indent(c.text, "   "))
    return lines


def _safe(text: str) -> str:
    # Typed into an agent's terminal: no escape sequence may act as keys there.
    return strip_escapes(text, keep_newlines=False)


def _indent(text: str, pad: str) -> str:
    return ("\n" + pad).join(strip_escapes(text).splitlines())


def _clean_text(text: str, what: str, *, required: bool = True) -> str:
    if not isinstance(text, str):
        raise UsageError(f"the {what} must be text")
    text = text.strip()
    if required and not text:
        raise UsageError(f"the {what} is empty")
    if len(text) > MAX_TEXT:
        raise UsageError(f"the {what} is too long ({len(text)} characters; at most {MAX_TEXT})")
    return text


# --------------------------------------------------------------------------- helpers


def _hunk_excerpt(h: Hunk) -> list[str]:
    changed = [f"{ln.kind}{ln.text}" for ln in h.lines if ln.kind != " "]
    if len(changed) > MAX_EXCERPT:
        more = len(changed) - MAX_EXCERPT
        changed = [*changed[:MAX_EXCERPT], f"... ({more} more changed line{'s' if more != 1 else ''})"]
    return changed


def _changed_lines(h: Hunk) -> str:
    def span(nums: list[int]) -> str:
        return f"{nums[0]}" if nums[0] == nums[-1] else f"{nums[0]}-{nums[-1]}"

    added = [ln.new_no for ln in h.lines if ln.kind == "+" and ln.new_no is not None]
    if added:
        return span(added)
    removed = [ln.old_no for ln in h.lines if ln.kind == "-" and ln.old_no is not None]
    return "old " + span(removed) if removed else str(h.new_start)


def _hunk_at(f: FileDiff | None, line: int, end: int, *, new: bool) -> Hunk | None:
    if f is None:
        return None
    for h in f.hunks:
        start, count = (h.new_start, h.new_lines) if new else (h.old_start, h.old_lines)
        if start <= end and line <= start + max(count, 1) - 1:
            return h
    return None


def _snapshots(state: ReviewState, files: TreeReader, f: FileDiff) -> list[dict[str, Any]]:
    """What undo puts back, read from the imported snapshot (never from the worktree)."""
    out = []
    for rel in dict.fromkeys([f.path] + ([f.old_path] if f.old_path else [])):
        entry = files.entry(rel)
        snap: dict[str, Any] = {"path": rel}
        if entry is None:
            snap.update(kind="absent")
        elif entry[0] == "120000":
            snap.update(kind="symlink", target=files.blob(entry[1]).decode("utf-8", "surrogateescape"))
        elif entry[0] in ("100644", "100755"):
            state.blob_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            blob = state.blob_dir / f"{state._new_id()}.blob"
            blob.write_bytes(files.blob(entry[1]))
            snap.update(kind="file", blob=blob.name, mode=0o755 if entry[0] == "100755" else 0o644)
        else:
            snap.update(kind="other")
        out.append(snap)
    return out
