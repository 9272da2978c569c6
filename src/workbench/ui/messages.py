"""App-wide messages: what the daemon link reports to the app, and what the app tells the main
screen."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from textual.message import Message

from workbench.protocol.session import NewParams
from workbench.protocol.terminal import Frame


@dataclass
class DaemonUp(Message):
    """Connected (or reconnected) to the daemon; `info` is its hello reply."""

    info: dict[str, Any]


@dataclass
class DaemonDown(Message):
    """The connection is gone; the link keeps trying to reconnect."""

    reason: str


@dataclass
class DaemonEvent(Message):
    """A pushed event other than a frame: session, removed, log, delta, diff, ..."""

    event: str
    data: dict[str, Any]


@dataclass
class FrameEvent(Message, bubble=False):
    """A screen frame (full or delta) for one session. The app hands it to the main screen,
    which applies it to the session's terminal state and repaints the pane."""

    data: Frame


# What the app tells the main screen. The app never calls into the screen: it posts these and
# `screens.main.MainScreen` handles them on the same event loop, in the order posted. They stop
# at the screen (`bubble=False`): the app, its parent, must not see its own messages come back.


@dataclass
class SessionsChanged(Message, bubble=False):
    """The app's session table changed; `rebuild` remounts the panes even if the layout is the same
    (after a (re)connect, when every pane's state is stale)."""

    rebuild: bool = False


@dataclass
class ShowSession(Message, bubble=False):
    """Put a session in view, then (in this order) move the focus: `focus` "list" focuses the
    session list, "card" the session's approval card (the list if it has no pane), "review" its
    diff at the first hunk not reviewed (the list if it changed nothing); `attach` attaches as
    Enter does once the screen has refreshed."""

    session_id: str
    focus: Literal["", "list", "card", "review"] = ""
    attach: bool = False


@dataclass
class StatusChanged(Message, bubble=False):
    """The daemon's label or link state changed: redraw the status bar."""


@dataclass
class Tick(Message, bubble=False):
    """Once a second: elapsed times in the session list moved on."""


@dataclass
class SessionOutput(Message, bubble=False):
    """A `log`, `delta` or `diff` event for a session's pane (the app has updated its diff cache)."""

    session_id: str
    event: str
    data: dict[str, Any]


@dataclass
class CreateSession(Message, bubble=False):
    """The new-session dialog was confirmed: the screen, which owns the pane's size, fills
    `cols`/`rows` into `params` and hands them to `create`, which makes the `new` request."""

    params: NewParams
    create: Callable[[NewParams], object]
