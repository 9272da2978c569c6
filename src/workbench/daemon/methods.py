"""Socket methods for sessions and the daemon itself."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

from workbench import __version__, paths
from workbench.core.keys import decode_escapes
from workbench.daemon.api import method
from workbench.daemon.hub import Client
from workbench.daemon.protocol import Params
from workbench.daemon.sessions import CreateRequest
from workbench.errors import UsageError

if TYPE_CHECKING:
    from workbench.daemon.api import Daemon

_SIZE_RE = re.compile(r"^(\d{1,4})x(\d{1,4})$")


def parse_size(text: str) -> tuple[int, int]:
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise UsageError(f"bad size {text!r}: expected COLSxROWS, e.g. 120x40")
    cols, rows = int(m.group(1)), int(m.group(2))
    if not (10 <= cols <= 1000 and 4 <= rows <= 500):
        raise UsageError(f"size {cols}x{rows} out of range (10..1000 x 4..500)")
    return cols, rows


@method("status")
async def status(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    states: dict[str, int] = {}
    for s in d.manager.sessions.values():
        states[str(s.state)] = states.get(str(s.state), 0) + 1
    return {
        "pid": os.getpid(),
        "socket": str(d.sock_path),
        "version": __version__,
        "sessions": len(d.manager.sessions),
        "states": states,
        "uptime_s": round(__import__("time").time() - d.started, 1),
        "clients": len(d.hub.clients),
        "loop_lag_ms": round(d.lag_ms, 2),
        "sandbox": d.sandbox_status,
        "data_dir": str(paths.data_dir()),
        "log": str(paths.log_file()),
    }


@method("shutdown")
async def shutdown(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    d.stopping.set()
    return {"stopping": True}


@method("ls")
async def ls(d: Daemon, c: Client, p: Params) -> list[dict[str, Any]]:
    import asyncio

    return await asyncio.to_thread(d.manager.listing)


@method("get")
async def get(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    return d.manager.describe(d.manager.get(p.str("id", required=True)))


@method("new")
async def new(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    network = p.raw.get("network")
    in_place = p.raw.get("in_place")
    req = CreateRequest(
        repo=p.str("repo", required=True),
        agent=p.str("agent"),
        name=p.str("name"),
        base=p.str("base"),
        sandbox=p.str("sandbox"),
        network=bool(network) if isinstance(network, bool) else None,
        approval=p.str("approval"),
        prompt=p.str("prompt", "") or "",
        in_place=bool(in_place) if isinstance(in_place, bool) else None,
        cols=p.int("cols"),
        rows=p.int("rows"),
        provider=p.str("provider"),
        extra={"auto_answer": True} if p.bool("auto_answer") else {},
    )
    if req.cols is not None or req.rows is not None:
        parse_size(f"{req.cols or 120}x{req.rows or 40}")
    s, warnings = await d.manager.create(req)
    return {**d.manager.describe(s), "warnings": warnings}


@method("keys")
async def keys(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    s = d.manager.get(p.str("id", required=True))
    if "data" in p.raw:
        data = p.str("data", required=True).encode("utf-8", "surrogateescape")
    else:
        data = decode_escapes(p.str("text", required=True))
    rt = d.manager.pty(s)
    rt.write(data)
    return {"bytes": len(data)}


@method("screen")
async def screen(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    s = d.manager.get(p.str("id", required=True))
    scr = d.manager.screen_of(s)
    lines = scr.ansi_lines() if p.bool("ansi") else scr.lines()
    cur = scr.cursor
    return {"lines": lines, "cursor": [cur.x, cur.y, cur.visible], "size": list(scr.size),
            "alt": scr.alt_screen, "title": scr.title}


@method("resize")
async def resize(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    s = d.manager.get(p.str("id", required=True))
    cols, rows = parse_size(p.str("size", required=True))
    rt = d.manager.runtime(s)
    rt.resize(cols, rows)
    s.cols, s.rows = cols, rows
    d.store.save_session(s)
    return {"cols": cols, "rows": rows}


@method("stop")
async def stop(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    s = d.manager.get(p.str("id", required=True))
    await d.manager.stop(s)
    return d.manager.describe(s)


@method("restart")
async def restart(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    s = d.manager.get(p.str("id", required=True))
    await d.manager.restart(s)
    return d.manager.describe(s)


@method("rm")
async def rm(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    s = d.manager.get(p.str("id", required=True))
    await d.manager.remove(s, keep_branch=p.bool("keep_branch"))
    return {"id": s.id, "removed": True, "branch_kept": p.bool("keep_branch")}


@method("gc")
async def gc(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    return {"removed": await d.manager.gc()}


@method("events")
async def events(d: Daemon, c: Client, p: Params) -> list[dict[str, Any]]:
    s = d.manager.get(p.str("id", required=True))
    return d.store.events(s.id, after=p.int("after", 0) or 0, limit=p.int("limit", 10_000) or 10_000)


@method("subscribe")
async def subscribe(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    """Receive pushed events for sessions (`ids`, or all with `all`); `frames` adds screen frames."""
    ids = p.list_str("ids", []) or []
    sessions = [d.manager.get(i) for i in ids]
    if p.bool("all"):
        c.all_sessions = True
    c.subscribed.update(s.id for s in sessions)
    if "frames" in p.raw:
        c.frames = p.bool("frames")
    if c.frames:
        for s in sessions:
            rt = d.manager.runtimes.get(s.id)
            if rt is not None and hasattr(rt, "full_frame"):
                c.send_frame(s.id, rt.full_frame())
    return {"subscribed": sorted(c.subscribed), "all": c.all_sessions, "frames": c.frames}


@method("unsubscribe")
async def unsubscribe(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    for i in p.list_str("ids", []) or []:
        c.subscribed.discard(i)
        c.pending_frames.pop(i, None)
    if p.bool("all"):
        c.all_sessions = False
        c.subscribed.clear()
    return {"subscribed": sorted(c.subscribed)}


@method("frame")
async def frame(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    s = d.manager.get(p.str("id", required=True))
    rt = d.manager.runtimes.get(s.id)
    if rt is None or not hasattr(rt, "full_frame"):
        raise UsageError(f"session {s.name} has no terminal")
    result: dict[str, Any] = rt.full_frame()
    return result


@method("scrollback")
async def scrollback(d: Daemon, c: Client, p: Params) -> dict[str, Any]:
    s = d.manager.get(p.str("id", required=True))
    scr = d.manager.screen_of(s)
    total = scr.scrollback_len()
    start = max(0, min(total, p.int("start", 0) or 0))
    count = max(0, min(1000, p.int("count", 100) or 100))
    return {"total": total, "start": start, "rows": scr.scrollback(start, count)}


@method("recent_repos")
async def recent_repos(d: Daemon, c: Client, p: Params) -> list[str]:
    return d.store.recent_repos()
