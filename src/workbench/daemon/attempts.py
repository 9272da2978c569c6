"""Attempts (best-of-N): N sessions on one prompt, compared side by side, one picked.

The sessions of one `new_attempts` share an `attempt_group` (and their number, `attempt`,
of `attempts`) in their `extra`; nothing else marks them. `compare` reads each one's diff
and check through the review service; `pick` removes the others. The handlers are served
as part of diff review's extension module (review_methods.py imports them).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench import config as config_mod
from workbench.core import session_names
from workbench.core import worktree as wt_mod
from workbench.core.models import Session
from workbench.daemon.api import method
from workbench.daemon.hub import Client
from workbench.daemon.review_service import ReviewService, service
from workbench.daemon.session_create import CreateRequest
from workbench.errors import UsageError, WorkbenchError
from workbench.protocol import review as pr
from workbench.protocol.session import IdParams

if TYPE_CHECKING:
    from workbench.daemon.api import Daemon

MAX_ATTEMPTS = 10


def check_agents(agents: list[str] | None, n: int) -> list[str]:
    """The per-attempt agents, each one a name or command line on one line; at most `n`."""
    if agents is None:
        return []
    out = []
    for a in agents:
        a = a.strip()
        if not a or any(ord(ch) < 32 or ord(ch) == 127 for ch in a):
            raise UsageError(f"agents: {a!r} is not an agent name or command line",
                             hint="give names like builtin, codex, shell, or one command line each")
        out.append(a)
    if len(out) > n:
        raise UsageError(f"{len(out)} agents for {n} attempts: give at most one agent per attempt",
                         hint=f"raise --attempts to {len(out)}")
    return out


def _is_builtin(agent: str | None) -> bool:
    return (agent or "").split()[:1] == ["builtin"]


async def create_attempts(d: Daemon, template: CreateRequest, n: int, agents: list[str] | None = None,
                          extra: dict[str, Any] | None = None) -> tuple[str, list[Session], list[str]]:
    """N sessions `<name>-1..N` like `template`, attempt i with agent `agents[(i-1) % len]`
    (the template's when none): (their group, the sessions, warnings).
    All or none: a failure removes the ones already created."""
    if not 1 <= n <= MAX_ATTEMPTS:
        raise UsageError(f"--attempts must be from 1 to {MAX_ATTEMPTS}, not {n}")
    agents = check_agents(agents, n)
    if template.name:
        base = wt_mod.validate_name(template.name)
    else:
        info = await asyncio.to_thread(wt_mod.inspect_repo, Path(template.repo))
        default_agent = (agents[0] if agents else template.agent) or config_mod.load(info.root).session.agent
        from_prompt = session_names.name_from_prompt(template.prompt or "")
        if from_prompt:
            # Every "-N" of the group must be free, not just the base.
            base = session_names.unique(
                from_prompt, lambda b: any(d.store.name_taken(f"{b}-{i}") for i in range(1, n + 1))
            )
        else:
            base = d.manager.free_name(default_agent)
    names = [f"{base}-{i}" for i in range(1, n + 1)]
    taken = [x for x in names if d.store.name_taken(x)]
    if taken:
        raise UsageError(f"session name {taken[0]!r} is taken", hint="pick another --name")
    group = f"{base}-{secrets.token_hex(3)}"
    if template.in_place:
        raise UsageError("attempts need their own worktrees; --in-place cannot be used with --attempts")
    created: list[Session] = []
    warnings: list[str] = []
    try:
        for i, nm in enumerate(names, 1):
            agent = agents[(i - 1) % len(agents)] if agents else template.agent
            # Across agents, the built-in agent's provider settings go to its attempts only.
            own = not agents or _is_builtin(agent)
            req = CreateRequest(
                repo=template.repo, agent=agent, name=nm, base=template.base, sandbox=template.sandbox,
                network=template.network, approval=template.approval, prompt=template.prompt, in_place=False,
                cols=template.cols, rows=template.rows, provider=template.provider if own else None,
                model=template.model if own else None, base_url=template.base_url if own else None,
                wire_api=template.wire_api if own else None,
                extra={"attempt_group": group, "attempt": i, "attempts": n, **(extra or {})},
            )
            s, warns = await d.manager.create(req)
            created.append(s)
            warnings.extend(w for w in warns if w not in warnings)
    except BaseException:
        for s in created:
            with contextlib.suppress(Exception):
                await d.manager.remove(s, keep_branch=False)
        raise
    return group, created, warnings


def group_of(d: Daemon, group: str | None, sid: str | None) -> tuple[str, list[Session]]:
    """The attempt group (named, or the session's) and its sessions in attempt order."""
    if not group:
        s = d.manager.get(sid or "")
        group = s.extra.get("attempt_group")
        if not group:
            raise UsageError(f"session {s.name} is not one of several attempts")
    members = [x for x in d.manager.sessions.values() if x.extra.get("attempt_group") == group]
    if not members:
        raise UsageError(f"no sessions in attempt group {group!r}")
    members.sort(key=lambda x: int(x.extra.get("attempt") or 0))
    return str(group), members


async def compare_entry(svc: ReviewService, s: Session) -> pr.AttemptEntry:
    """One attempt's state, diff stats, files and check result."""
    entry: pr.AttemptEntry = {"id": s.id, "name": s.name, "state": str(s.state), "check": s.check}
    if Path(s.worktree).is_dir():
        try:
            diff = await svc.git.diff(s)
        except WorkbenchError as e:
            entry["error"] = str(e)
        else:
            svc.store_stat(s, diff)
            files, added, removed = diff.stat()
            entry["stat"] = {"files": files, "added": added, "removed": removed}
            entry["files"] = [{"path": f.path, "status": f.status, "added": f.added, "removed": f.removed,
                               "binary": f.binary} for f in diff.files]
    chk = svc.state(s.id).check
    if chk:
        entry["check_result"] = chk
    return entry


async def pick_winner(d: Daemon, s: Session) -> tuple[str, list[Session]]:
    """`s` wins its group: the other attempts are removed; (the group, the removed)."""
    group, members = group_of(d, None, s.id)
    removed = []
    for x in members:
        if x.id == s.id:
            continue
        d.manager.record(x, "discard", {"reason": f"attempt {s.name} was picked"})
        await d.manager.remove(x, keep_branch=False)
        removed.append(x)
    s.extra["picked"] = True
    d.store.save_session(s)
    d.manager.record(s, "pick", {"group": group, "removed": [x.name for x in removed]})
    d.manager.publish_session(s)
    return group, removed


# --------------------------------------------------------------------------- methods


@method(pr.NEW_ATTEMPTS)
async def new_attempts(d: Daemon, c: Client, p: pr.NewAttemptsParams) -> pr.AttemptsResult:
    """`new` params plus `attempts: N`: N sessions `<name>-1..N` on the same prompt."""
    template = CreateRequest(
        repo=p["repo"], agent=p.get("agent"), name=p.get("name"), base=p.get("base"),
        sandbox=p.get("sandbox"), network=p.get("network"), approval=p.get("approval"),
        prompt=p.get("prompt", ""), in_place=p.get("in_place", False), cols=p.get("cols"), rows=p.get("rows"),
        provider=p.get("provider"), model=p.get("model"), base_url=p.get("base_url"), wire_api=p.get("wire_api"),
    )
    group, created, warnings = await create_attempts(d, template, p["attempts"], p.get("agents"))
    return {"group": group, "sessions": [d.manager.describe(s) for s in created], "warnings": warnings}


@method(pr.COMPARE)
async def compare(d: Daemon, c: Client, p: pr.GroupParams) -> pr.CompareResult:
    """`{group}` or `{id}`: the attempts' diff stats, files and check results side by side."""
    svc = service(d)
    group = p.get("group")
    if not group and "id" not in p:
        raise UsageError("compare: missing parameter 'id' (or 'group')")
    group, members = group_of(d, group, None if group else p.get("id"))
    return {"group": group, "sessions": [await compare_entry(svc, s) for s in members]}


@method(pr.PICK)
async def pick(d: Daemon, c: Client, p: IdParams) -> pr.PickResult:
    """`{id}`: this attempt wins; the other attempts of its group are removed."""
    s = d.manager.get(p["id"])
    group, removed = await pick_winner(d, s)
    return {"winner": s.id, "group": group, "removed": [{"id": x.id, "name": x.name} for x in removed]}
