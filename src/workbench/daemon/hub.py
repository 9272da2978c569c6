"""Fan-out of pushed events and screen frames to subscribed clients.

The pushed events are the bus's (daemon/bus.py), serialised here for the wire (`follow`);
nothing else in the daemon writes events to clients.

Frames are deltas (changed rows). A slow client never blocks the daemon: its pending
frames for a session are merged into one, so it receives fewer, larger frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from workbench.core.escapes import one_line
from workbench.daemon.bus import AgentDelta, Bus, DiffChanged, LogRecorded, SessionChanged, SessionRemoved
from workbench.daemon.protocol import encode
from workbench.protocol.events import EventName
from workbench.protocol.session import SessionInfo

if TYPE_CHECKING:
    from workbench.core.models import Session

log = logging.getLogger(__name__)

MAX_OUTBOX = 5000


def merge_frames(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    if new.get("full"):
        return new
    rows = dict(old["rows"])
    rows.update(new["rows"])
    return {**old, **{k: v for k, v in new.items() if k != "rows"}, "rows": rows, "full": old.get("full", False)}


class Client:
    """One connected peer: an ordered outbox plus merged pending frames."""

    def __init__(self, writer: asyncio.StreamWriter, name: str) -> None:
        self.writer = writer
        self.name = name
        self.subscribed: set[str] = set()
        self.all_sessions = False
        self.frames = False
        self.frame_only: set[str] | None = None  # `frame_ids`: frames of these sessions only
        self.outbox: list[bytes] = []
        self.pending_frames: dict[str, dict[str, Any]] = {}
        self.wake = asyncio.Event()
        self.closed = False
        self.task: asyncio.Task[None] | None = None

    def wants(self, session_id: str | None) -> bool:
        return session_id is None or self.all_sessions or session_id in self.subscribed

    def send(self, msg: dict[str, Any]) -> None:
        if self.closed:
            return
        if len(self.outbox) >= MAX_OUTBOX:
            log.warning("client %s is not reading; disconnecting it", one_line(self.name, 40))
            self.outbox.clear()
            self.close(abort=True)
            return
        self.outbox.append(encode(msg))
        self.wake.set()

    def send_frame(self, session_id: str, frame: dict[str, Any], urgent: bool = False) -> None:
        """Queue a frame (merged with one still pending); `urgent` writes it now if nothing
        is queued ahead of it, saving the pump's loop iteration (echo of typed keys)."""
        if self.closed:
            return
        if urgent and not self.outbox and not self.pending_frames and self._idle():
            self.writer.write(encode({"event": "frame", "data": frame}))
            return
        old = self.pending_frames.get(session_id)
        self.pending_frames[session_id] = merge_frames(old, frame) if old else frame
        self.wake.set()

    def _idle(self) -> bool:
        transport = self.writer.transport
        return not transport.is_closing() and transport.get_write_buffer_size() == 0

    async def pump(self) -> None:
        try:
            while not self.closed:
                await self.wake.wait()
                self.wake.clear()
                out, self.outbox = self.outbox, []
                frames, self.pending_frames = self.pending_frames, {}
                for f in frames.values():
                    out.append(encode({"event": "frame", "data": f}))
                if out:
                    self.writer.write(b"".join(out))
                    await self.writer.drain()
        except (ConnectionError, RuntimeError):
            self.closed = True
        except asyncio.CancelledError:
            raise

    def close(self, abort: bool = False) -> None:
        """Close the connection; replies still queued (e.g. to `shutdown`) go out first,
        unless `abort` (a peer that does not read would hold the buffer forever)."""
        self.closed = True
        self.wake.set()
        with contextlib.suppress(Exception):
            if abort:
                self.writer.transport.abort()
                return
            if self.outbox:
                self.writer.write(b"".join(self.outbox))
                self.outbox.clear()
            self.writer.close()


class Hub:
    def __init__(self) -> None:
        self.clients: set[Client] = set()

    def add(self, client: Client) -> None:
        self.clients.add(client)

    def remove(self, client: Client) -> None:
        self.clients.discard(client)

    def follow(self, bus: Bus, describe: Callable[[Session], SessionInfo]) -> None:
        """Push the bus's events to clients in the wire format (the protocol tests and the
        UI are its contract); `describe` is the `session` event's body."""
        bus.subscribe(SessionChanged, lambda e: self.publish("session", describe(e.session), e.session.id))
        # Unscoped: a client that follows some sessions also learns the removed one is gone.
        bus.subscribe(SessionRemoved, lambda e: self.publish("removed", {"id": e.session.id}))
        bus.subscribe(LogRecorded, lambda e: self.publish(
            "log", {"session": e.session.id, "seq": e.seq, "ts": e.ts, "kind": e.kind, "data": e.data},
            e.session.id))
        bus.subscribe(AgentDelta, lambda e: self.publish(
            "delta", {"session": e.session.id, "text": e.text}, e.session.id))
        bus.subscribe(DiffChanged, lambda e: self.publish(
            "diff", {"session": e.session.id, "stat": e.stat, "digest": e.digest}, e.session.id))

    def publish(self, event: EventName, data: Mapping[str, Any], session_id: str | None = None) -> None:
        msg = {"event": event, "data": data}
        for c in list(self.clients):
            if (c.all_sessions or c.subscribed) and c.wants(session_id):
                c.send(msg)

    def frame_watchers(self, session_id: str) -> list[Client]:
        return [c for c in self.clients if c.frames and not c.closed and c.wants(session_id)
                and (c.frame_only is None or session_id in c.frame_only)]
