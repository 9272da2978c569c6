"""App-wide messages: what the daemon link reports to the UI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

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
class FrameEvent(Message):
    """A screen frame (full or delta) for one session."""

    data: Frame
