"""ACP sessions end to end: the real CLI and daemon drive a small ACP agent of our own
(tests/fake_agents/acp_agent.py, on the SDK's agent side) over its stdio."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_repo
from tests.helpers import wait_for
from tests.wb import Wb
from workbench.core.models import IDLE_REASON
from workbench.profiles.acp import PROFILES

AGENT = Path(__file__).parent / "fake_agents" / "acp_agent.py"
OFF = ("--sandbox", "off")


def acp(*flags: str) -> str:
    return "acp:" + " ".join([sys.executable, str(AGENT), *flags])


@pytest.fixture
def acp_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "proj", {"README.md": "hello\n"})


@pytest.fixture
def state(wb: Wb, tmp_path: Path) -> Path:
    d = tmp_path / "acp-state"
    d.mkdir()
    wb.env["ACP_FAKE_STATE"] = str(d)
    return d


def log_of(wb: Wb, sid: str) -> list[dict[str, Any]]:
    return list(json.loads(wb.run("log", sid, "--json").stdout))


def texts(wb: Wb, sid: str, kind: str = "assistant") -> list[str]:
    return [str(e["data"].get("text") or e["data"].get("reason") or e["data"].get("message") or "")
            for e in log_of(wb, sid) if e["kind"] == kind]


def wait_text(wb: Wb, sid: str, text: str, kind: str = "assistant", timeout: float = 20) -> None:
    def probe() -> bool:
        return any(text in t for t in texts(wb, sid, kind))

    try:
        wait_for(probe, timeout, what=f"{kind} {text!r} in {sid}")
    except AssertionError:
        raise AssertionError(f"{wb.session(sid)}\n{wb.run('log', sid).stdout}") from None


def wait_approval(wb: Wb, sid: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        s = wb.session(sid)
        return s if s["state"] == "waiting" and s.get("approval_pending") else None

    try:
        return wait_for(probe, 60, what=f"approval in {sid}")
    except AssertionError:
        raise AssertionError(f"{wb.session(sid)}\n{wb.run('log', sid).stdout}") from None


def wait_state(wb: Wb, sid: str, *states: str, timeout: float = 20) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        s = wb.session(sid)
        return s if s["state"] in states else None

    try:
        return wait_for(probe, timeout, what=f"state {states} of {sid}")
    except AssertionError:
        raise AssertionError(f"{wb.session(sid)}\n{wb.run('log', sid).stdout}") from None


def test_permission_approve_writes_the_file_and_it_is_in_the_diff(wb: Wb, acp_repo: Path, state: Path) -> None:
    sid = wb.new(acp_repo, "--agent", acp(), "--prompt", "write notes.txt first note", *OFF)
    s = wait_approval(wb, sid)
    assert s["transcript"] is True
    pending = s["approval_pending"]
    assert pending["kind"] == "patch" and pending["describe"] == "Write notes.txt"
    assert "+first note" in pending["patch"]
    assert not (Path(s["worktree"]) / "notes.txt").exists()
    wb.run("approve", sid)
    wait_text(wb, sid, "wrote notes.txt (yes)")
    s = wait_state(wb, sid, "review")
    assert (Path(s["worktree"]) / "notes.txt").read_text() == "first note\n"
    assert "+first note" in wb.run("diff", sid).stdout
    kinds = [e["kind"] for e in log_of(wb, sid)]
    for kind in ("agent", "user", "plan", "thought", "assistant", "tool_call", "approval_request", "approval",
                 "tool_output", "usage", "stop"):
        assert kind in kinds, (kind, kinds)
    entries = log_of(wb, sid)
    call = next(e["data"] for e in entries if e["kind"] == "tool_call")
    assert call["diff"][0]["new_text"] == "first note\n" and call["locations"][0]["path"].endswith("notes.txt")
    plan = next(e["data"] for e in entries if e["kind"] == "plan")
    assert plan["steps"][0] == {"step": "write notes.txt", "status": "in_progress", "priority": "medium"}
    assert next(e["data"] for e in entries if e["kind"] == "stop")["stop_reason"] == "end_turn"
    assert wb.session(sid)["tokens_in"] == 10


def test_deny_sends_the_reason_as_the_next_prompt(wb: Wb, acp_repo: Path, state: Path) -> None:
    sid = wb.new(acp_repo, "--agent", acp(), "--prompt", "write x.txt nope", *OFF)
    wait_approval(wb, sid)
    wb.run("deny", sid, "--reason", "use y.txt instead")
    wait_text(wb, sid, "not writing x.txt")
    wait_text(wb, sid, "use y.txt instead", kind="user")
    wait_text(wb, sid, "echo: use y.txt instead")
    s = wait_state(wb, sid, "waiting")  # idle between turns, as the built-in agent
    assert s["reason"] == IDLE_REASON
    assert not (Path(s["worktree"]) / "x.txt").exists()
    assert s["approval_pending"] is None


def test_send_interrupt_and_restart_loads_the_session(wb: Wb, acp_repo: Path, state: Path) -> None:
    sid = wb.new(acp_repo, "--agent", acp(), "--prompt", "hello there", *OFF)
    wait_text(wb, sid, "echo: hello there")
    wb.run("send", sid, "wait")
    wait_for(lambda: wb.session(sid)["turn_active"], 20, what="the turn")
    time.sleep(0.5)  # the agent is inside its turn, streaming
    assert "interrupted" in wb.run("interrupt", sid).stdout
    wait_text(wb, sid, "waiting for cancel")
    wait_text(wb, sid, "interrupted by the user", kind="interrupted")
    stops = [e["data"]["stop_reason"] for e in log_of(wb, sid) if e["kind"] == "stop"]
    assert stops[-1] == "cancelled"
    wb.run("restart", sid)
    wait_state(wb, sid, "waiting")
    entries = log_of(wb, sid)
    assert any(e["kind"] == "resumed" for e in entries), entries
    # The replayed conversation is not recorded twice.
    assert not any("(earlier)" in str(e["data"].get("text", "")) for e in entries)
    wb.run("send", sid, "after restart")
    wait_text(wb, sid, "echo: after restart")


def test_restart_without_load_says_the_conversation_is_new(wb: Wb, acp_repo: Path, state: Path) -> None:
    sid = wb.new(acp_repo, "--agent", acp("--no-load"), "--prompt", "hi", *OFF)
    wait_text(wb, sid, "echo: hi")
    wb.run("restart", sid)
    wait_text(wb, sid, "cannot load a session", kind="interrupted")


def test_agent_dying_mid_turn_is_an_error_with_its_last_words(wb: Wb, acp_repo: Path, state: Path) -> None:
    sid = wb.new(acp_repo, "--agent", acp(), "--prompt", "die", *OFF)
    s = wait_state(wb, sid, "error")
    assert "exited with code 3" in s["reason"] and "dying on purpose" in s["reason"], s["reason"]
    wait_text(wb, sid, "about to die")
    assert any("exited with code 3" in e["data"]["message"] for e in log_of(wb, sid) if e["kind"] == "error")


def test_malformed_message_is_an_error(wb: Wb, acp_repo: Path, state: Path) -> None:
    sid = wb.new(acp_repo, "--agent", acp(), "--prompt", "garbage", *OFF)
    s = wait_state(wb, sid, "error")
    assert "malformed message" in s["reason"] and "this is not json" in s["reason"], s["reason"]
    assert not s["alive"]


def test_paths_outside_the_worktree_are_refused(wb: Wb, acp_repo: Path, state: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret\n")
    sid = wb.new(acp_repo, "--agent", acp(), "--prompt", f"read {secret}", *OFF)
    wait_text(wb, sid, "read failed")
    assert not any("top secret" in t for t in texts(wb, sid))
    wb.run("send", sid, f"put {tmp_path / 'evil.txt'} pwned")
    wait_text(wb, sid, "put failed")
    assert not (tmp_path / "evil.txt").exists()
    wb.run("send", sid, "put ../escape.txt pwned")
    wait_for(lambda: len([t for t in texts(wb, sid) if "put failed" in t]) == 2, 20, what="the ../ refusal")
    wb.run("send", sid, "read .git/config")
    wait_for(lambda: len([t for t in texts(wb, sid) if "read failed" in t]) == 2, 20, what="the .git refusal")
    wb.run("send", sid, "read README.md")
    wait_text(wb, sid, "read: hello")
    assert not (Path(wb.session(sid)["worktree"]).parent / "escape.txt").exists()


def test_missing_agent_command_is_a_clear_error(wb: Wb, acp_repo: Path) -> None:
    sid = wb.new(acp_repo, "--agent", "acp:no-such-acp-agent --flag", *OFF)
    s = wait_state(wb, sid, "error")
    assert "not installed" in s["reason"]
    missing = [p for p in PROFILES.values() if shutil.which(p.argv[0]) is None]
    if not missing:
        return  # every profile's agent is installed here: no install hint to show
    sid = wb.new(acp_repo, "--agent", f"acp:{missing[0].name}", *OFF)
    s = wait_state(wb, sid, "error")
    assert f"install it: {missing[0].install_hint}" in s["reason"], s["reason"]


def test_sandboxed_session_serves_files_and_terminals_inside_the_sandbox(
    wb: Wb, acp_repo: Path, needs_bwrap: None, tmp_path: Path
) -> None:
    wb.env["ACP_FAKE_STATE"] = "/tmp"
    sid = wb.new(acp_repo, "--agent", acp(), "--prompt", "write inside.txt boxed")
    wait_approval(wb, sid)
    wb.run("approve", sid, "--always")
    wait_text(wb, sid, "wrote inside.txt (always)")
    s = wait_state(wb, sid, "review")
    assert (Path(s["worktree"]) / "inside.txt").read_text() == "boxed\n"
    wb.run("send", sid, f"run echo hi from $WORKBENCH_SESSION; cat {tmp_path / 'outside.txt'}")
    (tmp_path / "outside.txt").write_text("host file\n")
    wait_text(wb, sid, "hi from " + sid)
    assert not any("host file" in t for t in texts(wb, sid))


def test_doctor_lists_acp_profiles_with_install_hints(wb: Wb) -> None:
    out = wb.run("doctor", check=False).stdout
    for name, hint in (("gemini", "@google/gemini-cli"), ("codex", "@zed-industries/codex-acp"),
                       ("claude", "@zed-industries/claude-agent-acp"), ("opencode", "opencode"), ("goose", "goose")):
        line = next(ln for ln in out.splitlines() if f"acp agent {name}:" in ln)
        assert "install:" not in line or hint in line, line


def test_daemon_restart_resumes_the_acp_session(wb: Wb, acp_repo: Path, state: Path) -> None:
    sid = wb.new(acp_repo, "--agent", acp(), "--prompt", "before the restart", *OFF)
    wait_text(wb, sid, "echo: before the restart")
    wb.stop()
    s = wait_state(wb, sid, "waiting")  # `ls` starts the daemon again, which relaunches the session
    assert s["alive"] and s["transcript"]
    wait_for(lambda: any(e["kind"] == "resumed" for e in log_of(wb, sid)), 20, what="session/load")
    wb.run("send", sid, "after the daemon restart")
    wait_text(wb, sid, "echo: after the daemon restart")
