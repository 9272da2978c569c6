"""One inbox over many hosts: the local daemon's links to remote daemons, and the routing of
requests to the daemon that owns a session (docs/remote.md).

A remote session's id is `HOST:ID` here (and its description has `host`). A request whose
`id` is such an id goes over HOST's link with the host's own id, and the answer comes back
with the ids namespaced again; `ls` adds each link's last listing (answered at once, up or
down); `new --host` creates there. The links' events are republished to local clients with
namespaced ids, frames only to the clients watching that session (merged per client, as
local frames are, so a slow link or client never queues them without bound).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, cast

from workbench import hosts_config
from workbench.daemon.api import method
from workbench.daemon.remote_link import RemoteLink, plain_id
from workbench.errors import ConfigError, DaemonError, UsageError
from workbench.protocol.catalog import METHODS
from workbench.protocol.hosts import HOSTS, HostLink, HostsParams

if TYPE_CHECKING:
    from workbench.daemon.api import Daemon
    from workbench.daemon.hub import Client, Hub

log = logging.getLogger(__name__)

Local = Callable[[Any, Any], Awaitable[Any]]  # (method, params) -> this daemon's answer
LOCAL = ("", "local")


def checked(host: str, obj: Any) -> Any:
    """`obj` if every session id in it is plain (a host's ids end up on terminals here, in
    `ls` and the UI), else a DaemonError: the host is trusted to run sessions, not to
    write escapes into this machine's terminal."""
    items = obj if isinstance(obj, list) else [obj]
    if isinstance(obj, dict) and isinstance(obj.get("sessions"), list):
        items = [obj, *obj["sessions"]]
    for x in items:
        if isinstance(x, dict):
            for key in ("id", "session"):
                if isinstance(x.get(key), str) and not plain_id(x[key]):
                    raise DaemonError(f"host {host} sent a malformed session id")
    return obj


def tag(host: str, obj: Any) -> Any:
    """A remote answer or event as local clients see it: session ids become `HOST:ID`. In the
    protocol a string `id` at the top of an answer is always the session's (comments' and
    rejections' ids are numbers, hunks' are nested), as are `session` and the items of a
    top-level list or of `sessions`."""
    if isinstance(obj, list):
        return [tag(host, x) for x in obj]
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    if isinstance(out.get("id"), str):
        out["id"] = f"{host}:{out['id']}"
        if "state" in out:
            out["host"] = host
    if isinstance(out.get("session"), str):
        out["session"] = f"{host}:{out['session']}"
    if isinstance(out.get("sessions"), list):
        out["sessions"] = tag(host, out["sessions"])
    return out


