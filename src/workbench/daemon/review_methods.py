"""Diff review's socket methods and its entry in EXTENSIONS (docs/review.md has the shapes).

The server serves the handlers found in this module (`Router.add_module`): the review
methods defined here and the attempts' (attempts.py), imported by name for that reason.
`setup(daemon)` returns the ReviewService (review_service.py), which handlers find with
`service(d)`. A handler parses its params, calls the service and builds the reply
(review_replies.py for the big ones); the work is the service's.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from workbench.core.git_paths import check_path
from workbench.daemon.api import legacy_method as method
from workbench.daemon.attempts import compare, new_attempts, pick  # noqa: F401  served with these
from workbench.daemon.hub import Client
from workbench.daemon.protocol import Params
from workbench.daemon.review_replies import MIN_BUDGET, REPLY_BUDGET, diff_reply, rejection_json
from workbench.daemon.review_service import ReviewService, service
from workbench.errors import UsageError

if TYPE_CHECKING:
    from workbench.daemon.api import Daemon


def setup(daemon: Daemon) -> ReviewService:
    return ReviewService(daemon)


# --------------------------------------------------------------------------- diff and actions


@method("diff")
async def diff_method(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, stat?, format?: json|unified, offset?, paths?, max_bytes?}` -> see docs/review.md."""
    svc = service(d)
    s = d.manager.get(p.str("id", required=True))
    fmt = p.str("format", "json")
    if fmt not in ("json", "unified"):
        raise UsageError(f"unknown diff format {fmt!r} (json or unified)")
    offset = p.int("offset", 0) or 0
    if offset < 0:
        raise UsageError("offset must be 0 or more")
    budget = max(MIN_BUDGET, min(REPLY_BUDGET, p.int("max_bytes", REPLY_BUDGET) or REPLY_BUDGET))
    paths = p.list_str("paths")
    for path in paths or []:
        check_path(path)
    diff = await svc.diff(s, paths)
    st = svc.state(s.id)
    out = await asyncio.to_thread(diff_reply, diff, st, stat_only=p.bool("stat"), unified=fmt == "unified",
                                  offset=offset, budget_bytes=budget)
    out["session"] = s.id
    return out


@method("mark_reviewed")
async def mark_reviewed(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, hunk? | path?, reviewed?: true}`"""
    svc = service(d)
    s = d.manager.get(p.str("id", required=True))
    reviewed = p.bool("reviewed", True)
    changed = await svc.mark(s, p.str("hunk"), p.str("path"), reviewed)
    return {"changed": changed, "reviewed": reviewed, "review": svc.state(s.id).summary()}


@method("reject")
async def reject(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, hunk, reason?}`: reverse the hunk in the worktree."""
    svc = service(d)
    s = d.manager.get(p.str("id", required=True))
    hunk = p.str("hunk", required=True)
    rej = await svc.reject(s, hunk, p.str("reason", "") or "")
    return {"rejection": rejection_json(rej), "review": svc.state(s.id).summary()}


@method("revert_file")
async def revert_file(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, path, reason?}`: the whole file back as in base."""
    svc = service(d)
    s = d.manager.get(p.str("id", required=True))
    path = p.str("path", required=True)
    rej = await svc.revert_file(s, path, p.str("reason", "") or "")
    return {"rejection": rejection_json(rej), "review": svc.state(s.id).summary()}


@method("comment")
async def comment(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, path, line, end_line?, text}`"""
    svc = service(d)
    s = d.manager.get(p.str("id", required=True))
    path = p.str("path", required=True)
    line = p.int("line", required=True)
    end_line = p.int("end_line")
    text = p.str("text", required=True)
    cm = await svc.comment(s, path, line, end_line, text)
    return {"comment": dict(vars(cm)), "review": svc.state(s.id).summary()}


@method("undo")
async def undo(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id}`: undo the last review action not yet sent to the agent."""
    svc = service(d)
    s = d.manager.get(p.str("id", required=True))
    res = await svc.undo(s)
    return {**res, "review": svc.state(s.id).summary()}


@method("review")
async def review(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, send?}`: the review message of the pending comments and rejections; with
    `send` it goes to the agent and they count as sent."""
    svc = service(d)
    s = d.manager.get(p.str("id", required=True))
    msg = await svc.review_message(s, send=p.bool("send"))
    out: dict[str, Any] = {"message": msg.text, "rejections": msg.rejections, "comments": msg.comments,
                           "sent": msg.via is not None, "review": svc.state(s.id).to_json()}
    if msg.via is not None:
        out["via"] = msg.via
    return out


# --------------------------------------------------------------------------- finish


@method("merge")
async def merge_method(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id, strategy?: ff|squash|rebase, message?, pr?, digest?}`"""
    svc = service(d)
    s = d.manager.get(p.str("id", required=True))
    return await svc.merge(s, p.str("strategy"), p.str("message"), p.str("digest"), pr=p.bool("pr"))


@method("discard")
async def discard(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id}`: drop every change of the session (worktree and branch back to its base)."""
    svc = service(d)
    s = d.manager.get(p.str("id", required=True))
    return await svc.discard(s)


# --------------------------------------------------------------------------- check


@method("check")
async def check(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id}`: run the repo's check command in the session's sandbox now; the result."""
    svc = service(d)
    s = d.manager.get(p.str("id", required=True))
    result = await svc.checks.run(s)
    return result.to_json()


@method("send_check")
async def send_check(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """`{id}`: send the last failing check's output to the agent."""
    svc = service(d)
    s = d.manager.get(p.str("id", required=True))
    text, how = await svc.checks.send(s)
    return {"message": text, "via": how}
