"""Waiting detection end to end: a real daemon runs fake agent CLIs in real PTYs.

Each built-in profile's command is pointed (through config.toml, as a user would) at
tests/fake_agents/fake_agent.py in that CLI's style. The fake works, asks for approval,
writes a file when approved, and reports its finished turn the way the real CLI does.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import sandbox_visible_binds, wait_for
from tests.wb import Wb
from workbench.daemon.client import Client

FAKE = Path(__file__).parent / "fake_agents" / "fake_agent.py"
STYLES = ("codex", "claude", "aider", "opencode", "gemini")


def _argv(*extra: str) -> str:
    return json.dumps([sys.executable, str(FAKE), *extra])


def write_config(env_root: Path, extra: str = "") -> None:
    parts = []
    for style in STYLES:
        parts.append(
            f"[profiles.{style}]\ncommand = {_argv(style)}\nresume = {_argv(style, 'resume')}\n"
            "silence_ms = 400\n"
        )
    parts.append(f"[profiles.oscbot]\ncommand = {_argv('osc')}\nsilence_ms = 400\n")
    cfg = env_root / "config" / "workbench" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    binds = json.dumps(sandbox_visible_binds())
    cfg.write_text(f"[sandbox]\nextra_ro_binds = {binds}\n\n" + "\n".join(parts) + extra)


@pytest.fixture
def agents(isolated_env: Path, wb: Wb, monkeypatch: pytest.MonkeyPatch) -> Wb:
    stamps = isolated_env / "stamps"
    stamps.mkdir()
    monkeypatch.setenv("FAKE_STAMP_DIR", str(stamps))
    monkeypatch.setenv("FAKE_BUSY_S", "0.3")
    wb.env["FAKE_STAMP_DIR"] = str(stamps)
    wb.env["FAKE_BUSY_S"] = "0.3"
    write_config(isolated_env)
    # Started by the CLI, the daemon is not our child (no zombie to wait for at the end).
    wb.run("daemon", "start")
    return wb


def call(method: str, **params: Any) -> Any:
    with Client("test", autostart=False, timeout=30) as c:
        return c.call(method, **params)


def state(sid: str) -> dict[str, Any]:
    return dict(call("get", id=sid))


def wait_state(sid: str, want: str, timeout: float = 10) -> dict[str, Any]:
    def probe() -> dict[str, Any]:
        s = state(sid)
        return s if s["state"] == want else {}

    return wait_for(probe, timeout, what=f"{sid} in state {want} (detections: {detects(sid)})")


def detects(sid: str) -> list[tuple[str, str]]:
    """(to, signal) of every state change the detector made."""
    return [(e["data"]["to"], e["data"]["signal"]) for e in call("events", id=sid)
            if e["kind"] == "detect" and "to" in e["data"] and not e["data"].get("refined")]


def screen(sid: str) -> str:
    return "\n".join(call("screen", id=sid)["lines"])


def new(repo: Path, agent: str, prompt: str = "make the file", sandbox: str = "off") -> dict[str, Any]:
    return dict(call("new", repo=str(repo), agent=agent, prompt=prompt, sandbox=sandbox))


def in_order(seq: list[tuple[str, str]], want: list[tuple[str, str | tuple[str, ...]]]) -> bool:
    """`want` appears in `seq` in order; a tuple of signals accepts any of them."""
    it = iter(seq)
    return all(any(x[0] == to and x[1] in ((sig,) if isinstance(sig, str) else sig) for x in it)
               for to, sig in want)


# profile -> (signal to waiting, signal back to running, signal to review, how to answer)
CASES: dict[str, tuple[str | tuple[str, ...], str, str, str]] = {
    # The title and the prompt land in one redraw or two: either is the right signal.
    "codex": (("title", "pattern:approval"), "answered:approve", "hook:agent-turn-complete", "approve"),
    "claude": ("hook:approval", "answered:approve", "hook:turn-complete", "approve"),
    "aider": ("pattern:approval", "answered:approve", "hook:turn-complete", "approve"),
    "opencode": ("pattern:approval", "pattern:working", "silence", "keys"),
    "gemini": ("pattern:approval", "answered:approve", "pattern:input-box", "approve"),
    "oscbot": ("osc9", "output", "osc9", "keys"),
}


@pytest.mark.parametrize("agent", sorted(CASES))
def test_profile_running_waiting_running_review(agents: Wb, repo: Path, agent: str) -> None:
    to_wait, to_run, to_review, how = CASES[agent]
    s = new(repo, agent, prompt=f"task for {agent}")
    sid, worktree = s["id"], Path(s["worktree"])
    waiting = wait_state(sid, "waiting")
    assert "approval" in waiting["reason"] or "attention" in waiting["reason"]
    # Nothing answers on its own: the prompt stays up and no file appears.
    time.sleep(0.5)
    assert state(sid)["state"] == "waiting"
    assert not (worktree / "fake_output.txt").exists()
    if how == "approve":
        call("approve", id=sid)
    else:
        call("keys", id=sid, text="a" if agent == "opencode" else "y")
    wait_state(sid, "review")
    assert (worktree / "fake_output.txt").read_text() == f"done: task for {agent}\n"
    seq = detects(sid)
    assert in_order(seq, [("waiting", to_wait), ("running", to_run), ("review", to_review)]), seq
    if agent == "aider":  # aider takes its task typed into the chat, not on the command line
        evs = call("events", id=sid)
        assert any(e["kind"] == "detect" and e["data"].get("action") == "typed the prompt" for e in evs)


def test_approval_is_seen_within_a_second(agents: Wb, repo: Path, isolated_env: Path) -> None:
    """Three Codex sessions; each approval prompt turns its session `waiting` fast."""
    sids = [new(repo, "codex", prompt=f"task {i}")["id"] for i in range(3)]
    latencies = []
    for sid in sids:
        s = wait_state(sid, "waiting")
        stamp = isolated_env / "stamps" / f"{s['pid']}-approval"
        wait_for(stamp.exists, 5, what="approval stamp")
        latencies.append(s["state_since"] - float(stamp.read_text()))
    assert max(latencies) < 1.0, latencies
    # Answer them from the list (approve, approve always, deny) and see each one finish.
    call("approve", id=sids[0])
    call("approve", id=sids[1], always=True)
    call("deny", id=sids[2], reason="use a different file name")
    wait_state(sids[0], "review")
    wait_state(sids[1], "review")
    # The denied one made no change: it waits for the next message, which it got.
    wait_for(lambda: "echo: use a different file name" in screen(sids[2]), 10, what="deny reason typed")
    wait_state(sids[2], "waiting")
    assert not (Path(state(sids[2])["worktree"]) / "fake_output.txt").exists()


def test_send_types_message_and_enter(agents: Wb, repo: Path) -> None:
    sid = new(repo, "codex")["id"]
    wait_state(sid, "waiting")
    call("approve", id=sid)
    wait_state(sid, "review")
    n = len(detects(sid))
    call("send", id=sid, text="now add tests")
    wait_for(lambda: "echo: now add tests" in screen(sid), 10, what="echo of the sent text")
    wait_state(sid, "review")
    later = detects(sid)[n:]
    assert ("running", "title") in later or ("running", "pattern:working") in later, later
    # Multi-line: bracketed paste (the fake enables it), one message, then Enter.
    call("send", id=sid, text="line one\nline two")
    wait_for(lambda: "echo: line one | line two" in screen(sid), 10, what="multi-line message")


def test_restart_resumes_in_the_same_worktree(agents: Wb, repo: Path) -> None:
    s = new(repo, "codex")
    sid = s["id"]
    wait_state(sid, "waiting")
    call("approve", id=sid)
    wait_state(sid, "review")
    call("restart", id=sid)
    wait_for(lambda: "resumed the last conversation" in screen(sid), 10, what="resumed screen")
    wait_state(sid, "review")
    # The long path may wrap: compare with the screen's rows joined.
    assert f"cwd {s['worktree']}" in screen(sid).replace("\n", "")
    starts = [e["data"] for e in call("events", id=sid) if e["kind"] == "state" and e["data"].get("argv")]
    assert starts[0]["argv"][-1] == "make the file"
    assert starts[-1]["argv"][-2:] == ["resume", "--dangerously-bypass-hook-trust"]


def test_sessions_resume_after_daemon_kill_9(agents: Wb, repo: Path) -> None:
    sids = [new(repo, "codex", prompt=f"task {i}")["id"] for i in range(3)]
    for sid in sids:
        wait_state(sid, "waiting")
    call("approve", id=sids[0])
    wait_state(sids[0], "review")
    pid = agents.daemon_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
             10, what="daemon gone")
    # A new daemon resumes every profile session that was live.
    agents.run("daemon", "start")
    for sid in sids:
        def resumed(sid: str = sid) -> bool:
            return "resumed the last conversation" in screen(sid)

        wait_for(resumed, 15, what=f"{sid} resumed")
    wait_state(sids[0], "review")
    for sid in sids:
        evs = call("events", id=sid)
        assert any(e["kind"] == "resume" for e in evs)
        starts = [e["data"]["argv"] for e in evs if e["kind"] == "state" and e["data"].get("argv")]
        assert starts[-1][-2:] == ["resume", "--dangerously-bypass-hook-trust"]


def test_auto_answer_only_when_turned_on(agents: Wb, isolated_env: Path, repo: Path) -> None:
    cfg = isolated_env / "config" / "workbench" / "config.toml"
    cfg.write_text(cfg.read_text().replace("[profiles.gemini]\n", "[profiles.gemini]\nauto_answer = true\n"))
    sid = new(repo, "gemini")["id"]
    wait_state(sid, "review")
    evs = call("events", id=sid)
    assert any(e["kind"] == "auto_answer" and e["data"]["decision"] == "approve" for e in evs)
    # Per session, off wins over the profile.
    sid2 = new(repo, "codex")["id"]
    call("auto_answer", id=sid2, enabled=False)
    wait_state(sid2, "waiting")
    time.sleep(0.6)
    assert state(sid2)["state"] == "waiting"
    assert not any(e["kind"] == "auto_answer" for e in call("events", id=sid2))


@pytest.mark.sandbox
def test_hooks_reach_the_daemon_from_inside_the_sandbox(agents: Wb, repo: Path) -> None:
    from workbench.core import sandbox_probe

    if not sandbox_probe.probe().ok:
        pytest.skip(f"bubblewrap cannot run here: {sandbox_probe.probe().reason}")
    cfg_path = Path(os.environ["XDG_CONFIG_HOME"]) / "workbench" / "config.toml"
    # The fake needs no network; the real profile asks for it.
    cfg_path.write_text(cfg_path.read_text().replace("[profiles.codex]\n", "[profiles.codex]\nnetwork = false\n"))
    s = new(repo, "codex", sandbox="workspace")
    sid = s["id"]
    wait_state(sid, "waiting", timeout=15)
    call("approve", id=sid)
    wait_state(sid, "review", timeout=15)
    assert ("review", "hook:agent-turn-complete") in detects(sid)
    # Inside, the channel is at a fixed path; the daemon's socket stays hidden.
    call("keys", id=sid, text="/exit\r")
    wait_state(sid, "stopped")


def test_shell_notification_and_notify_command(agents: Wb, repo: Path) -> None:
    s = new(repo, "shell", prompt="")
    sid = s["id"]
    wait_state(sid, "running")
    wait_for(lambda: "$" in screen(sid) or "#" in screen(sid), 10, what="shell prompt")
    call("keys", id=sid, text=r"printf '\\033]9;need your input\\007'\r")
    wait_state(sid, "waiting")
    assert detects(sid)[-1] == ("waiting", "osc9")
    time.sleep(0.5)  # the detector takes its reference screen just after the signal
    call("keys", id=sid, text=r"echo back to work\r")
    wait_state(sid, "running")
    assert detects(sid)[-1] == ("running", "output")
    # `workbench notify` over the socket (a user's own script, outside any sandbox).
    out = agents.run("notify", sid, "approval", "deploy?").stdout.strip()
    assert out == "waiting"
    assert detects(sid)[-1] == ("waiting", "hook:approval")
    bad = agents.run("notify", sid, "reboot", check=False)
    assert bad.returncode == 2 and "unknown event 'reboot'" in bad.stderr


def test_notify_channel_accepts_only_its_vocabulary(agents: Wb, repo: Path, isolated_env: Path) -> None:
    sid = new(repo, "codex")["id"]
    wait_state(sid, "waiting")
    fifo = isolated_env / "runtime" / "workbench" / "notify" / f"{sid}.fifo"
    assert fifo.exists() and oct(fifo.stat().st_mode & 0o777) == "0o600"
    env = {**agents.env, "WORKBENCH_NOTIFY": str(fifo), "WORKBENCH_SESSION": sid}
    inside = Wb(env)
    inside.run("notify", sid, "running")  # what a hook inside the sandbox runs
    wait_for(lambda: ("running", "hook:running") in detects(sid), 5, what="hook:running")
    with open(fifo, "wb") as f:  # blocking: the daemon drains it while we write
        f.write(b"rm -rf /\n" + b"x" * 70_000 + b"\ncodex {\"no\": 1}\n")
    wait_for(lambda: len([e for e in call("events", id=sid) if e["kind"] == "notify_rejected"]) >= 2, 5,
             what="rejected lines")
    assert state(sid)["state"] in ("running", "waiting")
    diag = call("attention", id=sid)
    assert diag["profile"] == "codex" and diag["hooks_seen"] >= 1


def test_unknown_or_missing_cli_is_a_clear_error(wb: Wb, repo: Path, isolated_env: Path) -> None:
    cfg = isolated_env / "config" / "workbench" / "config.toml"
    cfg.write_text('[profiles.gemini]\ncommand = ["definitely-not-installed-cli"]\n')
    res = wb.run("new", "--repo", str(repo), "--agent", "gemini", "--sandbox", "off", check=False)
    assert res.returncode == 2
    assert "needs `definitely-not-installed-cli`, which is not on PATH" in res.stderr
    assert "npm install -g @google/gemini-cli" in res.stderr