class Remotes:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.links: dict[str, RemoteLink] = {}
        self.config_error = ""
        self._mtime: float | None = None
        self._frames_dirty = False
        self._tasks: set[asyncio.Task[Any]] = set()  # held: the loop keeps only weak references

    # --- configuration -------------------------------------------------------------------

    def reload(self, force: bool = False) -> None:
        """Follow hosts.toml: start links of new hosts, close those of removed or changed ones."""
        try:
            mtime: float | None = os.stat(hosts_config.hosts_file()).st_mtime
        except OSError:
            mtime = None
        if mtime == self._mtime and not force:
            return
        self._mtime = mtime
        try:
            hosts = hosts_config.load()
            self.config_error = ""
        except ConfigError as e:
            log.warning("hosts: %s", e)
            self.config_error = str(e)
            return
        for name, link in list(self.links.items()):
            if hosts.get(name) != link.host:
                del self.links[name]
                for sid in list(link.sessions):
                    self.hub.publish("removed", {"id": f"{name}:{sid}"})
                self._spawn(link.close())
        for name, h in hosts.items():
            if name not in self.links:
                link = RemoteLink(h, self._on_event, self._on_state)
                self.links[name] = link
                link.start()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        links, self.links = list(self.links.values()), {}
        await asyncio.gather(*(link.close() for link in links), *self._tasks, return_exceptions=True)

    def describe(self) -> list[HostLink]:
        return [link.describe() for link in self.links.values()]

    # --- routing ---------------------------------------------------------------------------

    def owner(self, sid: str) -> tuple[RemoteLink, str] | None:
        host, sep, rest = sid.partition(":")
        link = self.links.get(host) if sep else None
        return (link, rest) if link is not None and rest else None

    async def dispatch(self, client: Client, name: Any, raw: Any, local: Local) -> Any:
        """Answer a request here, over a link, or both (`ls`)."""
        if name == "ls":
            self.reload()  # hosts.toml edited by hand applies at the next `ls`
            return [*await local(name, raw), *self.listing()]
        if not isinstance(raw, dict):
            return await local(name, raw)
        if name in ("new", "new_attempts") and "host" in raw:
            params = {k: v for k, v in raw.items() if k != "host"}
            if raw["host"] in LOCAL:
                return await local(name, params)
            link = self.links.get(raw["host"]) if isinstance(raw["host"], str) else None
            if link is None:
                raise UsageError(f"no host {raw['host']!r}", hint="see `workbench host ls`")
            return self._answer(link, await link.request(name, params, slow=True))
        if name in ("subscribe", "unsubscribe") and self.links:
            return await self._subscribe(client, name, raw, local)
        sid = raw.get("id")
        owned = self.owner(sid) if isinstance(sid, str) and self.links else None
        if owned is None:
            return await local(name, raw)
        link, rid = owned
        spec = METHODS.get(name) if isinstance(name, str) else None
        if spec is None:
            raise UsageError(f"unknown method {name!r}")
        return self._answer(link, await link.request(name, {**raw, "id": rid}, slow=spec.slow))

    def _answer(self, link: RemoteLink, result: Any) -> Any:
        checked(link.name, result)
        link.note_answer(result)
        return tag(link.name, result)

    def listing(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for link in self.links.values():
            out += tag(link.name, list(link.sessions.values()))
        return out

    async def _subscribe(self, client: Client, name: str, raw: dict[str, Any], local: Local) -> Any:
        ids = raw.get("ids")
        remote = [i for i in ids if isinstance(i, str) and self.owner(i)] if isinstance(ids, list) else []
        params = {**raw, "ids": [i for i in raw["ids"] if i not in remote]} if remote else raw
        res = await local(name, params)
        fresh: list[tuple[RemoteLink, str]] = []
        for i in remote:
            link, rid = cast("tuple[RemoteLink, str]", self.owner(i))
            if name == "subscribe":
                full = rid if rid in link.sessions else str(
                    checked(link.name, await link.request("get", {"id": rid}))["id"])
                client.subscribed.add(f"{link.name}:{full}")
                fresh.append((link, full))
            else:
                client.subscribed.discard(i)
                client.pending_frames.pop(i, None)
        await self.update_frames()
        if client.frames:
            for link, rid in fresh:  # the first screen, as a local subscribe sends it
                with contextlib.suppress(Exception):
                    frame = await link.request("frame", {"id": rid})
                    client.send_frame(f"{link.name}:{rid}", tag(link.name, frame))
        if isinstance(res, dict) and "subscribed" in res:
            res["subscribed"] = sorted(client.subscribed)
        return res

    async def update_frames(self) -> None:
        """Ask each link for the frames of the sessions some local client watches."""
        self._frames_dirty = False
        for link in list(self.links.values()):
            prefix = f"{link.name}:"
            want: set[str] = set()
            for c in self.hub.clients:
                if not c.frames or c.closed:
                    continue
                if c.all_sessions:
                    want |= set(link.sessions)
                want |= {s[len(prefix):] for s in c.subscribed if s.startswith(prefix)}
            await link.watch_frames(want)

    # --- what the links report -------------------------------------------------------------

    def _on_state(self, link: RemoteLink) -> None:
        if self.links.get(link.name) is link:
            self.hub.publish("host", link.describe())

    def _on_event(self, link: RemoteLink, msg: dict[str, Any]) -> None:
        if self.links.get(link.name) is not link:
            return
        event, data = msg.get("event"), msg.get("data")
        if not isinstance(data, dict):
            return
        try:
            checked(link.name, data)
        except DaemonError:
            log.warning("host %s sent a %s event with a malformed session id; dropped", link.name, event)
            return
        host = link.name
        if event == "session":
            info = tag(host, data)
            self.hub.publish("session", info, info["id"])
        elif event == "removed":
            self.hub.publish("removed", {"id": f"{host}:{data.get('id')}"})
        elif event in ("log", "delta", "diff"):
            out = tag(host, data)
            self.hub.publish(event, out, out.get("session"))
        elif event == "frame":
            sid = f"{host}:{data.get('session')}"
            watchers = self.hub.frame_watchers(sid)
            for c in watchers:
                c.send_frame(sid, tag(host, data))
            if not watchers and not self._frames_dirty:  # its watcher left: stop the stream
                self._frames_dirty = True
                self._spawn(self.update_frames())


class _WithRemotes(Protocol):
    remotes: Remotes


@method(HOSTS)
async def hosts(d: Daemon, c: Client, p: HostsParams) -> list[HostLink]:
    remotes = cast("_WithRemotes", d).remotes
    remotes.reload(force=True)
    if remotes.config_error:
        raise ConfigError(remotes.config_error)
    return remotes.describe()
