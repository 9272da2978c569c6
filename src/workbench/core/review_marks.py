"""Reviewed marks: which hunks (and whole files) the user has looked at.

A file without hunks (binary, pure rename) is marked by a key of its metadata, so a later
change to it shows as unreviewed again. A mark is undoable like the other actions.
"""

from __future__ import annotations

import hashlib
import time

from workbench.core.diff_model import Diff, FileDiff
from workbench.core.review_state import ReviewState
from workbench.errors import UsageError


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
