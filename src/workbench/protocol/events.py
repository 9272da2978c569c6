"""What the daemon pushes to subscribed clients: `{"event": NAME, "data": DATA}`.

A client subscribes with `subscribe` (`ids` or `all`; `frames` adds `frame` events).
"""

from typing import Any, Literal, TypedDict

from workbench.protocol.hosts import HostLink
from workbench.protocol.review import DiffStat
from workbench.protocol.session import SessionInfo
from workbench.protocol.terminal import Frame


class Removed(TypedDict):
    id: str


class LogEvent(TypedDict):
    """An entry appended to a session's log (what `events` would return from `seq`)."""

    session: str
    seq: int
    ts: float
    kind: str
    data: dict[str, Any]


class Delta(TypedDict):
    """Streamed text of the built-in agent's reply in progress (not stored)."""

    session: str
    text: str


class DiffEvent(TypedDict):
    """The session's diff against its base changed."""

    session: str
    stat: DiffStat
    digest: str


class Disconnected(TypedDict):
    """Made by the client itself when the connection to the daemon is lost."""

    reason: str


EventName = Literal["session", "removed", "log", "delta", "diff", "frame", "disconnected", "host"]


class Push(TypedDict):
    event: EventName
    data: Any


# What `data` holds for each event name.
EVENT_DATA: dict[str, type] = {
    "session": SessionInfo,
    "removed": Removed,
    "log": LogEvent,
    "delta": Delta,
    "diff": DiffEvent,
    "frame": Frame,
    "disconnected": Disconnected,
    "host": HostLink,  # a remote host's link changed state
}
