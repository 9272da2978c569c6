"""Diff review's socket methods and its entry in EXTENSIONS (docs/review.md has the shapes).

The server serves the handlers found in this module (`Router.add_module`): the review
methods defined here and the attempts' (attempts.py), imported by name for that reason.
`setup(daemon)` returns the ReviewService (review_service.py), which handlers find with
`service(d)`. A handler parses its params, calls the service and builds the reply
(review_replies.py for the big ones); the work is the service's.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

from workbench.core.git_paths import check_path
from workbench.daemon.api import method
from workbench.daemon.attempts import compare, new_attempts, pick  # noqa: F401  served with these
from workbench.daemon.hub import Client
from workbench.daemon.protocol import Encoded, encode_value
from workbench.daemon.review_replies import (
    MIN_BUDGET,
    REPLY_BUDGET,
    comment_json,
    encoded_page,
    page_key,
    rejection_json,
    review_head,
)
from workbench.daemon.review_service import ReviewService, service
from workbench.errors import UsageError
from workbench.protocol import review as pr
from workbench.protocol.session import IdParams

if TYPE_CHECKING:
    from workbench.daemon.api import Daemon


def setup(daemon: Daemon) -> ReviewService:
    return ReviewService(daemon)


# --------------------------------------------------------------------------- diff and actions


@method(pr.DIFF)
async def diff_method(d: Daemon, c: Client, p: pr.DiffParams) -> pr.DiffReply:
    """`{id, stat?, format?: json|unified, offset?, paths?, max_bytes?, text_only?}` -> see
    docs/review.md. A page is built and encoded in a thread once per change of the diff (and
    of the review marks it shows); the event loop only copies it out."""
    svc = service(d)
    s = d.manager.get(p["id"])
    offset = p.get("offset", 0)
    if offset < 0:
        raise UsageError("offset must be 0 or more")
    budget = max(MIN_BUDGET, min(REPLY_BUDGET, p.get("max_bytes", REPLY_BUDGET) or REPLY_BUDGET))
    paths = p.get("paths")
    for path in paths or []:
        check_path(path)
    diff = await svc.diff(s, paths)
    st = svc.state(s.id)
    stat_only, unified = p.get("stat", False), p.get("format") == "unified"
    kw: dict[str, Any] = {"stat_only": stat_only, "unified": unified, "offset": offset, "budget_bytes": budget,
                          "text_only": p.get("text_only", False) and (stat_only or unified)}
    key = None if paths else page_key(st, **kw)
    body = svc.cache.page(s.id, diff, key)
    if body is None:
        body = await asyncio.to_thread(encoded_page, diff, st, **kw)
        svc.cache.keep_page(s.id, diff, key, body)
    head = {"session": s.id, "computed": svc.cache.count(s.id), **review_head(st)}
    return cast(pr.DiffReply, Encoded(encode_value(head)[:-1] + b"," + body[1:]))


@method(pr.MARK_REVIEWED)
async def mark_reviewed(d: Daemon, c: Client, p: pr.MarkParams) -> pr.MarkResult:
    """`{id, hunk? | path?, reviewed?: true}`"""
    svc = service(d)
    s = d.manager.get(p["id"])
    reviewed = p.get("reviewed", True)
    changed = await svc.mark(s, p.get("hunk"), p.get("path"), reviewed)
    return {"changed": changed, "reviewed": reviewed, "review": svc.state(s.id).summary()}


@method(pr.REJECT)
async def reject(d: Daemon, c: Client, p: pr.RejectParams) -> pr.RejectResult:
    """`{id, hunk, reason?}`: reverse the hunk in the worktree."""
    svc = service(d)
    s = d.manager.get(p["id"])
    rej = await svc.reject(s, p["hunk"], p.get("reason", ""))
    return {"rejection": rejection_json(rej), "review": svc.state(s.id).summary()}


@method(pr.REVERT_FILE)
async def revert_file(d: Daemon, c: Client, p: pr.RevertFileParams) -> pr.RejectResult:
    """`{id, path, reason?}`: the whole file back as in base."""
    svc = service(d)
    s = d.manager.get(p["id"])
    rej = await svc.revert_file(s, p["path"], p.get("reason", ""))
    return {"rejection": rejection_json(rej), "review": svc.state(s.id).summary()}


@method(pr.COMMENT)
async def comment(d: Daemon, c: Client, p: pr.CommentParams) -> pr.CommentResult:
    """`{id, path, line, end_line?, text}`"""
    svc = service(d)
    s = d.manager.get(p["id"])
    cm = await svc.comment(s, p["path"], p["line"], p.get("end_line"), p["text"])
    return {"comment": comment_json(cm), "review": svc.state(s.id).summary()}


@method(pr.UNDO)
async def undo(d: Daemon, c: Client, p: IdParams) -> pr.UndoResult:
    """`{id}`: undo the last review action not yet sent to the agent."""
    svc = service(d)
    s = d.manager.get(p["id"])
    res = await svc.undo(s)
    return cast(pr.UndoResult, {**res, "review": svc.state(s.id).summary()})


@method(pr.REVIEW)
async def review(d: Daemon, c: Client, p: pr.ReviewParams) -> pr.ReviewResult:
    """`{id, send?}`: the review message of the pending comments and rejections; with
    `send` it goes to the agent and they count as sent."""
    svc = service(d)
    s = d.manager.get(p["id"])
    msg = await svc.review_message(s, send=p.get("send", False))
    out: pr.ReviewResult = {"message": msg.text, "rejections": msg.rejections, "comments": msg.comments,
                            "sent": msg.via is not None, "review": svc.state(s.id).to_json()}
    if msg.via is not None:
        out["via"] = msg.via
    return out


# --------------------------------------------------------------------------- finish


@method(pr.MERGE)
async def merge_method(d: Daemon, c: Client, p: pr.MergeParams) -> pr.MergeResult:
    """`{id, strategy?: ff|squash|rebase, message?, pr?, digest?}`"""
    svc = service(d)
    s = d.manager.get(p["id"])
    return await svc.merge(s, p.get("strategy"), p.get("message"), p.get("digest"), pr=p.get("pr", False))


@method(pr.DISCARD)
async def discard(d: Daemon, c: Client, p: IdParams) -> pr.DiscardResult:
    """`{id}`: drop every change of the session (worktree and branch back to its base)."""
    svc = service(d)
    return await svc.discard(d.manager.get(p["id"]))


# --------------------------------------------------------------------------- check


@method(pr.CHECK)
async def check(d: Daemon, c: Client, p: IdParams) -> pr.CheckResult:
    """`{id}`: run the repo's check command in the session's sandbox now; the result."""
    svc = service(d)
    result = await svc.checks.run(d.manager.get(p["id"]))
    return result.to_json()


@method(pr.SEND_CHECK)
async def send_check(d: Daemon, c: Client, p: IdParams) -> pr.SendCheckResult:
    """`{id}`: send the last failing check's output to the agent."""
    svc = service(d)
    text, how = await svc.checks.send(d.manager.get(p["id"]))
    return {"message": text, "via": how}
