"""Suggestions' socket methods and their entry in EXTENSIONS (`setup` builds the
SuggestService, suggest_service.py). docs/suggestions.md has the shapes."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from workbench.daemon.api import method
from workbench.daemon.attempts import create_attempts
from workbench.daemon.hub import Client
from workbench.daemon.session_create import CreateRequest
from workbench.daemon.suggest_service import SuggestService
from workbench.protocol import suggest as ps

if TYPE_CHECKING:
    from workbench.daemon.api import Daemon


def setup(daemon: Daemon) -> SuggestService:
    return SuggestService(daemon)


def service(d: Daemon) -> SuggestService:
    return d.manager.require_extension(SuggestService, "suggestions")


@method(ps.SUGGEST)
async def suggest(d: Daemon, c: Client, p: ps.SuggestParams) -> ps.SuggestReply:
    """`{repo, refresh?, wait?}`: the repository's suggestions (scanned when HEAD or the
    settings changed; `refresh` runs its check too)."""
    return await service(d).listing(p["repo"], refresh=p.get("refresh", False), wait=p.get("wait", True))


@method(ps.SUGGEST_START)
async def suggest_start(d: Daemon, c: Client, p: ps.SuggestStartParams) -> ps.SuggestStartResult:
    """`{id, agent?, attempts?, prompt?}`: a session (or N attempts) on the suggestion's
    prompt; each session's `extra.suggestion` is the suggestion's id."""
    svc = service(d)
    sug = svc.find(p["id"])
    prompt = p.get("prompt") or sug["prompt"]
    n = p.get("attempts", 1)
    req = CreateRequest(repo=sug["repo"], agent=p.get("agent"), prompt=prompt, extra={"suggestion": sug["id"]})
    if n == 1:
        s, warnings = await d.manager.create(req)
        return {"suggestion": sug["id"], "sessions": [d.manager.describe(s)], "warnings": warnings}
    group, created, warnings = await create_attempts(d, req, n)
    for s in created:
        s.extra["suggestion"] = sug["id"]
        with contextlib.suppress(Exception):
            d.store.save_session(s)
    return {"suggestion": sug["id"], "group": group, "sessions": [d.manager.describe(s) for s in created],
            "warnings": warnings}


@method(ps.SUGGEST_DISMISS)
async def suggest_dismiss(d: Daemon, c: Client, p: ps.SuggestIdParams) -> ps.SuggestDismissResult:
    """`{id}`: hide the suggestion from now on (remembered across restarts)."""
    await service(d).dismiss(p["id"])
    return {"dismissed": p["id"]}
