"""An endpoint nobody listens on, a host that does not exist and a model the server does not
have are one clear line, in the session and in `workbench doctor`, and never retried:
against the fake server on 127.0.0.1 (which counts requests) and a closed port."""

from __future__ import annotations

import asyncio
import errno
import json
import socket
from pathlib import Path
from typing import Any

from tests.agent_support import Factory
from tests.helpers import wait_for
from tests.wb import Wb
from workbench import doctor, paths
from workbench.agent.events import Event, Retrying, StreamError
from workbench.agent.provider_errors import unreachable
from workbench.agent.providers import Provider, ProviderConfig
from workbench.fakes.model_server import Script, Turn

OFF = ("--sandbox", "off")
CONVO: list[Any] = []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stream(cfg: ProviderConfig) -> list[Event]:
    async def go() -> list[Event]:
        p = Provider(cfg)
        try:
            return [ev async for ev in p.stream(CONVO, [])]
        finally:
            await p.close()

    return asyncio.run(go())


def test_refused_and_no_such_host_are_permanent_timeouts_and_resets_are_not() -> None:
    refused = ConnectionError("connect failed")
    refused.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert unreachable(refused) == "connection refused"
    assert unreachable(socket.gaierror(socket.EAI_NONAME, "Name or service not known")) == "no such host"
    assert unreachable(socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")) is None
    assert unreachable(TimeoutError("timed out")) is None
    assert unreachable(ConnectionResetError(errno.ECONNRESET, "reset")) is None


def test_a_closed_port_is_one_line_without_retries() -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}/v1"
    events = stream(ProviderConfig(url, None, "m", "chat", {}, max_retries=4, retry_base_s=5,
                                   sources={"base_url": "--base-url"}))
    assert len(events) == 1 and isinstance(events[0], StreamError) and not events[0].retryable
    assert events[0].message == (f"cannot reach {url}: connection refused — is the server running? "
                                 "check base_url (set by --base-url)")
    assert not any(isinstance(e, Retrying) for e in events)


def test_an_endpoint_that_answered_before_and_now_refuses_is_retried(fake_factory: Factory) -> None:
    # (a local server restarting under a running session)
    fake = fake_factory([Script("", [Turn(text="first")])])

    async def go() -> list[Event]:
        p = Provider(ProviderConfig(fake.base_url, None, "m", "chat", {}, max_retries=1, retry_base_s=0.01))
        try:
            assert [ev async for ev in p.stream(CONVO, [])]
            fake.stop()
            return [ev async for ev in p.stream(CONVO, [])]
        finally:
            await p.close()

    events = asyncio.run(go())
    assert [type(e) for e in events] == [Retrying, StreamError]
    assert isinstance(events[-1], StreamError) and "gave up after 2 attempts" in events[-1].message


def test_unknown_model_is_one_line_naming_where_it_was_set(fake_factory: Factory) -> None:
    fake = fake_factory([], models=["real-model"])
    events = stream(ProviderConfig(fake.base_url, None, "nope", "chat", {}, max_retries=4,
                                   sources={"model": "[providers.local].model in config.toml"}))
    assert len(events) == 1 and isinstance(events[0], StreamError)
    msg = events[0].message
    assert msg.startswith("model 'nope' (set by [providers.local].model in config.toml) is not served by "
                          f"{fake.base_url}") and "does not exist" in msg
    assert len(fake.requests) == 1


def test_session_and_doctor_say_it_once(wb: Wb, repo: Path, fake_factory: Factory) -> None:
    fake = fake_factory([], models=["real-model"])
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    cfg = paths.config_file()
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f'[providers.local]\nbase_url = "{fake.base_url}"\nmodel = "nope"\n\n'
                   f'[providers.good]\nbase_url = "{fake.base_url}"\nmodel = "real-model"\n\n'
                   f'[providers.dead]\nbase_url = "{dead}"\nmodel = "m"\n')
    # a session on a closed port: one error line, no retry
    s1 = wb.new(repo, "--agent", "builtin", "--provider", "dead", "--prompt", "hi", *OFF)
    # a session with a model the server does not have: one request, one line
    s2 = wb.new(repo, "--agent", "builtin", "--provider", "local", "--prompt", "hi", *OFF)
    for sid, want in ((s1, f"cannot reach {dead}: connection refused"), (s2, "model 'nope'")):
        wait_for(lambda sid=sid: wb.session(sid)["state"] == "error", 60, what="the session's error")  # type: ignore[misc]
        log = json.loads(wb.run("log", sid, "--json").stdout)
        errors = [e["data"]["message"] for e in log if e["kind"] == "error"]
        assert len(errors) == 1 and want in errors[0], log
        assert not [e for e in log if e["kind"] == "retry"]
        assert want in (wb.session(sid).get("reason") or "")
    assert len([r for r in fake.requests if r.method == "POST"]) == 1

    checks = {c.name: c for c in doctor.check_models()}
    assert checks["provider good"].status == "ok" and "'real-model' listed" in checks["provider good"].detail
    bad = checks["provider local"]
    assert bad.status == "fail" and "model 'nope'" in bad.detail and "real-model" in bad.fix
    down = checks["provider dead"]
    assert down.status == "fail" and f"cannot reach {dead}: connection refused" in down.detail
    assert "[providers.dead].base_url" in down.detail
    out = wb.run("doctor", check=False)
    assert out.returncode == 1 and "provider dead: cannot reach" in out.stdout


def test_doctor_says_the_key_is_unset_and_how_to_fix_it(wb: Wb) -> None:
    """No API key and no endpoint: one warning line naming `$OPENAI_API_KEY` and the other
    way (a base_url), not a failed request."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "WORKBENCH_BASE_URL"):
        wb.env.pop(name, None)
    out = wb.run("doctor", check=False).stdout
    line = next(ln for ln in out.splitlines() if "model endpoint" in ln)
    assert line.startswith("[warn]") and "$OPENAI_API_KEY unset" in line and "no base_url" in line
    fix = out.splitlines()[out.splitlines().index(line) + 1]
    assert "fix: export OPENAI_API_KEY=" in fix and "base_url" in fix
