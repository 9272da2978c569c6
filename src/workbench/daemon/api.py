"""What socket methods and extensions see of the daemon, and the per-daemon method router.

`server.Daemon` satisfies `Daemon` structurally; methods (`methods.py`) and extensions
(`*_ext.py`) import this module, never the server, so the server can import them.

A handler is declared with `@method(SPEC)` where SPEC is a `protocol.Method`: its third
parameter is typed with SPEC's params TypedDict and it returns SPEC's result type (mypy
checks both through the decorator). The decorator only marks the function; each daemon's
`Router` collects the marked handlers of the modules it is given, checks that the
signature's params type is SPEC's, and validates every request at the boundary, so a bad
parameter is a `usage` error that names it before any handler runs.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from workbench.errors import UsageError
from workbench.protocol.catalog import METHODS as CATALOG
from workbench.protocol.method import Method
from workbench.protocol.validate import ParamError

if TYPE_CHECKING:
    from workbench.core.store import Store
    from workbench.daemon.hub import Client, Hub
    from workbench.daemon.sessions import SessionManager

P = TypeVar("P")
R = TypeVar("R")


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


Handler = Callable[["Daemon", "Client", P], Awaitable[R]]
_MARK = "__workbench_method__"


def method(spec: Method[P, R]) -> Callable[[Handler[P, R]], Handler[P, R]]:
    """Mark `fn` as the handler of `spec`; a daemon's Router registers it."""

    def deco(fn: Handler[P, R]) -> Handler[P, R]:
        setattr(fn, _MARK, spec)
        return fn

    return deco


class Router:
    """One daemon's socket methods: name -> (spec, handler)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[Method[Any, Any], Handler[Any, Any]]] = {}

    def add(self, fn: Handler[Any, Any]) -> None:
        spec: Method[Any, Any] | None = getattr(fn, _MARK, None)
        if spec is None:
            raise TypeError(f"{fn!r} is not a socket method (use @method(SPEC))")
        if CATALOG.get(spec.name) is not spec:
            raise TypeError(f"method {spec.name!r} is not declared in workbench.protocol")
        if spec.name in self.routes:
            raise TypeError(f"two handlers for method {spec.name!r}")
        _check_signature(fn, spec)
        self.routes[spec.name] = (spec, fn)

    def add_module(self, module: ModuleType) -> None:
        for value in vars(module).values():
            if callable(value) and hasattr(value, _MARK):
                self.add(value)

    async def dispatch(self, d: Daemon, client: Client, name: Any, raw: Any) -> Any:
        route = self.routes.get(name) if isinstance(name, str) else None
        if route is None:
            raise UsageError(f"unknown method {name!r}")
        spec, fn = route
        try:
            params = spec.validate(raw)
        except ParamError as e:
            if e.protocol:
                from workbench.daemon.protocol import ProtocolError

                raise ProtocolError(str(e)) from None
            raise UsageError(f"{spec.name}: {e}") from None
        return await fn(d, client, params)


def _check_signature(fn: Handler[Any, Any], spec: Method[Any, Any]) -> None:
    """The handler's third parameter must be annotated with the spec's params type."""
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != 3:
        raise TypeError(f"handler of {spec.name!r} must take (daemon, client, params)")
    ann = params[2].annotation
    name = ann if isinstance(ann, str) else getattr(ann, "__name__", repr(ann))
    if name.rsplit(".", 1)[-1] != spec.params.__name__:
        raise TypeError(f"handler of {spec.name!r} takes {name}, but the protocol says {spec.params.__name__}")
