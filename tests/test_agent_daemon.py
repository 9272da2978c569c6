"""The built-in agent end to end: the real CLI, a real daemon process, the fake model server
over HTTP, real worktrees (and the real sandbox where bubblewrap works)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.agent_support import CALC, FIX, TEST_CALC, TESTS, Factory, calls, patch, shell
from tests.conftest import make_repo
from tests.helpers import wait_for
from tests.wb import Wb
from workbench.fakes.model_server import FakeOpenAI, Script, Turn

OFF = ("--sandbox", "off")


@pytest.fixture
def calc_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "calc", {"calc.py": CALC, "test_calc.py": TEST_CALC})


def point(wb: Wb, fake: FakeOpenAI, wire: str = "chat") -> None:
    """Aim the (not yet started) daemon at the fake server through its environment."""
    wb.env.update(OPENAI_BASE_URL=fake.base_url, OPENAI_MODEL="fake-model", WORKBENCH_WIRE_API=wire)


def log_of(wb: Wb, sid: str) -> list[dict[str, Any]]:
    return list(json.loads(wb.run("log", sid, "--json").stdout))


def wait_waiting(wb: Wb, sid: str, describe: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        s = wb.session(sid)
        pending = s.get("approval_pending")
        return s if s["state"] == "waiting" and pending and pending["describe"].startswith(describe) else None

    try:
        return wait_for(probe, 15, what=f"approval of {describe!r} in {sid}")
    except AssertionError:
        raise AssertionError(f"{wb.session(sid)}\n{wb.run('log', sid).stdout}") from None


def test_approve_deny_log_usage_and_send(wb: Wb, calc_repo: Path, fake_factory: Factory, isolated_env: Path) -> None:
    fake = fake_factory([Script("fix mean", [
        calls(shell(["cat", "calc.py"]), usage=(1000, 100)),
        calls(patch(FIX), usage=(1200, 50)),
        calls(shell(["rm", "-rf", "."]), usage=(1300, 20)),
        calls(shell(TESTS), usage=(1400, 20)),
        Turn(text="Fixed mean().", usage=(1500, 10)),
        Turn(text="You're welcome."),
    ])])
    (isolated_env / "config" / "workbench" / "config.toml").write_text(
        f'[session]\nprovider = "fake"\n\n[providers.fake]\nbase_url = "{fake.base_url}"\nmodel = "fake-model"\n'
        "price_in_per_million = 1.0\nprice_out_per_million = 10.0\n"
    )
    sid = wb.new(calc_repo, "--agent", "builtin", "--prompt", "fix mean in calc.py", "--approval", "suggest", *OFF)
    s = wait_waiting(wb, sid, "cat calc.py")
    assert s["approval_pending"]["kind"] == "command" and s["model"] == "fake-model" and s["provider"] == "fake"
    assert "approved: cat calc.py" in wb.run("approve", sid).stdout
    s = wait_waiting(wb, sid, "apply_patch")
    assert s["approval_pending"]["kind"] == "patch" and "*** Begin Patch" in s["approval_pending"]["patch"]
    wb.run("approve", sid)
    wait_waiting(wb, sid, "rm -rf .")
    assert "denied" in wb.run("deny", sid, "--reason", "never delete the checkout").stdout
    wait_waiting(wb, sid, "python3 -m unittest")
    wb.run("approve", sid)
    s = wb.wait_state(sid, "review", 15)
    assert s["approval_pending"] is None

    worktree = Path(s["worktree"])
    assert "len(values)\n" in (worktree / "calc.py").read_text()
    assert (calc_repo / "calc.py").read_text() == CALC
    assert s["tokens_in"] == 6400 and s["tokens_out"] == 200
    assert s["cost_usd"] == pytest.approx((6400 * 1 + 200 * 10) / 1e6)
    denied = fake.requests[3].body["messages"][-1]
    assert denied["role"] == "tool" and "never delete the checkout" in denied["content"]

    entries = log_of(wb, sid)
    kinds = [e["kind"] for e in entries]
    for k in ("agent", "user", "assistant", "tool_call", "tool_output", "approval_request", "approval", "usage"):
        assert k in kinds, k
    assert [e["data"]["decision"] for e in entries if e["kind"] == "approval"] == [
        "approve", "approve", "deny", "approve"]
    assert "state" not in kinds and all(e["seq"] > 0 for e in entries)
    text = wb.run("log", sid).stdout
    assert "waiting for approval of a command: cat calc.py" in text
    assert "denied: never delete the checkout" in text and "Fixed mean()." in text

    assert "sent" in wb.run("send", sid, "thanks!").stdout
    wait_for(lambda: len(fake.requests) == 6, 10, what="the follow-up request")
    wb.wait_state(sid, "review", 10)
    last = fake.requests[5].body["messages"]
    assert last[1]["content"] == "fix mean in calc.py" and last[-1] == {"role": "user", "content": "thanks!"}
    assert fake.violations == []


def test_pending_approval_survives_kill_9_and_resume_continues(
    wb: Wb, calc_repo: Path, fake_factory: Factory
) -> None:
    fake = fake_factory([Script("", [calls(shell(["touch", "r.txt"])), Turn(text="done"), Turn(text="more")])])
    point(wb, fake)
    sid = wb.new(calc_repo, "--agent", "builtin", "--prompt", "make r.txt", *OFF)
    before = wait_waiting(wb, sid, "touch r.txt")["approval_pending"]
    pid = wb.daemon_pid()
    assert pid
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
             10, what="the daemon to die")

    s = wb.session(sid)  # starts a new daemon, which resumes the session
    assert wb.daemon_pid() != pid
    assert s["state"] == "waiting" and s["approval_pending"] == before
    wb.run("approve", sid)
    s = wb.wait_state(sid, "review", 10)
    assert (Path(s["worktree"]) / "r.txt").exists()
    assert len(fake.requests) == 2

    wb.run("daemon", "stop")  # a graceful restart keeps the state too
    assert wb.session(sid)["state"] == "review"
    wb.run("send", sid, "anything else?")
    wait_for(lambda: len(fake.requests) == 3, 10, what="the request after the restart")
    users = [m["content"] for m in fake.requests[2].body["messages"] if m["role"] == "user"]
    assert users == ["make r.txt", "anything else?"]
    assert any(m["role"] == "tool" for m in fake.requests[2].body["messages"])
    assert fake.violations == []


def test_interrupt_compact_and_the_responses_api(wb: Wb, calc_repo: Path, fake_factory: Factory) -> None:
    fake = fake_factory([Script("", [
        calls(shell(["sleep", "30"])),
        Turn(text="ok, stopping"),
        Turn(text="SUMMARY NOTE"),
        Turn(text="final"),
    ])])
    point(wb, fake, wire="responses")
    sid = wb.new(calc_repo, "--agent", "builtin", "--prompt", "THE TASK", "--approval", "full-auto", *OFF)
    wait_for(lambda: any(e["kind"] == "tool_call" for e in log_of(wb, sid)), 10, what="the sleep call")
    time.sleep(0.3)
    assert "interrupted" in wb.run("interrupt", sid).stdout
    s = wb.session(sid)
    assert s["state"] == "waiting" and s["turn_active"] is False
    assert "nothing to interrupt" in wb.run("interrupt", sid).stdout
    outputs = [e["data"] for e in log_of(wb, sid) if e["kind"] == "tool_output"]
    assert outputs[-1]["is_error"] and "interrupted" in outputs[-1]["output"]

    wb.run("send", sid, "never mind")
    wait_for(lambda: len(fake.requests) == 2 and not wb.session(sid)["turn_active"], 10, what="the reply")
    out = wb.run("compact", sid).stdout
    assert "context compacted:" in out
    assert any(e["kind"] == "compaction" for e in log_of(wb, sid))
    wb.run("send", sid, "one more")
    wait_for(lambda: len(fake.requests) == 4, 10, what="the request after compaction")
    body = fake.requests[3].body
    assert all(r.path == "/v1/responses" for r in fake.requests)
    users = [i["content"] for i in body["input"] if i.get("role") == "user"]
    assert users[0] == "THE TASK" and "SUMMARY NOTE" in users[-2] and users[-1] == "one more"
    assert fake.violations == []


def test_model_key_stays_out_of_commands(wb: Wb, calc_repo: Path, fake_factory: Factory) -> None:
    fake = fake_factory(
        [Script("", [calls(shell(["bash", "-c", "printenv OPENAI_API_KEY || echo no-key"])), Turn(text="ok")])],
        api_key="sk-test-secret",
    )
    point(wb, fake)
    wb.env["OPENAI_API_KEY"] = "sk-test-secret"
    sid = wb.new(calc_repo, "--agent", "builtin", "--prompt", "show env", "--approval", "full-auto", *OFF)
    # (Not waiting for `running`: the two-turn task may already be `waiting` by then.)
    wait_for(lambda: any(e["kind"] == "tool_output" for e in log_of(wb, sid)), 20, what="the command")
    out = next(e["data"]["output"] for e in log_of(wb, sid) if e["kind"] == "tool_output")
    assert "no-key" in out and "sk-test-secret" not in out
    assert fake.requests[0].headers["authorization"] == "Bearer sk-test-secret"


def _bwrap_ok() -> bool:
    from workbench.core import sandbox_probe

    return sandbox_probe.probe().ok


@pytest.mark.sandbox
@pytest.mark.skipif(not _bwrap_ok(), reason="bubblewrap cannot run here")
def test_commands_run_in_the_workspace_sandbox(wb: Wb, calc_repo: Path, fake_factory: Factory) -> None:
    script = f"printenv WORKBENCH_SANDBOX; touch {calc_repo}/escaped.txt || echo write-refused; touch inside.txt"
    fake = fake_factory([Script("", [
        calls(shell(["bash", "-c", script])), calls(shell(["pwd"], workdir="sub")), Turn(text="ok"),
    ])])
    (calc_repo / "sub").mkdir()
    (calc_repo / "sub" / "keep").write_text("")
    subprocess.run(["git", "add", "-A"], cwd=calc_repo, check=True)
    subprocess.run(["git", "commit", "-qm", "sub"], cwd=calc_repo, check=True)
    point(wb, fake)
    sid = wb.new(calc_repo, "--agent", "builtin", "--prompt", "poke", "--approval", "full-auto")
    s = wb.wait_state(sid, "review", 20)
    outs = [e["data"]["output"] for e in log_of(wb, sid) if e["kind"] == "tool_output"]
    assert "workspace" in outs[0] and "write-refused" in outs[0]
    assert not (calc_repo / "escaped.txt").exists() and (Path(s["worktree"]) / "inside.txt").exists()
    assert outs[1].rstrip().endswith(str(Path(s["worktree"]) / "sub"))


def test_log_follow_pty_send_and_clear_errors(wb: Wb, calc_repo: Path, fake_factory: Factory) -> None:
    fake = fake_factory([Script("", [calls(shell(["touch", "f.txt"])), Turn(text="done")])])
    point(wb, fake)
    sid = wb.new(calc_repo, "--agent", "builtin", "--prompt", "touch f", *OFF)
    wait_waiting(wb, sid, "touch f.txt")
    follow = subprocess.Popen(
        [sys.executable, "-m", "workbench", "log", sid, "--follow"], stdout=subprocess.PIPE, text=True, env=wb.env,
    )
    try:
        assert follow.stdout is not None
        seen: list[str] = []
        for line in follow.stdout:
            seen.append(line)
            if "waiting for approval" in line:
                wb.run("approve", sid)
            if line.startswith("-- review"):
                break
        text = "".join(seen)
        assert "approved" in text and "done" in text
    finally:
        follow.terminate()
        follow.wait(5)

    res = wb.run("approve", sid, check=False)
    assert res.returncode == 2 and "no approval is pending" in res.stderr
    res = wb.run("send", sid, "   ", check=False)
    assert res.returncode == 2 and "empty" in res.stderr

    shell_id = wb.new(calc_repo, *OFF)
    wb.wait_state(shell_id, "running")
    wb.run("send", shell_id, "echo typed-by-send")
    wb.wait_screen(shell_id, "typed-by-send\n")
    for cmd in (("interrupt", shell_id), ("compact", shell_id), ("approve", shell_id)):
        res = wb.run(*cmd, check=False)
        assert res.returncode == 2 and res.stderr.startswith("error:"), cmd


def test_session_without_prompt_idles_until_send(wb: Wb, calc_repo: Path, fake_factory: Factory) -> None:
    fake = fake_factory([Script("hello there", [Turn(text="hi!")])])
    point(wb, fake)
    sid = wb.new(calc_repo, "--agent", "builtin", *OFF)
    wb.run("send", sid, "hello there")  # may arrive while the session is still starting
    wait_for(lambda: any(e["kind"] == "assistant" for e in log_of(wb, sid)), 10, what="the reply")
    assert [e["kind"] for e in log_of(wb, sid)][:2] == ["agent", "user"]
    # The reply is logged a moment before the turn ends and the state turns to waiting.
    wait_for(lambda: wb.session(sid)["state"] == "waiting", 10, what="the session to wait for input")
    assert len(fake.requests) == 1
    assert fake.requests[0].body["messages"][0]["role"] == "system"
