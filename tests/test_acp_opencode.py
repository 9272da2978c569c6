"""The real opencode (`opencode acp`, npm opencode-ai) as an ACP session against the suite's
fake OpenAI-compatible server (chat completions on 127.0.0.1, through opencode's
`@ai-sdk/openai-compatible` provider configured in the session's project config).

Skipped where opencode is not installed (npm install -g opencode-ai); opencode fetches its
provider package from the npm registry on first use, so the first run needs the network.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_repo
from tests.helpers import wait_for
from tests.test_acp_sessions import log_of, wait_approval, wait_state
from tests.wb import Wb
from workbench.fakes.model_server import FakeOpenAI, Script, ScriptedToolCall, Turn

pytestmark = pytest.mark.xdist_group("real_agent_cli")  # one worker runs the real CLIs in turn


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    write = {"filePath": "hello.txt", "content": "hello from opencode\n"}
    scripts = [
        Script("Generate a title", [Turn(text="Create hello file")] * 10),
        Script("", [
            Turn(text="I'll create the file.", tool_calls=[ScriptedToolCall("write", json.dumps(write))]),
            Turn(text="Created hello.txt."),
        ] + [Turn(text="Done.")] * 5),
    ]
    with FakeOpenAI(scripts) as srv:
        yield srv


def _session(wb: Wb, tmp_path: Path, fake_openai: FakeOpenAI) -> str:
    exe = shutil.which("opencode")
    if exe is None:
        pytest.skip("opencode is not installed (npm install -g opencode-ai)")
    try:
        socket.create_connection(("registry.npmjs.org", 443), timeout=5).close()
    except OSError:
        pytest.skip("opencode fetches its provider package from registry.npmjs.org on first use; not reachable here")
    config = {
        "$schema": "https://opencode.ai/config.json",
        "provider": {"fake": {"npm": "@ai-sdk/openai-compatible", "name": "fake",
                              "options": {"baseURL": fake_openai.base_url, "apiKey": "sk-test"},
                              "models": {"fake-model": {"name": "fake-model"}}}},
        "model": "fake/fake-model",
        "small_model": "fake/fake-model",
        "permission": {"edit": "ask", "bash": "ask"},
    }
    repo = make_repo(tmp_path / "oc", {"opencode.json": json.dumps(config, indent=1)})
    return wb.new(repo, "--agent", f"acp:{exe} acp", "--prompt", "create hello.txt", "--sandbox", "off")


def test_opencode_acp_asks_is_approved_and_edits(wb: Wb, tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    sid = _session(wb, tmp_path, fake_openai)
    s = wait_approval(wb, sid)
    assert not (Path(s["worktree"]) / "hello.txt").exists()
    wb.run("approve", sid)
    s = wait_state(wb, sid, "review", timeout=60)
    assert (Path(s["worktree"]) / "hello.txt").read_text() == "hello from opencode\n"
    assert "+hello from opencode" in wb.run("diff", sid).stdout
    kinds = [e["kind"] for e in log_of(wb, sid)]
    assert "tool_call" in kinds and "stop" in kinds, kinds


def test_opencode_acp_deny_sends_the_reason(wb: Wb, tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    sid = _session(wb, tmp_path, fake_openai)
    wait_approval(wb, sid)
    wb.run("deny", sid, "--reason", "call it greeting.txt instead")
    wait_for(lambda: any("call it greeting.txt instead" in json.dumps(r.body) for r in fake_openai.requests),
             60, what="the deny reason at the model")
    s = wait_state(wb, sid, "waiting", "review", timeout=60)
    assert not (Path(s["worktree"]) / "hello.txt").exists()
