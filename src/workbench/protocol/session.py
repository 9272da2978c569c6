"""Sessions and the daemon itself on the wire: create, list, stop, remove, status."""

from typing import Any, Literal, NotRequired, TypedDict

from workbench.protocol.method import Method


class IdParams(TypedDict):
    """Methods that only name a session (by id, unique id prefix, or name)."""

    id: str


class Approval(TypedDict):
    """A built-in (or ACP) agent's tool call waiting for the person."""

    call_id: str
    kind: Literal["command", "patch"]
    describe: str
    requested_at: float
    argv: NotRequired[list[str]]  # kind command
    patch: NotRequired[str]  # kind patch


class SessionInfo(TypedDict):
    """A session as `ls`, `get` and the `session` event describe it. Keys after `alive` are
    added by extensions and present only where they apply."""

    id: str
    name: str
    repo: str
    branch: str
    worktree: str
    base_commit: str
    base_ref: str
    agent: str
    command: list[str]
    state: str
    sandbox: str
    network: bool
    approval: str
    in_place: bool
    created_at: float
    updated_at: float
    state_since: float
    exit_code: int | None
    reason: str
    pid: int | None
    cols: int
    rows: int
    tokens_in: int
    tokens_out: int
    cost_usd: float
    check: str
    prompt: str
    provider: str
    model: str
    extra: dict[str, Any]
    disk_bytes: int | None
    needs_attention: bool
    alive: bool
    # built-in agent
    approval_pending: NotRequired[Approval | None]
    turn_active: NotRequired[bool]
    context_tokens: NotRequired[int]
    context_window: NotRequired[int]
    # agents an extension drives by protocol (ACP): shown as a transcript, like built-in ones
    transcript: NotRequired[bool]
    # terminal agents
    auto_answer: NotRequired[bool]
    # review (sessions whose worktree is watched)
    added: NotRequired[int]
    removed: NotRequired[int]
    files_changed: NotRequired[int]
    check_running: NotRequired[bool]
    check_tail: NotRequired[str]
    check_exit_code: NotRequired[int | None]
    check_at: NotRequired[float | None]
    # while a failing check goes back to the agent automatically: rounds sent / allowed ("1/2")
    check_fix: NotRequired[str]
    review_pending: NotRequired[int]
    # a remote host's session (its id is `HOST:ID`; docs/remote.md)
    host: NotRequired[str]


class NewSession(SessionInfo):
    """A created session and what the person should know about its settings."""

    warnings: list[str]


class NoParams(TypedDict):
    pass


class StatusResult(TypedDict):
    pid: int
    socket: str
    version: str
    sessions: int
    states: dict[str, int]
    uptime_s: float
    clients: int
    loop_lag_ms: float
    sandbox: dict[str, Any]
    data_dir: str
    log: str


class ShutdownResult(TypedDict):
    stopping: bool


class NewParams(TypedDict):
    repo: str
    agent: NotRequired[str]
    name: NotRequired[str]
    base: NotRequired[str]
    sandbox: NotRequired[str]
    network: NotRequired[bool]
    approval: NotRequired[str]
    prompt: NotRequired[str]
    in_place: NotRequired[bool]
    cols: NotRequired[int]
    rows: NotRequired[int]
    provider: NotRequired[str]  # a [providers.NAME] of config.toml (built-in agent)
    # one-off provider settings of a built-in agent session, kept for its resumes
    model: NotRequired[str]
    base_url: NotRequired[str]
    wire_api: NotRequired[Literal["chat", "responses"]]
    auto_answer: NotRequired[bool]
    host: NotRequired[str]  # a configured remote host (`workbench host add`); the repo is a path there


class RmParams(TypedDict):
    id: str
    keep_branch: NotRequired[bool]


class RmResult(TypedDict):
    id: str
    removed: bool
    branch_kept: bool


class GcResult(TypedDict):
    removed: list[str]


class EventsParams(TypedDict):
    id: str
    after: NotRequired[int]
    limit: NotRequired[int]


class LogEntry(TypedDict):
    """One stored entry of a session's log (`events`, `log`, the `log` event)."""

    seq: int
    ts: float
    kind: str
    data: dict[str, Any]


class ProfilesParams(TypedDict):
    repo: NotRequired[str]


class NotifyParams(TypedDict):
    id: str
    event: str
    detail: NotRequired[str]


class NotifyResult(TypedDict):
    id: str
    event: str
    state: str


class AutoAnswerParams(TypedDict):
    id: str
    enabled: bool


class AutoAnswerResult(TypedDict):
    id: str
    auto_answer: bool


class ScreenVerdict(TypedDict):
    kind: str  # waiting | busy | idle | unknown
    signal: str
    pattern: str


class AttentionReport(TypedDict):
    """Why a terminal agent's session is in its state: the detector's view."""

    profile: str
    state: str
    cause: str  # pattern | idle | hook | notify | answered | ""
    signal: str
    screen: ScreenVerdict
    quiet_ms: int
    silence_ms: int
    hooks_seen: int
    auto_answer: bool


class RenameParams(TypedDict):
    id: str
    name: str


class DemoParams(TypedDict):
    repo: str


class DemoSession(NewSession):
    role: str


class DemoResult(TypedDict):
    repo: str
    sandbox: str
    notice: str
    model: str
    base_url: str
    sessions: list[DemoSession]


STATUS: Method[NoParams, StatusResult] = Method("status", NoParams)
SHUTDOWN: Method[NoParams, ShutdownResult] = Method("shutdown", NoParams)
LS: Method[NoParams, list[SessionInfo]] = Method("ls", NoParams)
GET: Method[IdParams, SessionInfo] = Method("get", IdParams)
NEW: Method[NewParams, NewSession] = Method("new", NewParams)
STOP: Method[IdParams, SessionInfo] = Method("stop", IdParams)
RESTART: Method[IdParams, SessionInfo] = Method("restart", IdParams)
RM: Method[RmParams, RmResult] = Method("rm", RmParams)
RENAME: Method[RenameParams, SessionInfo] = Method("rename", RenameParams)
GC: Method[NoParams, GcResult] = Method("gc", NoParams)
EVENTS: Method[EventsParams, list[LogEntry]] = Method("events", EventsParams)
RECENT_REPOS: Method[NoParams, list[str]] = Method("recent_repos", NoParams)
PROFILES: Method[ProfilesParams, list[dict[str, Any]]] = Method("profiles", ProfilesParams)
NOTIFY: Method[NotifyParams, NotifyResult] = Method("notify", NotifyParams)
AUTO_ANSWER: Method[AutoAnswerParams, AutoAnswerResult] = Method("auto_answer", AutoAnswerParams)
ATTENTION: Method[IdParams, AttentionReport] = Method("attention", IdParams)
DEMO: Method[DemoParams, DemoResult] = Method("demo", DemoParams, slow=True)
