"""Review state of one session: reviewed marks, comments, rejections with reasons, an undo
stack, and the review message that carries the comments and rejections to the agent.

The entry callers import (`from workbench.core import review as rv`); the work is in
`review_state.py` (the state and its file), `review_marks.py` (reviewed marks),
`review_edits.py` (rejections, reverts and comments planned as edits inside the session's
sandbox), `review_undo.py` (undo, and what is final once sent) and `review_message.py`
(the message to the agent).
"""

from __future__ import annotations

from workbench.core.review_edits import (
    CONTEXT,
    MAX_EXCERPT,
    MAX_READ,
    MAX_TEXT,
    TreeReader,
    applied,
    comment,
    hunk_patch,
    reject,
    revert_file,
)
from workbench.core.review_marks import file_key, file_status, mark
from workbench.core.review_message import build_message
from workbench.core.review_state import Comment, Rejection, ReviewState
from workbench.core.review_undo import mark_sent, undo, undo_request

__all__ = [
    "CONTEXT",
    "MAX_EXCERPT",
    "MAX_READ",
    "MAX_TEXT",
    "Comment",
    "Rejection",
    "ReviewState",
    "TreeReader",
    "applied",
    "build_message",
    "comment",
    "file_key",
    "file_status",
    "hunk_patch",
    "mark",
    "mark_sent",
    "reject",
    "revert_file",
    "undo",
    "undo_request",
]
