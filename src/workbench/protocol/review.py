"""Reviewing and landing a session's work: diff, hunk marks, rejections, merge, attempts."""

from typing import Any, Literal, NotRequired, TypedDict

from workbench.protocol.method import Method
from workbench.protocol.session import IdParams, NewParams, SessionInfo

# A diff line as sent: [kind (" " | "+" | "-"), text, old line number or None, new line
# number or None] and, only when set, a fifth item {"no_newline": bool, "cr": bool}.
DiffRow = list[Any]


class DiffStat(TypedDict):
    files: int
    added: int
    removed: int


class HunkInfo(TypedDict):
    id: str
    header: str
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int
    # None when the reply's size budget left this hunk out (`omitted`)
    lines: list[DiffRow] | None
    reviewed: NotRequired[bool]
    omitted: NotRequired[bool]


class FileInfo(TypedDict):
    path: str
    old_path: str | None
    status: str
    binary: bool
    added: int
    removed: int
    mode_change: list[str] | None
    old_mode: str | None
    new_mode: str | None
    # None when the file's hunks were left out of this reply (ask again from `next`)
    hunks: list[HunkInfo] | None
    similarity: NotRequired[int | None]
    key: NotRequired[str]
    review_status: NotRequired[str]
    hunk_count: NotRequired[int]
    omitted: NotRequired[bool]


class ReviewSummary(TypedDict):
    reviewed: int
    pending_rejections: int
    pending_comments: int
    undo: str | None


class ReviewState(TypedDict):
    comments: list[dict[str, Any]]
    rejections: list[dict[str, Any]]
    reviewed: list[str]
    undo: list[str]


class CheckResult(TypedDict):
    status: str  # passed | failed | error
    exit_code: int | None
    duration_s: float
    tail: str
    command: str
    reason: str
    finished_at: float
    # the digest of the diff it checked (compare with DiffReply.digest); results stored
    # before it was recorded lack it
    digest: NotRequired[str]


class DiffParams(TypedDict):
    id: str
    stat: NotRequired[bool]
    format: NotRequired[Literal["json", "unified"]]
    offset: NotRequired[int]
    paths: NotRequired[list[str]]
    max_bytes: NotRequired[int]
    # with `stat` or `format: "unified"`: `files` comes empty, only `text` matters
    text_only: NotRequired[bool]


class DiffReply(TypedDict):
    session: str
    base: str
    digest: str
    stat: DiffStat
    # files left out of the diff (too large, unreadable), as the person should read them
    notes: list[str]
    review: ReviewState
    check: CheckResult | None
    offset: int
    # the first file index whose hunks did not fit; None on the last page
    next: int | None
    files: list[FileInfo]
    # `stat`: the diffstat text; `format=unified`: the patch text of this page
    text: NotRequired[str]
    # build artefacts the session added (review noise): how many, and where
    # ("node_modules/", "pkg/__pycache__/"); not in `files`, not reviewed, never merged
    ignored: NotRequired[int]
    ignored_where: NotRequired[list[str]]
    # how many times the daemon computed this session's whole diff (once per change;
    # pages and repeated requests of an unchanged session are served from that)
    computed: NotRequired[int]


class MarkParams(TypedDict):
    id: str
    hunk: NotRequired[str]
    path: NotRequired[str]
    reviewed: NotRequired[bool]


class MarkResult(TypedDict):
    changed: list[str]
    reviewed: bool
    review: ReviewSummary


class RejectParams(TypedDict):
    id: str
    hunk: str
    reason: NotRequired[str]


class RevertFileParams(TypedDict):
    id: str
    path: str
    reason: NotRequired[str]


class Rejection(TypedDict):
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
    where: str
    created_at: float
    sent: bool


class RejectResult(TypedDict):
    rejection: Rejection
    review: ReviewSummary


class CommentParams(TypedDict):
    id: str
    path: str
    line: int
    end_line: NotRequired[int]
    text: str


