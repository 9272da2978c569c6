"""Fault injection for the built-in agent: the model endpoint failing
(429, 500, garbage, a cut stream, nothing for minutes) and kill -9 of the daemon during a
model stream and around an apply_patch. A real daemon talks to a FakeOpenAI over HTTP.

For each: no data is lost (the transcript and the worktree are what happened), the state
shown is true, and the user can carry on (`send` gets an answer).
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

from tests.hardening_support import (
    builtin_config,
    kill9_daemon,
    log_entries,
    session,
    wait_log,
    wait_session,
)
from tests.helpers import wait_for
from tests.wb import Wb
from workbench.fakes.model_server import FakeOpenAI, Fault, Script, ScriptedToolCall, Turn

OFF = ("--sandbox", "off")


def _new(wb: Wb, repo: Path, name: str, prompt: str, *args: str) -> str:
    return wb.new(repo, "--agent", "builtin", *OFF, "--name", name, "--prompt", prompt, *args)


def _texts(sid: str, kind: str = "assistant") -> list[str]:
    return [str(e["data"].get("text") or e["data"].get("message") or "") for e in log_entries(sid) if e["kind"] == kind]


def _answered(sid: str, word: str) -> bool:
    return any(word in t for t in _texts(sid))


def _idle(s: dict[str, Any]) -> bool:
    return not s.get("turn_active") and s["state"] in ("running", "review", "waiting", "error")


def _carry_on(wb: Wb, sid: str, expect: str) -> None:
    wb.run("send", sid, "please continue")
    wait_for(lambda: any(expect in t for t in _texts(sid)), 30, interval=0.1, what=f"{expect!r} after send")


# --------------------------------------------------------------------------- the model endpoint


def test_model_endpoint_faults_are_retried_or_reported(wb: Wb, repo: Path) -> None:
    """One fault each, then a good answer: retried with a `retry` entry and finished. A fault
    that does not go away: an error state that says why; `send` later carries on."""
    scripts = [
        Script("fault-429", [Turn(text="ok after 429", error=Fault("status", status=429, retry_after_ms=200))]),
        Script("fault-500", [Turn(text="ok after 500", error=Fault("status", status=500))]),
        Script("fault-garbage", [Turn(text="ok after garbage", error=Fault("garbage"))]),
        Script("fault-cut", [Turn(text="ok after a cut " + "x" * 200, error=Fault("cut"))]),
        Script("fault-hang", [Turn(text="ok after a hang", error=Fault("hang", delay_s=120))]),
        Script("fault-forever", [Turn(text="ok at last", error=Fault("status", status=503, times=2)),
                                 Turn(text="ok at last")]),
    ]
    with FakeOpenAI(scripts) as fake:
        # timeout_s 2: "nothing for minutes" becomes nothing for 2 s; one retry per request.
        builtin_config(fake.base_url, timeout_s=2, max_retries=1)
        ids = {kind: _new(wb, repo, kind, f"please {kind}") for kind in ("fault-429", "fault-500", "fault-garbage",
                                                                         "fault-cut", "fault-hang", "fault-forever")}
        for kind in ("fault-429", "fault-500", "fault-garbage", "fault-cut", "fault-hang"):
            sid = ids[kind]
            wait_for(partial(_answered, sid, kind.split("-")[1]), 40, interval=0.2, what=f"the answer after {kind}")
            kinds = [e["kind"] for e in log_entries(sid)]
            assert "retry" in kinds and "error" not in kinds, (kind, kinds)
            retry = next(e for e in log_entries(sid) if e["kind"] == "retry")["data"]
            assert retry["attempt"] == 1 and retry["reason"], retry
            s = wait_session(sid, _idle, 10)
            assert s["state"] != "error", s
        # The fault that outlasts the retries: the session says what failed and can go on.
        sid = ids["fault-forever"]
        s = wait_session(sid, lambda s: s["state"] == "error", 40, what="the error state")
        assert "503" in s["reason"] or "503" in json.dumps(_texts(sid, "error")), s["reason"]
        assert _texts(sid, "user") == ["please fault-forever"]  # the message is kept
        _carry_on(wb, sid, "ok at last")
        assert session(sid)["state"] != "error"


# --------------------------------------------------------------------------- kill -9 of the daemon


def test_kill9_during_a_model_stream(wb: Wb, repo: Path) -> None:
    slow = Turn(text="streaming slowly " * 30, chunk_delay_s=0.1)
    scripts = [Script("stream", [slow, Turn(text="answer after restart")])]
    with FakeOpenAI(scripts) as fake:
        builtin_config(fake.base_url)
        sid = _new(wb, repo, "streamer", "stream a long answer")
        from workbench.daemon.client import Client

        with Client("watch") as c:
            c.call("subscribe", ids=[sid])
            while True:
                ev = c.next_event(timeout=20)
                assert ev is not None, "no delta arrived"
                if ev["event"] == "delta":
                    break
        dpid = kill9_daemon(wb)
        # The next command starts a new daemon; the session comes back from the store.
        s = session(sid)
        assert wb.daemon_pid() != dpid
        assert _texts(sid, "user") == ["stream a long answer"]
        s = wait_session(sid, _idle, 20, what="the resumed session to settle")
        assert s["state"] in ("waiting", "review"), s
        kinds = [e["kind"] for e in log_entries(sid)]
        assert "interrupted" in kinds, kinds  # the transcript says the turn was cut
        assert not any("streaming slowly" in t for t in _texts(sid))  # no half answer passed off as whole
        _carry_on(wb, sid, "answer after restart")
        assert wait_session(sid, _idle, 20)["state"] in ("waiting", "review")


def _patch(n: int) -> str:
    body = "".join(f"*** Add File: gen/f{i:03}.txt\n+file {i}\n+{'y' * 200}\n" for i in range(n))
    return "*** Begin Patch\n" + body + "*** End Patch\n"


def test_kill9_with_an_apply_patch_waiting_for_approval(wb: Wb, repo: Path) -> None:
    call = ScriptedToolCall("apply_patch", json.dumps({"input": _patch(3)}))
    scripts = [Script("patch", [Turn(text="I will add files", tool_calls=[call]), Turn(text="files added")])]
    with FakeOpenAI(scripts) as fake:
        builtin_config(fake.base_url)
        sid = _new(wb, repo, "patcher", "patch please", "--approval", "suggest")
        s = wait_session(sid, lambda s: s["state"] == "waiting" and s.get("approval_pending"), 30)
        assert s["approval_pending"]["kind"] == "patch"
        wt = Path(s["worktree"])
        kill9_daemon(wb)
        # After the crash the approval is still pending, nothing was applied, and it can be answered.
        s = wait_session(sid, lambda s: s.get("approval_pending") is not None, 20, what="the pending approval")
        assert s["state"] == "waiting" and not (wt / "gen").exists()
        wb.run("approve", sid)
        wait_log(sid, lambda es: any("files added" in str(e["data"].get("text")) for e in es), 30)
        assert sorted(p.name for p in (wt / "gen").iterdir()) == ["f000.txt", "f001.txt", "f002.txt"]
        assert wait_session(sid, _idle, 20)["state"] == "review"


def test_kill9_while_an_apply_patch_is_being_applied(wb: Wb, repo: Path) -> None:
    """full-auto, a patch of 400 files, the daemon killed as soon as the first file lands."""
    n = 400
    call = ScriptedToolCall("apply_patch", json.dumps({"input": _patch(n)}))
    scripts = [Script("big", [Turn(text="adding", tool_calls=[call]), Turn(text="after the crash")])]
    with FakeOpenAI(scripts) as fake:
        builtin_config(fake.base_url)
        sid = _new(wb, repo, "big-patch", "big patch", "--approval", "full-auto")
        wt = Path(session(sid)["worktree"])
        wait_for(lambda: (wt / "gen").is_dir() and any((wt / "gen").iterdir()), 30, interval=0.005,
                 what="the first file of the patch")
        kill9_daemon(wb)
        entries = sorted((wt / "gen").iterdir())
        # Whatever landed is whole (each file is written to a temporary and renamed); a write
        # cut by the kill leaves only its `.NAME.wb-patch-PID.tmp`, never a half file.
        temps = [p for p in entries if p.name.startswith(".") and p.name.endswith(".tmp")]
        written = [p for p in entries if p not in temps]
        assert len(temps) <= 1 and all(".wb-patch-" in p.name for p in temps), temps
        for p in written:
            i = int(p.name[1:4])
            assert p.read_text() == f"file {i}\n{'y' * 200}\n", p
        s = wait_session(sid, _idle, 20, what="the resumed session")
        # The diff shows exactly what is in the worktree (the state shown is true).
        stat = json.loads(wb.run("diff", sid, "--stat", "--json").stdout)["stat"]
        assert not any(t.exists() for t in temps)  # the killed write's temporary is cleaned up on resume
        assert stat["files"] == len(list((wt / "gen").iterdir()))
        kinds = [e["kind"] for e in log_entries(sid)]
        assert "tool_call" in kinds
        if len(written) < n and s["state"] != "waiting":
            # The model is told the call was cut by a restart, and the user can carry on.
            _carry_on(wb, sid, "after the crash")


def test_kill9_keeps_messages_queued_behind_an_approval(wb: Wb, repo: Path) -> None:
    """Messages sent while the agent waits for approval survive kill -9 (they are stored)."""
    call = ScriptedToolCall("shell", json.dumps({"command": ["echo", "hi"]}))
    scripts = [Script("queue", [Turn(text="run it?", tool_calls=[call]), Turn(text="got your note")])]
    with FakeOpenAI(scripts) as fake:
        builtin_config(fake.base_url)
        sid = _new(wb, repo, "queued", "queue test", "--approval", "suggest")
        wait_session(sid, lambda s: s["state"] == "waiting", 30)
        wb.run("send", sid, "a note for later")
        kill9_daemon(wb)
        wait_session(sid, lambda s: s["state"] == "waiting", 20, what="waiting again after the crash")
        assert "a note for later" in _texts(sid, "user")
        wb.run("deny", sid, "--reason", "not now")
        wait_log(sid, lambda es: any("got your note" in str(e["data"].get("text")) for e in es), 30)
        approvals = [e["data"] for e in log_entries(sid) if e["kind"] == "approval"]
        assert approvals and approvals[-1]["decision"] == "deny" and approvals[-1]["reason"] == "not now"


def test_a_temporary_left_by_a_killed_apply_patch_is_cleaned_up(wb: Wb, repo: Path) -> None:
    scripts = [Script("", [Turn(text="hello")])]
    with FakeOpenAI(scripts) as fake:
        builtin_config(fake.base_url)
        sid = _new(wb, repo, "leftover", "hi")
        wt = Path(wait_session(sid, _idle, 30)["worktree"])
        dpid = kill9_daemon(wb)
        stale = wt / f".notes.txt.wb-patch-{dpid}.tmp"  # what the killed daemon left mid-write
        stale.write_text("partial")
        wait_session(sid, _idle, 20)
        stat = json.loads(wb.run("diff", sid, "--stat", "--json").stdout)
        assert not stale.exists() and stat["stat"]["files"] == 0, stat
