"""The real codex-acp (npm @zed-industries/codex-acp) as an ACP session against the suite's
fake OpenAI server (Responses API on 127.0.0.1, `-c model_provider=...` overrides): its
permission request makes the session wait, approve runs the command, the edit is in the diff.

CI installs it with: npm install -g @zed-industries/codex-acp@0.16.0
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_for
from tests.test_acp_sessions import log_of, wait_approval, wait_state
from tests.wb import Wb
from workbench.core.models import IDLE_REASON
from workbench.fakes.model_server import FakeOpenAI, Script, ScriptedToolCall, Turn

pytestmark = pytest.mark.xdist_group("real_agent_cli")  # one worker runs the real CLIs in turn


def _codex_acp() -> str:
    exe = shutil.which("codex-acp")
    if exe is None:
        pytest.skip("codex-acp is not installed (npm install -g @zed-industries/codex-acp@0.16.0; "
                    "it needs the npm registry once, then runs offline)")
    return exe


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    cmd = {
        "cmd": "printf 'hello from codex-acp\\n' > hello.txt",
        "sandbox_permissions": "require_escalated",
        "justification": "Create hello.txt?",
    }
    scripts = [
        Script("Generate a concise", [Turn(text="Create hello file")] * 10),
        Script("", [
            Turn(text="I'll create the file.", tool_calls=[ScriptedToolCall("exec_command", json.dumps(cmd))]),
            Turn(text="Created hello.txt."),
            Turn(text="Understood."),
        ]),
    ]
    with FakeOpenAI(scripts) as srv:
        yield srv


def _agent(exe: str, base_url: str) -> str:
    overrides = {
        "model": '"fake-model"', "model_provider": '"fake"', "model_providers.fake.name": '"fake"',
        "model_providers.fake.base_url": json.dumps(base_url), "model_providers.fake.wire_api": '"responses"',
        "model_providers.fake.env_key": '"FAKE_CODEX_KEY"',
    }
    args = " ".join(f"-c '{k}={v}'" for k, v in overrides.items())
    return f"acp:{exe} {args}"


def test_codex_acp_asks_is_approved_and_edits(wb: Wb, repo: Path, fake_openai: FakeOpenAI) -> None:
    exe = _codex_acp()
    wb.env["FAKE_CODEX_KEY"] = "sk-test"
    sid = wb.new(repo, "--agent", _agent(exe, fake_openai.base_url), "--prompt", "create hello.txt",
                 "--sandbox", "off")
    s = wait_approval(wb, sid)
    assert not (Path(s["worktree"]) / "hello.txt").exists()
    wb.run("approve", sid)
    s = wait_state(wb, sid, "review", timeout=60)
    assert (Path(s["worktree"]) / "hello.txt").read_text() == "hello from codex-acp\n"
    assert "+hello from codex-acp" in wb.run("diff", sid).stdout
    kinds = [e["kind"] for e in log_of(wb, sid)]
    assert "tool_call" in kinds and "assistant" in kinds and "stop" in kinds, kinds


def test_codex_acp_deny_sends_the_reason(wb: Wb, repo: Path, fake_openai: FakeOpenAI) -> None:
    exe = _codex_acp()
    wb.env["FAKE_CODEX_KEY"] = "sk-test"
    sid = wb.new(repo, "--agent", _agent(exe, fake_openai.base_url), "--prompt", "create hello.txt",
                 "--sandbox", "off")
    s = wait_approval(wb, sid)
    wb.run("deny", sid, "--reason", "call it greeting.txt instead")
    wait_for(lambda: any("call it greeting.txt instead" in json.dumps(r.body) for r in fake_openai.requests),
             60, what="the deny reason at the model")
    s = wait_state(wb, sid, "waiting", timeout=60)
    assert s["reason"] == IDLE_REASON
    assert not (Path(s["worktree"]) / "hello.txt").exists()
    users = [e["data"]["text"] for e in log_of(wb, sid) if e["kind"] == "user"]
    assert users[-1] == "call it greeting.txt instead"


def test_codex_profile_starts_in_the_real_sandbox(wb: Wb, repo: Path, needs_bwrap: None) -> None:
    """`acp:codex` names the profile; the handshake runs in bwrap. Without a login (this test's
    HOME has none) codex-acp refuses session/new: the session is `error` saying so."""
    _codex_acp()
    sid = wb.new(repo, "--agent", "acp:codex")
    s = wait_state(wb, sid, "waiting", "error", timeout=60)
    assert s["state"] == "waiting" or "Authentication required" in s["reason"], s["reason"]
    agent = next(e["data"] for e in log_of(wb, sid) if e["kind"] == "agent")
    assert agent["command"] == ["codex-acp"] and agent["sandbox"] == "workspace"
