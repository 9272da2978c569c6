"""The real Codex CLI (npm @openai/codex) in a sandboxed workbench session.

Codex talks to the test suite's fake OpenAI server through a custom model provider
(Responses API, base_url on 127.0.0.1). Inside the sandbox's own network namespace
127.0.0.1 is forwarded to a Unix socket bound in from the host (tests/fake_agents/tcp_bridge.py).
The scripted task asks to run a command with escalated permissions: Codex asks for
approval, workbench sees it, `approve` answers it, Codex writes the file and finishes,
and its hooks tell the daemon the turn is complete. The later tests run Codex against
the product's own bridge (`[sandbox] host_ports`), its sign-in screen and a dead endpoint.

CI installs Codex with: npm install -g @openai/codex@0.169.0
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import sandbox_visible_binds, wait_for
from tests.test_attention import call, detects, in_order, screen, state, wait_state
from tests.wb import Wb
from workbench.errors import WorkbenchError
from workbench.fakes.model_server import FakeOpenAI, Script, ScriptedToolCall, Turn

# The real agent CLIs are heavy: one xdist worker runs them one after another (make test
# distributes with --dist loadgroup).
pytestmark = pytest.mark.xdist_group("real_agent_cli")

CODEX_VERSION = "0.169.0"
BRIDGE = Path(__file__).parent / "fake_agents" / "tcp_bridge.py"
PORT = 18765  # inside the sandbox's private network namespace


def _codex() -> str:
    exe = shutil.which("codex")
    if exe:
        return exe
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed, so the Codex CLI cannot be installed here")
    pytest.fail(f"the Codex CLI is not installed: npm install -g @openai/codex@{CODEX_VERSION}")


class UnixBridge:
    """Host side: accept on a Unix socket, forward each connection to a TCP port."""

    def __init__(self, path: Path, port: int) -> None:
        self.path, self.port = path, port
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            up = socket.create_connection(("127.0.0.1", self.port))
            threading.Thread(target=self._pump, args=(conn, up), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, conn), daemon=True).start()

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    cmd = {
        "cmd": "printf 'hello from codex\\n' > hello.txt",
        "sandbox_permissions": "require_escalated",
        "justification": "Create hello.txt?",
    }
    scripts = [
        # Codex names the thread with a side request; it must not eat the task's turns.
        Script("Generate a concise", [Turn(text="Create hello file")] * 10),
        Script("", [
            Turn(text="I'll create the file.", tool_calls=[ScriptedToolCall("exec_command", json.dumps(cmd))]),
            Turn(text="Created hello.txt."),
        ]),
    ]
    with FakeOpenAI(scripts) as srv:
        yield srv


def test_real_codex_asks_gets_approved_edits_and_finishes(
    wb: Wb, repo: Path, isolated_env: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    codex = _codex()
    from workbench.core import sandbox_probe

    sandboxed = sandbox_probe.probe().ok
    bridge_dir = isolated_env / "bridge"
    bridge_dir.mkdir()
    port = int(fake_openai.base_url.rsplit(":", 1)[1].split("/")[0])
    bridge = UnixBridge(bridge_dir / "api.sock", port)
    try:
        # The user's own Codex config: a custom provider on 127.0.0.1 (Responses API).
        codex_home = isolated_env / "home" / ".codex"
        codex_home.mkdir(parents=True)
        (codex_home / "config.toml").write_text(
            'model = "fake-model"\nmodel_provider = "fake"\n\n'
            "[model_providers.fake]\n"
            f'name = "fake"\nbase_url = "http://127.0.0.1:{PORT}/v1"\n'
            'wire_api = "responses"\nenv_key = "FAKE_CODEX_KEY"\n'
        )
        monkeypatch.setenv("FAKE_CODEX_KEY", "sk-test")
        wb.env["FAKE_CODEX_KEY"] = "sk-test"
        wrap = [sys.executable, str(BRIDGE), str(bridge_dir / "api.sock"), str(PORT), "--", codex]
        cfg = isolated_env / "config" / "workbench" / "config.toml"
        cfg.write_text(
            f"[sandbox]\nextra_rw_binds = [{json.dumps(str(bridge_dir))}]\n"
            f"extra_ro_binds = {json.dumps(sandbox_visible_binds())}\n\n"
            "[profiles.codex]\n"
            f"command = {json.dumps([*wrap, '--no-daemon'])}\n"
            f"resume = {json.dumps([*wrap, '--no-daemon', 'resume', '--last'])}\n"
            "network = false\n"
        )
        wb.run("daemon", "start")
        s = call("new", repo=str(repo), agent="codex", prompt="create hello.txt",
                 sandbox="workspace" if sandboxed else "off")
        sid, worktree = s["id"], Path(s["worktree"])
        waiting = wait_state(sid, "waiting", timeout=30)
        assert waiting["reason"] == "approval requested", waiting
        # The hook may land a moment before Codex draws its prompt.
        wait_for(lambda: "Would you like to run the following command?" in screen(sid), 10, what="prompt drawn")
        assert not (worktree / "hello.txt").exists()
        call("approve", id=sid)
        wait_state(sid, "review", timeout=90)
        assert (worktree / "hello.txt").read_text() == "hello from codex\n"
        # Codex ends a turn twice: its Stop hook and its notify program (agent-turn-complete);
        # whichever lands first is the signal.
        seq = [(st, "hook:turn-complete" if why == "hook:agent-turn-complete" else why) for st, why in detects(sid)]
        # Codex's own hooks are the first signal: PermissionRequest, then Stop.
        # Back to running between them: by our answer or Codex's title, whichever is seen first.
        assert in_order(seq, [("waiting", "hook:approval"), ("review", "hook:turn-complete")]), seq
        assert any(st == "running" and why in ("answered:approve", "title") for st, why in seq), seq
        # A second approve for the same prompt finds nothing to answer.
        with pytest.raises(WorkbenchError, match="no approval is pending"):
            call("approve", id=sid)
        # Codex really talked to the fake through its provider, with our key.
        main = [r for r in fake_openai.requests if r.script == ""]
        assert len(main) >= 2
        assert main[0].headers.get("authorization") == "Bearer sk-test"
        outputs = [i for i in main[-1].body["input"] if i.get("type") == "function_call_output"]
        assert outputs and "exited with code 0" in outputs[0]["output"]
        # Resume after a restart: `codex resume --last` in the same worktree.
        call("restart", id=sid)
        wait_for(lambda: "create hello.txt" in screen(sid), 30, what="resumed conversation on screen")
        starts = [e["data"]["argv"] for e in call("events", id=sid) if e["kind"] == "state" and e["data"].get("argv")]
        assert starts[-1][-3:] == ["resume", "--last", "--dangerously-bypass-hook-trust"]
        assert state(sid)["worktree"] == str(worktree)
    finally:
        bridge.close()


def _codex_session(wb: Wb, repo: Path, isolated_env: Path, user_config: str, sandbox: str = "off") -> str:
    """The real Codex (sandbox off unless asked: neither screen needs it), with this user config.toml."""
    _codex()
    wb.env.pop("OPENAI_API_KEY", None)
    codex_home = isolated_env / "home" / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(user_config)
    wb.run("daemon", "start")
    return str(call("new", repo=str(repo), agent="codex", prompt="hello", sandbox=sandbox)["id"])


def test_real_codex_login_screen_waits_with_the_reason(wb: Wb, repo: Path, isolated_env: Path) -> None:
    """No credentials: Codex shows its sign-in screen, which is `waiting`, not `running`."""
    sid = _codex_session(wb, repo, isolated_env, "")
    waiting = wait_state(sid, "waiting", timeout=30)
    assert waiting["reason"].startswith("codex needs login"), waiting
    assert "Sign in with ChatGPT" in screen(sid)
    assert ("waiting", "pattern:login") in detects(sid)
    with pytest.raises(WorkbenchError, match="not at an approval prompt: codex needs login"):
        call("approve", id=sid)


def test_real_codex_unreachable_endpoint_says_so(wb: Wb, repo: Path, isolated_env: Path) -> None:
    """A model endpoint nobody listens on: Codex sits at "Reconnecting...", the session says why."""
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    wb.env["FAKE_CODEX_KEY"] = "sk-test"
    sid = _codex_session(wb, repo, isolated_env,
                         'model = "fake-model"\nmodel_provider = "fake"\n\n[model_providers.fake]\n'
                         f'name = "fake"\nbase_url = "http://127.0.0.1:{port}/v1"\n'
                         'wire_api = "responses"\nenv_key = "FAKE_CODEX_KEY"\n')
    waiting = wait_state(sid, "waiting", timeout=60)
    assert waiting["reason"].startswith("codex cannot reach its model endpoint"), waiting
    assert "Reconnecting..." in screen(sid)
    assert ("waiting", "pattern:offline") in detects(sid)


@pytest.mark.sandbox
def test_real_codex_in_the_sandbox_reaches_a_host_model_server(
    wb: Wb, repo: Path, isolated_env: Path, fake_openai: FakeOpenAI
) -> None:
    """`[sandbox] host_ports`: the sandboxed Codex, with network, talks to a model server on
    the host's 127.0.0.1 through workbench's own bridge, not a test helper."""
    from workbench.core import sandbox_net, sandbox_probe

    _codex()
    if not sandbox_probe.probe().ok:
        pytest.skip(f"bubblewrap cannot run here: {sandbox_probe.probe().reason}")
    if sandbox_net.network_problem():
        pytest.skip(f"no sandbox network here: {sandbox_net.network_problem()}")
    port = int(fake_openai.base_url.rsplit(":", 1)[1].split("/")[0])
    wb.env["FAKE_CODEX_KEY"] = "sk-test"
    cfg = isolated_env / "config" / "workbench" / "config.toml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f"[sandbox]\nhost_ports = [{port}]\n")
    sid = _codex_session(wb, repo, isolated_env,
                         'model = "fake-model"\nmodel_provider = "fake"\n\n[model_providers.fake]\n'
                         f'name = "fake"\nbase_url = "http://127.0.0.1:{port}/v1"\n'
                         'wire_api = "responses"\nenv_key = "FAKE_CODEX_KEY"\n', sandbox="workspace")
    # Under a loaded CI machine Codex may report its turn state before the approval: wait for
    # the approval itself (the bound only catches a hang).
    wait_for(lambda: state(sid)["reason"] == "approval requested", 90,
             what=f"the approval in {sid} (detections: {detects(sid)})")
    assert state(sid)["sandbox"] == "workspace"
    assert [r for r in fake_openai.requests if r.script == ""], "Codex never reached the server"
