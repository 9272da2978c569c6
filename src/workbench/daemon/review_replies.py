"""The JSON replies of the review methods: the `diff` reply (paged by a byte budget) and a
rejection as clients see it. Pure functions of a Diff and the review state, run off the
event loop for big diffs (protocol/review.py declares the shapes; these dicts are built key by key for speed and
checked against the declarations by tests/test_protocol_conformance.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from workbench.core import review as rv
from workbench.core.diff_hunk import Hunk, display_text
from workbench.core.diff_model import Diff, FileDiff
from workbench.core.diff_render import diff_stat_text
from workbench.daemon.protocol import RawJSON, encode_list, encode_value
from workbench.protocol import review as pr

REPLY_BUDGET = 2_500_000  # bytes of hunk lines in one reply (the wire limit is 4 MiB)
MIN_BUDGET = 32_000
FILE_OVERHEAD = 200  # bytes of a file's JSON besides its hunk lines


def diff_reply(
    diff: Diff, st: rv.ReviewState, *, stat_only: bool, unified: bool, offset: int, budget_bytes: int = REPLY_BUDGET,
    text_only: bool = False,
) -> pr.DiffReply:
    """The `diff` result; over the budget, files from `next` on come without hunks."""
    out = page_body(diff, st, stat_only=stat_only, unified=unified, offset=offset, budget_bytes=budget_bytes,
                    text_only=text_only)
    out.update(review_head(st))
    return cast(pr.DiffReply, out)


def review_head(st: rv.ReviewState) -> dict[str, Any]:
    """The part of a `diff` reply that follows the review state, not the diff."""
    return {"review": st.to_json(), "check": st.check}


def page_key(st: rv.ReviewState, *, stat_only: bool, unified: bool, offset: int, budget_bytes: int,
             text_only: bool) -> tuple[Any, ...]:
    """What a page body depends on besides the diff (its files carry the review marks)."""
    return (stat_only, unified, text_only, offset, budget_bytes, len(st.reviewed), hash(frozenset(st.reviewed)))


def encoded_page(diff: Diff, st: rv.ReviewState, **kw: Any) -> bytes:
    """`page_body` as JSON (in a worker thread: a page can be megabytes), each hunk's lines
    encoded as they are made (`encode_list`), never all of them as objects at once."""
    return encode_value(page_body(diff, st, encode_lines=True, **kw))


def _encoded_lines(h: Hunk) -> RawJSON:
    return encode_list(h.iter_rows())


def page_body(
    diff: Diff, st: rv.ReviewState, *, stat_only: bool, unified: bool, offset: int, budget_bytes: int = REPLY_BUDGET,
    text_only: bool = False, encode_lines: bool = False,
) -> dict[str, Any]:
    """A `diff` reply without `review_head` (and without `session`); with `encode_lines`,
    each hunk's lines are a `RawJSON` for `encode_value`."""
    files, added, removed = diff.stat()
    out: dict[str, Any] = {
        "base": diff.base,
        "digest": diff.digest,
        "stat": {"files": files, "added": added, "removed": removed},
        "notes": list(diff.notes),
        "ignored": diff.ignored_count,
        "ignored_where": [display_text(w) for w in diff.ignored_where],
        "offset": offset,
        "next": None,
    }

    def heads() -> list[dict[str, Any]]:
        return [] if text_only else [_file_json(f, st, False, [0]) for f in diff.files]

    if stat_only:
        out["files"] = heads()
        out["text"] = diff_stat_text(diff)
        return out
    budget = [budget_bytes]
    chosen: list[int] = []
    for i, f in enumerate(diff.files[offset:], offset):
        size = _file_size(f)
        if chosen and size > budget[0]:
            out["next"] = i
            break
        chosen.append(i)
        budget[0] -= size
    if unified:
        text = "".join(diff.files[i].render() for i in chosen)
        out["text"] = text if len(text) < 3 * REPLY_BUDGET // 2 else text[: REPLY_BUDGET] + "\n[truncated]\n"
        out["files"] = heads()
        return out
    window = set(chosen)
    budget = [budget_bytes]
    lines = _encoded_lines if encode_lines else Hunk.rows
    out["files"] = [_file_json(f, st, i in window, budget, lines) for i, f in enumerate(diff.files)]
    return out


def rejection_json(r: rv.Rejection) -> pr.Rejection:
    """A rejection without what only undo needs (the patch and file snapshots)."""
    return cast(pr.Rejection, {k: v for k, v in vars(r).items() if k not in ("patch", "snapshots", "after")})


def comment_json(c: rv.Comment) -> pr.Comment:
    return cast(pr.Comment, dict(vars(c)))


def _file_json(f: FileDiff, st: rv.ReviewState, with_hunks: bool, budget: list[int],
               lines: Callable[[Hunk], Any] = Hunk.rows) -> dict[str, Any]:
    if not with_hunks:
        j = {**_file_head(f), "hunks": None}
    else:
        # A file over the budget on its own: keep its first hunks, omit the rest (whose
        # lines are not made at all).
        omit: set[int] = set()
        for k, h in enumerate(f.hunks):
            budget[0] -= h.size_hint()
            if budget[0] < 0 and k:
                omit.add(id(h))
        j = f.to_json(lambda h: None if id(h) in omit else lines(h))
    j["key"] = rv.file_key(f)
    j["review_status"] = rv.file_status(f, st)
    j["hunk_count"] = len(f.hunks)
    if with_hunks:
        j["omitted"] = bool(omit)
        for hj, h in zip(j["hunks"], f.hunks, strict=True):
            hj["reviewed"] = h.id in st.reviewed
            if id(h) in omit:
                hj["omitted"] = True
    else:
        j["omitted"] = True
    return j


def _file_head(f: FileDiff) -> dict[str, Any]:
    full = FileDiff(f.path, f.old_path, f.status, f.binary, f.added, f.removed, [],
                    f.mode_change, f.old_mode, f.new_mode, f.similarity, f.index)
    return full.to_json()


def _file_size(f: FileDiff) -> int:
    return sum(h.size_hint() for h in f.hunks) + FILE_OVERHEAD
