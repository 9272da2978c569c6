"""The daemon's in-process event bus: typed events the SessionManager and extensions publish.

Features learn of each other's changes here, not through the socket: the hub is one
subscriber among others and turns the events into the wire's `session`, `removed`, `log`,
`delta` and `diff` messages (Hub.follow). Callbacks run synchronously, in the publisher's
thread, in subscription order; one that raises is logged and the others still run, so a
faulty feature cannot break the daemon's state changes. docs/architecture.md ("Events").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from workbench.core.models import Session, SessionState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """Base of every bus event (subscribers name the exact class they want)."""


@dataclass(frozen=True)
class SessionChanged(Event):
    """Something shown of the session changed; `old_state != new_state` for a state change."""

    session: Session
    old_state: SessionState
    new_state: SessionState


@dataclass(frozen=True)
class SessionRemoved(Event):
    """`rm` finished: the session is no longer in the manager."""

    session: Session


@dataclass(frozen=True)
class LogRecorded(Event):
    """An entry was appended to the session's event log (store sequence number `seq`)."""

    session: Session
    seq: int
    ts: float
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True)
class AgentDelta(Event):
    """Streamed text of the built-in agent's reply in progress (not stored)."""

    session: Session
    text: str


@dataclass(frozen=True)
class DiffChanged(Event):
    """The session's diff against its base changed (files, added, removed; digest)."""

    session: Session
    stat: dict[str, int]
    digest: str


@dataclass(frozen=True)
class TurnFinished(Event):
    """A running session's agent finished a turn with changes: it is about to go to `review`.

    A subscriber may `hold` it there: the session stays `running` with the subscriber's reason
    instead, and the subscriber moves it on later (`manager.set_state(..., gate=False)`).
    """

    session: Session
    held: list[str] = field(default_factory=list)

    def hold(self, reason: str) -> None:
        self.held.append(reason)


E = TypeVar("E", bound=Event)


class Bus:
    def __init__(self) -> None:
        self._subs: dict[type[Event], list[Callable[[Any], None]]] = {}

    def subscribe(self, kind: type[E], fn: Callable[[E], None]) -> None:
        """Call `fn` with every event of exactly class `kind`, after earlier subscribers."""
        self._subs.setdefault(kind, []).append(fn)

    def publish(self, event: Event) -> None:
        for fn in list(self._subs.get(type(event), ())):
            try:
                fn(event)
            except Exception:
                log.exception("bus: a subscriber to %s failed", type(event).__name__)