class Comment(TypedDict):
    id: int
    path: str
    line: int
    end_line: int
    text: str
    hunk: str | None
    excerpt: list[str]
    created_at: float
    sent: bool


class CommentResult(TypedDict):
    comment: Comment
    review: ReviewSummary


class UndoResult(TypedDict):
    undone: str  # the kind of action undone: mark | comment | reject | revert_file
    review: ReviewSummary
    keys: NotRequired[list[str]]
    comment: NotRequired[int]
    path: NotRequired[str]
    hunk: NotRequired[str | None]


class ReviewParams(TypedDict):
    id: str
    send: NotRequired[bool]


class ReviewResult(TypedDict):
    message: str
    rejections: int
    comments: int
    sent: bool
    review: ReviewState
    via: NotRequired[str]


class MergeParams(TypedDict):
    id: str
    strategy: NotRequired[str]  # ff | squash | rebase
    message: NotRequired[str]
    # the digest of the diff the person reviewed: refuse if the session changed since
    digest: NotRequired[str]
    pr: NotRequired[bool]


class MergeResult(TypedDict):
    commit: str
    base_branch: str
    message: str
    strategy: NotRequired[str]
    files_changed: NotRequired[int]
    warning: NotRequired[str]
    # --pr
    pr: NotRequired[str]
    remote: NotRequired[str]
    branch: NotRequired[str]


class DiscardResult(TypedDict):
    files: int
    added: int
    removed: int
    base: str


class SendCheckResult(TypedDict):
    message: str
    via: str


class NewAttemptsParams(NewParams):
    attempts: int
    # One agent per attempt, repeated in order when there are fewer than `attempts`
    # (builtin, codex -> attempts 1, 3, ... builtin; 2, 4, ... codex); `agent` when absent.
    agents: NotRequired[list[str]]


class AttemptsResult(TypedDict):
    group: str
    sessions: list[SessionInfo]
    warnings: list[str]


class GroupParams(TypedDict):
    """An attempt group, by its name or by one of its sessions."""

    group: NotRequired[str]
    id: NotRequired[str]


class AttemptFile(TypedDict):
    path: str
    status: str
    added: int
    removed: int
    binary: bool


class AttemptEntry(TypedDict):
    id: str
    name: str
    state: str
    check: str
    error: NotRequired[str]
    stat: NotRequired[DiffStat]
    files: NotRequired[list[AttemptFile]]
    check_result: NotRequired[CheckResult]


class CompareResult(TypedDict):
    group: str
    sessions: list[AttemptEntry]


class Named(TypedDict):
    id: str
    name: str


class PickResult(TypedDict):
    winner: str
    group: str
    removed: list[Named]


DIFF: Method[DiffParams, DiffReply] = Method("diff", DiffParams, slow=True)
MARK_REVIEWED: Method[MarkParams, MarkResult] = Method("mark_reviewed", MarkParams)
REJECT: Method[RejectParams, RejectResult] = Method("reject", RejectParams)
REVERT_FILE: Method[RevertFileParams, RejectResult] = Method("revert_file", RevertFileParams)
COMMENT: Method[CommentParams, CommentResult] = Method("comment", CommentParams)
UNDO: Method[IdParams, UndoResult] = Method("undo", IdParams)
REVIEW: Method[ReviewParams, ReviewResult] = Method("review", ReviewParams, slow=True)
MERGE: Method[MergeParams, MergeResult] = Method("merge", MergeParams, slow=True)
DISCARD: Method[IdParams, DiscardResult] = Method("discard", IdParams, slow=True)
CHECK: Method[IdParams, CheckResult] = Method("check", IdParams, slow=True)
SEND_CHECK: Method[IdParams, SendCheckResult] = Method("send_check", IdParams, slow=True)
NEW_ATTEMPTS: Method[NewAttemptsParams, AttemptsResult] = Method("new_attempts", NewAttemptsParams)
COMPARE: Method[GroupParams, CompareResult] = Method("compare", GroupParams, slow=True)
PICK: Method[IdParams, PickResult] = Method("pick", IdParams, slow=True)
