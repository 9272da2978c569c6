"""Planning the review's actions on a session's work: reject a hunk, revert a file, comment.

Headless and synchronous. These read the session's work only as imported objects (a
`TreeReader`, never the worktree itself) and return an edit request that the daemon runs
inside the session's sandbox (session_side/worktree_edit.py); `applied()` records it once
that edit succeeded. One action per session at a time.
"""

from __future__ import annotations

from typing import Any, Protocol

from workbench.core.diff_hunk import Hunk
from workbench.core.diff_model import Diff, FileDiff
from workbench.core.escapes import strip_escapes
from workbench.core.git_paths import check_path, quote_header_path, quote_path
from workbench.core.review_state import Comment, Rejection, ReviewState
from workbench.errors import NotFound, UsageError

CONTEXT = 3  # the context hunks are shown, rejected and re-applied with
MAX_TEXT = 10_000  # a comment or reason
MAX_EXCERPT = 30  # lines of code quoted per item in the review message
MAX_READ = 8 * 1024 * 1024  # bytes of a file read to quote commented lines


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
        id=state.new_id(), hunk=hunk_id, path=f.path, old_path=f.old_path, status=f.status,
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
        id=state.new_id(), hunk=None, path=f.path, old_path=f.old_path, status=f.status,
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
        id=state.new_id(), path=path, line=line, end_line=end, text=text,
        hunk=hunk.id if hunk else None, excerpt=[strip_escapes(x) for x in excerpt],
    )
    state.comments.append(c)
    state.undo.append({"kind": "comment", "ref": c.id})
    return c


def _clean_text(text: str, what: str, *, required: bool = True) -> str:
    if not isinstance(text, str):
        raise UsageError(f"the {what} must be text")
    text = text.strip()
    if required and not text:
        raise UsageError(f"the {what} is empty")
    if len(text) > MAX_TEXT:
        raise UsageError(f"the {what} is too long ({len(text)} characters; at most {MAX_TEXT})")
    return text


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
            blob = state.blob_dir / f"{state.new_id()}.blob"
            blob.write_bytes(files.blob(entry[1]))
            snap.update(kind="file", blob=blob.name, mode=0o755 if entry[0] == "100755" else 0o644)
        else:
            snap.update(kind="other")
        out.append(snap)
    return out
