"""Talking to a session's agent: messages, approvals, its transcript."""

from typing import Literal, NotRequired, TypedDict

from workbench.protocol.method import Method
from workbench.protocol.session import EventsParams, IdParams, LogEntry

Decision = Literal["approve", "approve_always", "deny"]


class SendParams(TypedDict):
    id: str
    text: str


class SendResult(TypedDict):
    id: str
    # built-in agent: True when the message waits for the turn in progress
    queued: bool
    # terminal agents: bytes typed
    bytes: NotRequired[int]


class ApproveParams(TypedDict):
    id: str
    always: NotRequired[bool]


class DenyParams(TypedDict):
    id: str
    reason: NotRequired[str]


class AnswerResult(TypedDict):
    id: str
    decision: Decision
    call_id: NotRequired[str | None]
    describe: NotRequired[str]


class InterruptResult(TypedDict):
    id: str
    interrupted: bool


class CompactResult(TypedDict):
    id: str
    # busy: compaction happens before the agent's next model request
    scheduled: NotRequired[bool]
    # done now: the conversation's size in tokens before and after
    before: NotRequired[int]
    after: NotRequired[int]
    reason: NotRequired[str]


SEND: Method[SendParams, SendResult] = Method("send", SendParams)
APPROVE: Method[ApproveParams, AnswerResult] = Method("approve", ApproveParams)
DENY: Method[DenyParams, AnswerResult] = Method("deny", DenyParams)
# The transcript: the log entries a person reads (messages, tool calls, approvals...).
LOG: Method[EventsParams, list[LogEntry]] = Method("log", EventsParams)
INTERRUPT: Method[IdParams, InterruptResult] = Method("interrupt", IdParams)
COMPACT: Method[IdParams, CompactResult] = Method("compact", IdParams, slow=True)
