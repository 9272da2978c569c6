"""Undo of the last review action, and the point after which there is none.

Undoing a rejection needs an edit inside the session's sandbox (re-apply the patch, or put
the snapshotted files back if they are still as the rejection left them); `undo_request`
plans it and `undo` pops the action once it succeeded. What went to the agent
(`mark_sent`) stays: its patches and snapshots are dropped.
"""

from __future__ import annotations

import base64
import shutil
from typing import Any

from workbench.core.review_edits import CONTEXT
from workbench.core.review_state import ReviewState
from workbench.errors import GitError, UsageError


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
