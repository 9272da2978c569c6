"""The built-in agent on servers people run themselves, end to end: the real CLI, a real
daemon process, the fake model server switched to act as one (streamed tools refused, no
Responses API, streams cut under concurrency), providers chosen per session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.agent_support import CALC, FIX, TEST_CALC, TESTS, Factory, calls, patch, shell
from tests.conftest import make_repo
from tests.helpers import wait_for
from tests.wb import Wb
from workbench.fakes.model_server import STREAMED_TOOLS_REFUSAL, FakeOpenAI, Script, Turn

OFF = ("--sandbox", "off")
AUTO = ("--agent", "builtin", "--approval", "full-auto", *OFF)
IDLE = "idle: waiting for your next message"


@pytest.fixture
def calc_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "calc", {"calc.py": CALC, "test_calc.py": TEST_CALC})


def fix_task(text: str = "Fixed mean().") -> list[Turn]:
    return [calls(patch(FIX)), calls(shell(TESTS)), Turn(text=text)]


def log_of(wb: Wb, sid: str) -> list[dict[str, Any]]:
    return list(json.loads(wb.run("log", sid, "--json").stdout))


def settled(wb: Wb, sid: str, state: str, timeout: float = 20) -> dict[str, Any]:
    """The session once it reached `state` with no turn running."""

    def probe() -> dict[str, Any] | None:
        s = wb.session(sid)
        return s if s["state"] == state and not s.get("turn_active") else None

    try:
        return wait_for(probe, timeout, what=f"{sid} to settle in {state}")
    except AssertionError:
        raise AssertionError(f"{wb.session(sid)}\n{wb.run('log', sid).stdout}") from None


def config_toml(wb: Wb, text: str) -> None:
    (Path(wb.env["XDG_CONFIG_HOME"]) / "workbench" / "config.toml").write_text(text)


def provider_table(name: str, fake: FakeOpenAI, model: str = "fake-model", extra: str = "") -> str:
    return f'[providers.{name}]\nbase_url = "{fake.base_url}"\nmodel = "{model}"\n{extra}\n'


def test_a_task_runs_to_review_on_a_server_that_refuses_streamed_tools(
    wb: Wb, calc_repo: Path, fake_factory: Factory
) -> None:
    fake = fake_factory([Script("fix mean", fix_task()), Script("second", [Turn(text="hello")])],
                        refuse_streamed_tools=True)
    wb.env.update(OPENAI_BASE_URL=fake.base_url, OPENAI_MODEL="fake-model")  # nothing else set
    sid = wb.new(calc_repo, *AUTO, "--prompt", "fix mean in calc.py")
    s = settled(wb, sid, "review")
    assert "len(values)\n" in (Path(s["worktree"]) / "calc.py").read_text()
    entries = log_of(wb, sid)
    notices = [e["data"]["message"] for e in entries if e["kind"] == "notice"]
    assert len(notices) == 1 and STREAMED_TOOLS_REFUSAL in notices[0]
    assert not any(e["kind"] in ("retry", "error") for e in entries)
    assert "without streaming" in wb.run("log", sid).stdout
    assert fake.refused == 1 and [r.body["stream"] for r in fake.requests] == [True, False, False, False]
    # The daemon remembers: the next session there asks unstreamed from its first request.
    other = wb.new(calc_repo, *AUTO, "--prompt", "second one")
    settled(wb, other, "waiting")
    assert fake.refused == 1 and fake.requests[-1].body["stream"] is False
    assert [e["kind"] for e in log_of(wb, other)].count("notice") == 1
    assert fake.violations == []


def test_a_finished_text_only_turn_is_waiting_for_the_next_message(
    wb: Wb, calc_repo: Path, fake_factory: Factory
) -> None:
    fake = fake_factory([Script("", [Turn(text="Hi! What should I do?"), Turn(text="Sure."), Turn(text="Again.")])])
    wb.env.update(OPENAI_BASE_URL=fake.base_url, OPENAI_MODEL="fake-model")
    sid = wb.new(calc_repo, *AUTO, "--prompt", "hello")
    s = settled(wb, sid, "waiting")
    assert s["reason"] == IDLE and s["approval_pending"] is None and s["needs_attention"]
    wb.run("send", sid, "anything?")
    wait_for(lambda: len(fake.requests) == 2, 10, what="the second request")
    assert settled(wb, sid, "waiting")["reason"] == IDLE
    wb.run("daemon", "stop")  # resumed by the next daemon: still waiting, with the reason
    s = wb.session(sid)
    assert (s["state"], s["reason"]) == ("waiting", IDLE)


def test_two_endpoints_side_by_side_without_a_daemon_restart(
    wb: Wb, calc_repo: Path, fake_factory: Factory
) -> None:
    one = fake_factory([Script("", [Turn(text="from one", delay_s=120)])])
    two = fake_factory([Script("", fix_task("two fixed it"))], models=["model-two"])
    three = fake_factory([Script("", [Turn(text="from three"), Turn(text="three again")])], models=["model-three"])
    config_toml(wb, provider_table("one", one))
    a = wb.new(calc_repo, *AUTO, "--provider", "one", "--prompt", "task a")
    wait_for(lambda: one.in_flight == 1, 10, what="session a's request")
    pid = wb.daemon_pid()
    # A provider added while the daemon runs: used at once, and session a keeps its own.
    config_toml(wb, provider_table("one", one) + provider_table("two", two, "model-two"))
    b = wb.new(calc_repo, *AUTO, "--provider", "two", "--prompt", "task b")
    c = wb.new(calc_repo, *AUTO, "--base-url", three.base_url, "--model", "model-three", "--wire-api", "responses",
               "--prompt", "task c")
    sb, sc = settled(wb, b, "review"), settled(wb, c, "waiting")
    assert (sb["provider"], sb["model"], sc["model"]) == ("two", "model-two", "model-three")
    assert wb.session(a)["state"] == "running" and wb.daemon_pid() == pid
    one.release()
    settled(wb, a, "waiting")
    assert [r.path for r in three.requests] == ["/v1/responses"] and len(two.requests) == 3
    assert len(one.requests) == 1 and not one.violations + two.violations + three.violations
    # The one-off settings are the session's: a restarted daemon sends c's next turn to the same place.
    for sid in (a, b):  # (fewer sessions to resume: a quicker restart on a busy machine)
        wb.run("rm", sid)
    wb.run("daemon", "stop")
    wb.run("send", c, "more")
    wait_for(lambda: len(three.requests) == 2, 10, what="c's turn after the restart")
    assert three.requests[1].body["model"] == "model-three" and three.requests[1].path == "/v1/responses"


def test_bad_provider_choices_are_the_new_commands_error(wb: Wb, calc_repo: Path) -> None:
    config_toml(wb, '[providers.local]\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n')
    res = wb.run("new", "--repo", str(calc_repo), *AUTO, "--provider", "nope", check=False)
    assert res.returncode == 2 and res.stderr.startswith("error: unknown provider 'nope' (defined: local)")
    res = wb.run("new", "--repo", str(calc_repo), "--agent", "shell", "--model", "m", *OFF, check=False)
    assert res.returncode == 2 and "--model: only for the built-in agent" in res.stderr
    res = wb.run("new", "--repo", str(calc_repo), *AUTO, "--wire-api", "soap", check=False)
    assert res.returncode == 2 and "soap" in res.stderr
    assert "Traceback" not in res.stderr
    assert wb.json("ls") == []


@pytest.mark.parametrize(("how", "named"), [
    ("env", 'WORKBENCH_WIRE_API chose "responses"'),
    ("flag", '--wire-api chose "responses"'),
    ("config", '[providers.local].wire_api in config.toml chose "responses"'),
])
def test_no_responses_api_error_names_the_setting_then_chat_runs_the_task(
    wb: Wb, calc_repo: Path, fake_factory: Factory, how: str, named: str
) -> None:
    fake = fake_factory([Script("", fix_task())], no_responses=True)
    args: tuple[str, ...] = ()
    if how == "env":
        wb.env.update(OPENAI_BASE_URL=fake.base_url, OPENAI_MODEL="fake-model", WORKBENCH_WIRE_API="responses")
    elif how == "flag":
        wb.env.update(OPENAI_BASE_URL=fake.base_url, OPENAI_MODEL="fake-model")
        args = ("--wire-api", "responses")
    else:
        config_toml(wb, provider_table("local", fake, extra='wire_api = "responses"'))
        args = ("--provider", "local")
    sid = wb.new(calc_repo, *AUTO, *args, "--prompt", "fix mean")
    s = settled(wb, sid, "error")
    assert "HTTP 404" in s["reason"] and named in s["reason"], s["reason"]
    assert [r.path for r in fake.requests] == ["/v1/responses"]
    if how == "config":  # the chat API through the same provider, one-off
        ok = wb.new(calc_repo, *AUTO, *args, "--wire-api", "chat", "--prompt", "fix mean")
        s = settled(wb, ok, "review")
        assert "len(values)\n" in (Path(s["worktree"]) / "calc.py").read_text()
        assert {r.path for r in fake.requests[1:]} == {"/v1/chat/completions"} and fake.violations == []


def test_a_saturated_server_is_shown_while_sessions_retry_and_all_finish(
    wb: Wb, calc_repo: Path, fake_factory: Factory
) -> None:
    fake = fake_factory([
        Script("task a", [Turn(text="a done", delay_s=120)]),
        Script("task b", [Turn(text="b done")]),
        Script("task c", [Turn(text="c done")]),
    ], max_streams=1)
    wb.env.update(OPENAI_BASE_URL=fake.base_url, OPENAI_MODEL="fake-model")
    a = wb.new(calc_repo, *AUTO, "--prompt", "task a")
    wait_for(lambda: fake.in_flight == 1, 10, what="a's request to hold the server")
    b = wb.new(calc_repo, *AUTO, "--prompt", "task b")
    c = wb.new(calc_repo, *AUTO, "--prompt", "task c")
    for sid in (b, c):
        s = wait_for(lambda sid=sid: (s := wb.session(sid))["reason"].startswith(
            "the endpoint is saturated or slow; retry") and s, 20, what=f"{sid} to say the endpoint is saturated")
        assert s["state"] == "running" and s["turn_active"]
    fake.max_streams = None  # the server has room again
    fake.release()
    for sid in (a, b, c):
        assert settled(wb, sid, "waiting", 40)["reason"] == IDLE
    for sid in (b, c):
        retries = [e["data"] for e in log_of(wb, sid) if e["kind"] == "retry"]
        assert retries[0]["saturated"] is False and retries[1]["saturated"] is True
        assert "saturated or slow" in wb.run("log", sid).stdout
    assert fake.cuts >= 4 and fake.violations == []
