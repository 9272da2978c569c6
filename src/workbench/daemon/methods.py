"""Socket methods for sessions and the daemon itself."""

from __future__ import annotations

import asyncio
import os
import re
import time
from typing import TYPE_CHECKING

from workbench import __version__, paths
from workbench.core.keys import decode_escapes
from workbench.daemon.api import method
from workbench.daemon.hub import Client
from workbench.daemon.session_create import CreateRequest
from workbench.errors import UsageError
from workbench.protocol import session as ps
from workbench.protocol import terminal as pt

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


@method(ps.STATUS)
async def status(d: Daemon, c: Client, p: ps.NoParams) -> ps.StatusResult:
    states: dict[str, int] = {}
    for s in d.manager.sessions.values():
        states[str(s.state)] = states.get(str(s.state), 0) + 1
    return {
        "pid": os.getpid(),
        "socket": str(d.sock_path),
        "version": __version__,
        "sessions": len(d.manager.sessions),
        "states": states,
        "uptime_s": round(time.time() - d.started, 1),
        "clients": len(d.hub.clients),
        "loop_lag_ms": round(d.lag_ms, 2),
        "sandbox": d.sandbox_status,
        "data_dir": str(paths.data_dir()),
        "log": str(paths.log_file()),
    }


@method(ps.SHUTDOWN)
async def shutdown(d: Daemon, c: Client, p: ps.NoParams) -> ps.ShutdownResult:
    d.stopping.set()
    return {"stopping": True}


@method(ps.LS)
async def ls(d: Daemon, c: Client, p: ps.NoParams) -> list[ps.SessionInfo]:
    # Only a first walk of a worktree for its disk use is worth a thread: the hop costs a
    # `ls` from the CLI milliseconds on a busy machine, more than the listing itself.
    if d.manager.disk_sizes_known():
        return d.manager.listing()
    return await asyncio.to_thread(d.manager.listing)


@method(ps.GET)
async def get(d: Daemon, c: Client, p: ps.IdParams) -> ps.SessionInfo:
    return d.manager.describe(d.manager.get(p["id"]))


@method(ps.NEW)
async def new(d: Daemon, c: Client, p: ps.NewParams) -> ps.NewSession:
    req = CreateRequest(
        repo=p["repo"],
        agent=p.get("agent"),
        name=p.get("name"),
        base=p.get("base"),
        sandbox=p.get("sandbox"),
        network=p.get("network"),
        approval=p.get("approval"),
        prompt=p.get("prompt", ""),
        in_place=p.get("in_place"),
        cols=p.get("cols"),
        rows=p.get("rows"),
        provider=p.get("provider"),
        model=p.get("model"),
        base_url=p.get("base_url"),
        wire_api=p.get("wire_api"),
        extra={"auto_answer": True} if p.get("auto_answer") else {},
    )
    if req.cols is not None or req.rows is not None:
        parse_size(f"{req.cols or 120}x{req.rows or 40}")
    s, warnings = await d.manager.create(req)
    return {**d.manager.describe(s), "warnings": warnings}


@method(pt.KEYS)
async def keys(d: Daemon, c: Client, p: pt.KeysParams) -> pt.KeysResult:
    s = d.manager.get(p["id"])
    if "data" in p:
        data = p["data"].encode("utf-8", "surrogateescape")
    elif "text" in p:
        data = decode_escapes(p["text"])
    else:
        raise UsageError("keys: missing parameter 'text' (or 'data')")
    rt = d.manager.pty(s)
    rt.write(data)
    return {"bytes": len(data)}


@method(pt.SCREEN)
async def screen(d: Daemon, c: Client, p: pt.ScreenParams) -> pt.ScreenResult:
    s = d.manager.get(p["id"])
    scr = d.manager.screen_of(s)
    lines = scr.ansi_lines() if p.get("ansi") else scr.lines()
    cur = scr.cursor
    return {"lines": lines, "cursor": (cur.x, cur.y, cur.visible), "size": scr.size,
            "alt": scr.alt_screen, "title": scr.title}


