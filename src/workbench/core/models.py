"""The session record as stored and sent over the wire."""

from __future__ import annotations

import enum
import time
from dataclasses import asdict, dataclass, field
from typing import Any


class SessionState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    WAITING = "waiting"  # a human must answer: an approval, a question, an idle prompt
    REVIEW = "review"  # finished; a diff awaits
    ERROR = "error"
    STOPPED = "stopped"


# The reason of a session whose agent finished a turn without a change: its next message is up to
# the person (the built-in agent and ACP agents alike).
IDLE_REASON = "idle: waiting for your next message"

# Attention order: who needs the human first.
ATTENTION_ORDER = {SessionState.WAITING: 0, SessionState.ERROR: 1, SessionState.REVIEW: 2}


@dataclass
class Session:
    id: str
    name: str
    repo: str
    branch: str
    worktree: str
    base_commit: str
    base_ref: str
    agent: str
    command: list[str]
    state: SessionState = SessionState.STARTING
    sandbox: str = "workspace"
    network: bool = False
    approval: str = "suggest"
    in_place: bool = False
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    state_since: float = field(default_factory=time.time)
    exit_code: int | None = None
    reason: str = ""
    pid: int | None = None
    cols: int = 120
    rows: int = 40
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    check: str = "none"
    prompt: str = ""
    provider: str = ""
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = str(self.state)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Session:
        known = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in d.items() if k in known}
        data["state"] = SessionState(data.get("state", "stopped"))
        return cls(**data)
