"""The UI's connection to the daemon: two AsyncClients, pushed events as Textual messages,
and reconnection.

One connection subscribes to every session's events (the list must see all of them); a
second one receives screen frames for the visible sessions only, so the daemon does not
render frames for sessions nobody looks at.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from textual.message import Message

from workbench.core.echo_trace import mark
from workbench.daemon.async_client import AsyncClient
from workbench.errors import DaemonError, NotFound, UsageError, WorkbenchError
from workbench.protocol import terminal as pt
from workbench.protocol.method import Method
from workbench.ui.messages import DaemonDown, DaemonEvent, DaemonUp, FrameEvent

log = logging.getLogger(__name__)
P = TypeVar("P")
R = TypeVar("R")

RECONNECT_INTERVAL = 1.0


class NotAvailable(WorkbenchError):
    """The daemon does not know this method yet (a feature that has not landed)."""

    code = "usage"

    def __init__(self, method: str) -> None:
        super().__init__(f"{method!r} is not available in this daemon yet")
        self.method = method


class DaemonLink:
    def __init__(self, post: Callable[[Message], Any]) -> None:
        self._post = post
        self.control: AsyncClient | None = None
        self.frames: AsyncClient | None = None
        self.up = False
        self.info: dict[str, Any] = {}
        self.frame_ids: set[str] = set()
        self._reconnect: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._generation = 0

    async def connect(self, autostart: bool = True) -> None:
        """Connect both clients; raises DaemonError (or OSError) when the daemon is not there."""
        self._generation += 1
        gen = self._generation
        await self._drop_clients()
        control = AsyncClient("ui", on_event=lambda e: self._on_control(gen, e))
        await control.connect(autostart=autostart)
        frames = AsyncClient("ui-frames", on_event=lambda e: self._on_frames(gen, e))
        try:
            await frames.connect(autostart=False)
            await control.request(pt.SUBSCRIBE, pt.SubscribeParams(all=True))
        except BaseException:
            await control.close()
            await frames.close()
            raise
        self.control, self.frames = control, frames
        self.info = control.info
        self.up = True
        wanted, self.frame_ids = set(self.frame_ids), set()
        await self.set_frame_ids(wanted)
        self._post(DaemonUp(dict(control.info)))

    async def _drop_clients(self) -> None:
        old = [c for c in (self.control, self.frames) if c is not None]
        self.control = self.frames = None
        for c in old:
            await c.close()

    def _on_control(self, gen: int, ev: dict[str, Any]) -> None:
        if gen != self._generation:
            return
        name = str(ev.get("event", ""))
        if name == "disconnected":
            self._lost(str((ev.get("data") or {}).get("reason") or "the daemon closed the connection"))
        elif isinstance(ev.get("data"), dict):
            self._post(DaemonEvent(name, ev["data"]))

    def _on_frames(self, gen: int, ev: dict[str, Any]) -> None:
        if gen != self._generation:
            return
        name = ev.get("event")
        if name == "frame" and isinstance(ev.get("data"), dict):
            mark("ui.frame")
            self._post(FrameEvent(ev["data"]))
        elif name == "disconnected":
            self._lost("the daemon closed the connection")

    def _lost(self, reason: str) -> None:
        if self._closing or not self.up:
            return
        self.up = False
        self._generation += 1
        self._post(DaemonDown(reason))
        self._spawn(self._drop_clients())
        self.start_reconnecting()

    def start_reconnecting(self) -> None:
        if self._reconnect is None or self._reconnect.done():
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        while not self.up and not self._closing:
            await asyncio.sleep(RECONNECT_INTERVAL)
            try:
                await self.connect(autostart=False)
            except (WorkbenchError, OSError) as e:
                log.debug("reconnect failed: %s", e)

    async def restart(self) -> None:
        """Reconnect now, starting the daemon when it is not running."""
        if self._reconnect is not None:
            self._reconnect.cancel()
        await self.connect(autostart=True)

    async def request(self, spec: Method[P, R], params: P) -> R:
        """Call a declared method. A slow one (a check run, a merge, a large diff) goes on a
        connection of its own so that it never holds up keystrokes on the main one."""
        if not self.up or self.control is None:
            raise DaemonError("not connected to the daemon", hint="it reconnects by itself; F5 starts it")
        client = self.control
        if spec.slow:
            client = AsyncClient("ui-slow")
        try:
            if spec.slow:
                await client.connect(autostart=False)
            return await client.request(spec, params)
        except UsageError as e:
            if str(e).startswith("unknown method"):
                raise NotAvailable(spec.name) from None
            raise
        finally:
            if spec.slow:
                await client.close()

    def send_keys(self, session_id: str, data: bytes, on_error: Callable[[Exception], None]) -> None:
        """Fire-and-forget keystrokes; requests are written in call order, so keys stay in order."""
        text = data.decode("utf-8", "surrogateescape")

        async def go() -> None:
            mark("ui.sending")
            try:
                await self.request(pt.KEYS, pt.KeysParams(id=session_id, data=text))
            except (WorkbenchError, OSError) as e:
                on_error(e)

        self._spawn(go())

    async def set_frame_ids(self, ids: set[str]) -> None:
        """Receive frames for exactly these sessions."""
        if self.frames is None or not self.up:
            self.frame_ids = set(ids)
            return
        gone = self.frame_ids - ids
        new = ids - self.frame_ids
        self.frame_ids = set(ids)
        with contextlib.suppress(WorkbenchError, OSError):
            if gone:
                await self.frames.request(pt.UNSUBSCRIBE, pt.UnsubscribeParams(ids=sorted(gone)))
        for sid in sorted(new):
            try:
                await self.frames.request(pt.SUBSCRIBE, pt.SubscribeParams(ids=[sid], frames=True))
            except NotFound:
                self.frame_ids.discard(sid)
            except (WorkbenchError, OSError) as e:
                log.debug("subscribe %s failed: %s", sid, e)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closing = True
        if self._reconnect is not None:
            self._reconnect.cancel()
        await self._drop_clients()
        for t in list(self._tasks):
            t.cancel()