@method(pt.RESIZE)
async def resize(d: Daemon, c: Client, p: pt.ResizeParams) -> pt.ResizeResult:
    s = d.manager.get(p["id"])
    cols, rows = parse_size(p["size"])
    rt = d.manager.runtime(s)
    rt.resize(cols, rows)
    s.cols, s.rows = cols, rows
    d.store.save_session(s)
    return {"cols": cols, "rows": rows}


@method(ps.STOP)
async def stop(d: Daemon, c: Client, p: ps.IdParams) -> ps.SessionInfo:
    s = d.manager.get(p["id"])
    await d.manager.stop(s)
    return d.manager.describe(s)


@method(ps.RESTART)
async def restart(d: Daemon, c: Client, p: ps.IdParams) -> ps.SessionInfo:
    s = d.manager.get(p["id"])
    await d.manager.restart(s)
    return d.manager.describe(s)


@method(ps.RENAME)
async def rename(d: Daemon, c: Client, p: ps.RenameParams) -> ps.SessionInfo:
    s = d.manager.get(p["id"])
    d.manager.rename(s, p["name"])
    return d.manager.describe(s)


@method(ps.RM)
async def rm(d: Daemon, c: Client, p: ps.RmParams) -> ps.RmResult:
    s = d.manager.get(p["id"])
    keep = p.get("keep_branch", False)
    await d.manager.remove(s, keep_branch=keep)
    return {"id": s.id, "removed": True, "branch_kept": keep}


@method(ps.GC)
async def gc(d: Daemon, c: Client, p: ps.NoParams) -> ps.GcResult:
    return {"removed": await d.manager.gc()}


@method(ps.EVENTS)
async def events(d: Daemon, c: Client, p: ps.EventsParams) -> list[ps.LogEntry]:
    s = d.manager.get(p["id"])
    return d.store.events(s.id, after=p.get("after", 0), limit=p.get("limit", 10_000) or 10_000)


@method(pt.SUBSCRIBE)
async def subscribe(d: Daemon, c: Client, p: pt.SubscribeParams) -> pt.SubscribeResult:
    """Receive pushed events for sessions (`ids`, or all with `all`); `frames` adds screen frames."""
    sessions = [d.manager.get(i) for i in p.get("ids", [])]
    if p.get("all"):
        c.all_sessions = True
    c.subscribed.update(s.id for s in sessions)
    if "frames" in p:
        c.frames = p["frames"]
    if "frame_ids" in p:
        known = c.frame_only or set()
        c.frame_only = {d.manager.get(i).id for i in p["frame_ids"]}
        sessions += [d.manager.sessions[i] for i in sorted(c.frame_only - known)]
    if c.frames:
        for s in sessions:
            rt = d.manager.runtimes.get(s.id)
            if rt is not None and hasattr(rt, "full_frame"):
                c.send_frame(s.id, rt.full_frame())
    return {"subscribed": sorted(c.subscribed), "all": c.all_sessions, "frames": c.frames}


@method(pt.UNSUBSCRIBE)
async def unsubscribe(d: Daemon, c: Client, p: pt.UnsubscribeParams) -> pt.UnsubscribeResult:
    for i in p.get("ids", []):
        c.subscribed.discard(i)
        c.pending_frames.pop(i, None)
    if p.get("all"):
        c.all_sessions = False
        c.subscribed.clear()
    return {"subscribed": sorted(c.subscribed)}


@method(pt.FRAME)
async def frame(d: Daemon, c: Client, p: ps.IdParams) -> pt.Frame:
    s = d.manager.get(p["id"])
    rt = d.manager.runtimes.get(s.id)
    if rt is None or not hasattr(rt, "full_frame"):
        raise UsageError(f"session {s.name} has no terminal")
    result: pt.Frame = rt.full_frame()
    return result


@method(pt.SCROLLBACK)
async def scrollback(d: Daemon, c: Client, p: pt.ScrollbackParams) -> pt.ScrollbackResult:
    s = d.manager.get(p["id"])
    scr = d.manager.screen_of(s)
    total = scr.scrollback_len()
    start = max(0, min(total, p.get("start", 0)))
    count = max(0, min(1000, p.get("count", 100) or 100))
    return {"total": total, "start": start, "rows": scr.scrollback(start, count)}


@method(ps.RECENT_REPOS)
async def recent_repos(d: Daemon, c: Client, p: ps.NoParams) -> list[str]:
    return d.store.recent_repos()
