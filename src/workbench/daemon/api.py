"""What socket methods and extensions see of the daemon, and the method registry.

`server.Daemon` satisfies `Daemon` structurally; methods (`methods.py`) and extensions
(`*_ext.py`) import this module, never the server, so the server can import them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from workbench.core.store import Store
    from workbench.daemon.hub import Client, Hub
    from workbench.daemon.protocol import Params
    from workbench.daemon.sessions import SessionManager


class Daemon(Protocol):
    """The running daemon as a handler or an extension sees it."""

    started: float
    hub: Hub
    store: Store
    manager: SessionManager
    server: asyncio.AbstractServer | None
    stopping: asyncio.Event
    sock_path: Path
    lag_ms: float
    sandbox_status: dict[str, Any]


Handler = Callable[[Daemon, "Client", "Params"], Awaitable[Any]]
METHODS: dict[str, Handler] = {}


def method(name: str) -> Callable[[Handler], Handler]:
    """Register a socket method under `name` (the server dispatches by this table)."""

    def deco(fn: Handler) -> Handler:
        METHODS[name] = fn
        return fn

    return deco
