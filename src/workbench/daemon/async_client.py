"""The daemon's asyncio client, for the UI: requests return futures, pushed events go to a
callback. Like the blocking client (`client.py`), it starts the daemon when none runs."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

from workbench import paths
from workbench.daemon.client import start_daemon
from workbench.daemon.protocol import MAX_LINE, PROTOCOL_VERSION, decode, encode, hello, request
from workbench.errors import DaemonError, WorkbenchError, from_wire
from workbench.protocol.method import Method

P = TypeVar("P")
R = TypeVar("R")


class AsyncClient:
    """asyncio client for the UI: requests return futures; pushed events go to `on_event`."""

    def __init__(self, name: str = "ui", on_event: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.name = name
        self.on_event = on_event or (lambda e: None)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._task: asyncio.Task[None] | None = None
        self.info: dict[str, Any] = {}
        self.connected = asyncio.Event()
        self.closed_reason = ""

    async def connect(self, autostart: bool = True) -> None:
        try:
            with paths.socket_address() as addr:
                self._reader, self._writer = await asyncio.open_unix_connection(addr, limit=MAX_LINE + 1)
        except OSError:
            if not autostart:
                raise DaemonError("the daemon is not running") from None
            await asyncio.to_thread(start_daemon)
            with paths.socket_address() as addr:
                self._reader, self._writer = await asyncio.open_unix_connection(addr, limit=MAX_LINE + 1)
        self._writer.write(encode(hello(self.name)))
        await self._writer.drain()
        line = await self._reader.readline()
        msg = decode(line)
        if "error" in msg:
            raise from_wire(msg["error"].get("code", "daemon"), msg["error"].get("message", ""))
        self.info = msg.get("result") or {}
        if self.info.get("protocol") != PROTOCOL_VERSION:
            raise DaemonError("protocol mismatch with the daemon")
        self._task = asyncio.get_running_loop().create_task(self._read_loop())
        self.connected.set()

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                try:
                    msg = decode(line)
                except WorkbenchError:
                    continue
                if "event" in msg:
                    self.on_event(msg)
                    continue
                fut = self._pending.pop(msg.get("id", -1), None)
                if fut is None or fut.done():
                    continue
                if "error" in msg:
                    err = msg["error"]
                    fut.set_exception(from_wire(str(err.get("code")), str(err.get("message"))))
                else:
                    fut.set_result(msg.get("result"))
        except (ConnectionError, asyncio.IncompleteReadError, ValueError) as e:
            self.closed_reason = str(e)
        finally:
            self.connected.clear()
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(DaemonError("lost the connection to the daemon"))
            self._pending.clear()
            self.on_event({"event": "disconnected", "data": {"reason": self.closed_reason}})

    async def request(self, spec: Method[P, R], params: P) -> R:
        """Call a declared method: `params` and the result are typed by `spec`."""
        result: R = await self._send(spec.name, cast("dict[str, Any]", params))
        return result

    async def call(self, method: str, **params: Any) -> Any:
        """Untyped: for tests that send what the protocol refuses."""
        return await self._send(method, params)

    async def _send(self, method: str, params: dict[str, Any]) -> Any:
        if self._writer is None or not self.connected.is_set():
            raise DaemonError("not connected to the daemon")
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        self._writer.write(encode(request(req_id, method, params)))
        await self._writer.drain()
        return await fut

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def events(self) -> AsyncIterator[dict[str, Any]]:  # pragma: no cover - convenience
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.on_event = queue.put_nowait
        while True:
            yield await queue.get()
