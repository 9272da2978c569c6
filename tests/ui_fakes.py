"""Fakes for UI tests: a daemon link fed with canned sessions and frames (no daemon).

Snapshot tests use these so that SVGs are the same on every run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from tests.ui_review_fakes import REVIEW_METHODS, FakeReview
from workbench.protocol import agent as pa
from workbench.protocol import review as pr
from workbench.protocol import session as ps
from workbench.protocol import terminal as pt
from workbench.protocol.method import Method
from workbench.protocol.session import SessionInfo
from workbench.ui.app import WorkbenchApp
from workbench.ui.daemon_link import NotAvailable
from workbench.ui.messages import DaemonUp, FrameEvent


def session(sid: str, name: str, state: str = "running", repo: str = "/work/api", **extra: Any) -> SessionInfo:
    now = time.time()  # per call: snapshots must not age while a long worker runs
    info = SessionInfo(
        id=sid, name=name, repo=repo, branch=f"wb/{name}", worktree=f"/tmp/none/{name}", base_commit="0" * 40,
        base_ref="main", agent=extra.pop("agent", "shell"), command=[], state=state, sandbox="workspace",
        network=False, approval="suggest", in_place=False, created_at=now - extra.pop("age", 300),
        updated_at=now, state_since=now - extra.pop("since", 60), exit_code=None, reason=extra.pop("reason", ""),
        pid=None, cols=120, rows=40, tokens_in=0, tokens_out=0, cost_usd=0.0, check="none", prompt="",
        provider="", model="", extra={}, disk_bytes=None, needs_attention=state in ("waiting", "error", "review"),
        alive=True,
    )
    return cast(SessionInfo, {**info, **extra})


def frame(sid: str, lines: list[str], cols: int = 60, rows: int = 12,
          cursor: tuple[int, int] = (0, 0)) -> pt.Frame:
    out: dict[str, pt.Row] = {}
    for i in range(rows):
        text = lines[i] if i < len(lines) else ""
        if text.startswith("!"):
            out[str(i)] = [(text[1:], 1, -1, 1)]  # bold red
        else:
            out[str(i)] = [(text, -1, -1, 0)] if text else []
    return pt.Frame(session=sid, rows=out, cursor=(cursor[0], cursor[1], True), size=(cols, rows), alt=False,
                    title="", full=True, bracketed_paste=True, mouse=False, app_cursor=False)


def sample_sessions() -> list[SessionInfo]:
    return [
        session("a1", "fix-login", "waiting", approval_pending={
            "call_id": "c1", "kind": "command", "describe": "pytest -q tests/test_login.py",
            "requested_at": time.time() - 30}, reason="approval: pytest -q", age=1500, tokens_in=12000,
            tokens_out=3400, cost_usd=0.42, added=37, removed=5),
        session("b2", "docs-pass", "running", age=720, added=120, removed=8),
        session("c3", "flaky-test", "error", reason="process exited with code 1", age=3700),
        session("d4", "refactor-db", "review", repo="/work/web", age=90000, added=210, removed=140),
    ]

SCREENS = {
    "a1": ["$ make test", "!FAILED tests/test_login.py::test_expired", "1 failed, 41 passed", "$ "],
    "b2": ["writing docs/index.md", "wrote 3 files", "$ "],
    "c3": ["Traceback (most recent call last):", "!AssertionError: flaky", "$ "],
    "d4": ["diff ready for review", "$ "],
}


class FakeLink:
    """Answers the methods the UI calls, from canned data; records every call."""

    def __init__(self, post: Any, sessions: list[SessionInfo], screens: dict[str, list[str]]) -> None:
        self.post = post
        self.up = True
        self.sessions = sessions
        self.screens = screens
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.frame_ids: set[str] = set()
        self.keys: list[tuple[str, bytes]] = []
        self.unavailable = {"approve", "deny", "send", "log", "interrupt"}
        self.review = FakeReview()
        self.compare = pr.CompareResult(group="g1", sessions=[])
        self.apart: list[str] = []  # methods called on a connection of their own

    async def connect(self, autostart: bool = True) -> None:
        self.post(DaemonUp({"pid": 4242, "protocol": 1}))

    def start_reconnecting(self) -> None:
        pass

    async def restart(self) -> None:
        await self.connect()

    async def call(self, method: str, **params: Any) -> Any:
        self.calls.append((method, params))
        if method in self.unavailable:
            raise NotAvailable(method)
        if method == "ls":
            return [dict(s) for s in self.sessions]
        if method == "status":
            return ps.StatusResult(pid=4242, socket="/tmp/none/wb.sock", version="0.0.0", sessions=len(self.sessions),
                                   states={}, uptime_s=60.0, clients=1, loop_lag_ms=0.0, sandbox={},
                                   data_dir="/tmp/none", log="/tmp/none/daemon.log")
        if method == "hosts":  # no remote hosts (docs/remote.md)
            return []
        if method in ("events", "log"):
            return [ps.LogEntry(seq=1, ts=time.time(), kind="state", data={"from": "starting", "to": "running"})]
        if method == "recent_repos":
            return ["/work/api", "/work/web"]
        if method in REVIEW_METHODS:
            return self.review.handle(method, params)
        if method == "compare":
            return self.compare
        if method == "pick":
            removed = [pr.Named(id=e["id"], name=e["name"]) for e in self.compare["sessions"]
                       if e["id"] != params["id"]]
            return pr.PickResult(winner=params["id"], group=self.compare["group"], removed=removed)
        if method == "scrollback":
            total = 50
            start = min(total, int(params.get("start", 0)))
            count = min(int(params.get("count", 1)), total - start)
            return pt.ScrollbackResult(total=total, start=start,
                                       rows=[[(f"old line {i}", -1, -1, 0)] for i in range(start, start + count)])
        return self._answer(method, params)

    def _answer(self, method: str, params: dict[str, Any]) -> Any:
        """What the daemon answers to the methods whose reply the UI barely reads."""
        sid = str(params.get("id", ""))
        if method == "new":
            s = session("n1", params.get("name") or "new-session", "starting", repo=params["repo"])
            return ps.NewSession(**s, warnings=[])
        if method in ("get", "stop", "restart"):  # the session as it is now: the fake's list stays put
            info = next(s for s in self.sessions if s["id"] == sid)
            state = {"stop": "stopped", "restart": "starting"}.get(method, info["state"])
            return cast(SessionInfo, {**info, "state": state})
        if method == "rm":
            return ps.RmResult(id=sid, removed=True, branch_kept=False)
        if method == "keys":
            return pt.KeysResult(bytes=len(params.get("data") or params.get("text") or ""))
        if method == "resize":
            cols, _, rows = str(params["size"]).partition("x")
            return pt.ResizeResult(cols=int(cols), rows=int(rows))
        if method == "send":
            return pa.SendResult(id=sid, queued=False)
        if method in ("approve", "deny"):
            decision: pa.Decision = ("deny" if method == "deny" else "approve_always" if params.get("always")
                                     else "approve")
            return pa.AnswerResult(id=sid, decision=decision, call_id="c1", describe="pytest -q tests/test_login.py")
        if method == "interrupt":
            return pa.InterruptResult(id=sid, interrupted=True)
        if method == "unsubscribe":
            return pt.UnsubscribeResult(subscribed=[])
        if method == "subscribe":
            return pt.SubscribeResult(subscribed=sorted(params.get("ids") or []), all=bool(params.get("all")),
                                      frames=bool(params.get("frames")))
        raise KeyError(f"the fake daemon does not answer {method}")

    async def request(self, spec: Method[Any, Any], params: Any) -> Any:
        """The typed entry the UI uses; slow methods go "on a connection of their own"."""
        if spec.slow:
            self.apart.append(spec.name)
        return await self.call(spec.name, **params)

    def send_keys(self, session_id: str, data: bytes, on_error: Any) -> None:
        self.keys.append((session_id, data))

    async def set_frame_ids(self, ids: set[str]) -> None:
        for sid in sorted(ids - self.frame_ids):
            if sid in self.screens:
                self.post(FrameEvent(frame(sid, self.screens[sid], cursor=(2, len(self.screens[sid]) - 1))))
        self.frame_ids = set(ids)

    async def close(self) -> None:
        self.up = False


class HarnessApp(WorkbenchApp):
    """The real app over the fake link."""

    def __init__(self, sessions: list[SessionInfo] | None = None,
                 screens: dict[str, list[str]] | None = None, theme: str | None = None,
                 **kw: Any) -> None:
        super().__init__(strict=True, **kw)
        self.link = FakeLink(self.post_message, sample_sessions() if sessions is None else sessions,
                             SCREENS if screens is None else screens)  # type: ignore[assignment]
        self.model_name = "gpt-test"
        self.notes: list[tuple[str, str]] = []
        if theme:
            self.layout.theme = theme

    def show_notification(self, message: str, *, title: str = "", severity: Any = "information",
                          timeout: float | None = None) -> None:
        self.notes.append((str(severity), message))

    def _tick(self) -> None:  # elapsed times stay put in snapshots
        pass

    async def _poll_status(self) -> None:  # so does the status line, however slow the run
        pass


@dataclass
class Call:
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any


def record_calls(obj: Any, name: str) -> list[Call]:
    """Wrap `obj.name` so each call is made as before and recorded, with what it returned."""
    calls: list[Call] = []
    real = getattr(obj, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls.append(Call(args, kwargs, result))
        return result

    setattr(obj, name, recording)
    return calls
