"""The agent loop in-process against the fake OpenAI server over real HTTP, in real git repos."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.agent_support import (
    CALC,
    FIX,
    TEST_CALC,
    TESTS,
    MemoryHost,
    calls,
    patch,
    shell,
    until,
)
from tests.conftest import make_repo
from workbench.agent.command_run import LocalRunner
from workbench.agent.conversation import SUMMARY_PREFIX, item_from_dict
from workbench.agent.loop import IDLE_REASON, INTERRUPT_RESULT, RESTART_RESULT, Agent, LoopOptions
from workbench.agent.prompts import COMPACT_PROMPT, PromptContext
from workbench.agent.providers import Provider, ProviderConfig
from workbench.fakes.model_server import FakeOpenAI, Fault, Script, ScriptedToolCall, Turn


def make_agent(
    fake: FakeOpenAI, root: Path, host: MemoryHost, *, approval: str = "full-auto", wire: str = "chat",
    context_window: int = 128_000, max_turns: int = 50, **kw: Any,
) -> Agent:
    cfg = ProviderConfig(
        base_url=fake.base_url, api_key=None, model="fake-model", wire_api=wire,  # type: ignore[arg-type]
        max_retries=2, retry_base_s=0.01, retry_max_s=1.0, timeout_s=10, context_window=context_window,
        price_in_per_million=2.0, price_out_per_million=8.0,
    )
    opts = LoopOptions(root=root, prompt=PromptContext(worktree=root, approval=approval, sandbox="off"),
                       command_timeout_ms=10_000, max_turns=max_turns)
    return Agent(Provider(cfg), host, LocalRunner(), opts, **kw)


def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "r", {
        "calc.py": CALC, "test_calc.py": TEST_CALC, "AGENTS.md": "Always run the tests with unittest.\n",
    })


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


async def idle(agent: Agent, host: MemoryHost) -> None:
    await until(lambda: not agent.busy, what=f"the agent to finish (status {host.status})")


def messages(fake: FakeOpenAI, n: int) -> list[dict[str, Any]]:
    body = fake.requests[n].body
    return list(body["messages"] if "messages" in body else body["input"])


@pytest.mark.parametrize("wire", ["chat", "responses"])
def test_multi_turn_task_reads_patches_and_tests(tmp_path: Path, wire: str) -> None:
    root = repo(tmp_path)
    script = [Script("fix the mean", [
        calls(shell(["cat", "calc.py"]), text="Reading calc.py."),
        calls(patch(FIX)),
        calls(shell(TESTS)),
        Turn(text="Fixed mean(): it divided by one too many."),
    ])]
    host = MemoryHost(root)
    with FakeOpenAI(script) as fake:
        async def main() -> None:
            agent = make_agent(fake, root, host, wire=wire)
            agent.begin("fix the mean bug")
            await idle(agent, host)
            await agent.provider.close()

        run(main())
    assert (root / "calc.py").read_text() == CALC.replace("(len(values) + 1)", "len(values)")
    outs = host.of("tool_output")
    assert "(len(values) + 1)" in outs[0]["output"] and not outs[0]["is_error"]
    assert "M calc.py" in outs[1]["output"] and not outs[1]["is_error"]
    assert "Exit code: 0" in outs[2]["output"] and "OK" in outs[2]["output"]
    assert host.status == "review"
    assert host.of("assistant")[-1]["text"] == "Fixed mean(): it divided by one too many."
    assert "Fixed mean()" in "".join(host.deltas)
    assert next(c["describe"] for c in host.of("tool_call")) == "cat calc.py"
    assert fake.violations == []
    assert len(fake.requests) == 4
    assert fake.requests[0].path.endswith("/chat/completions" if wire == "chat" else "/responses")
    body = fake.requests[0].body
    system = body["messages"][0]["content"] if wire == "chat" else body["instructions"]
    assert str(root) in system and "Always run the tests with unittest." in system and "full-auto" in system
    # The last request carries the test output back to the model.
    assert any("OK" in json.dumps(m) for m in messages(fake, 3))
    gen, items = host.stored()
    assert gen == 0
    assert [i["type"] for i in items] == ["system", "user"] + ["assistant", "tool_result"] * 3 + ["assistant"]
    assert host.usage[0] > 0 and host.usage[1] > 0 and host.usage[2] > 0
    assert host.of("usage")[0]["cost_usd"] == pytest.approx(
        (host.of("usage")[0]["tokens_in"] * 2 + host.of("usage")[0]["tokens_out"] * 8) / 1e6)


ADD = "*** Begin Patch\n*** Add File: added.txt\n+hello\n*** End Patch\n"


@pytest.mark.parametrize(("mode", "expected"), [
    ("suggest", ["ls", "touch made.txt", "apply_patch"]),
    ("auto-edit", ["touch made.txt"]),
    ("full-auto", []),
])
def test_approval_policies(tmp_path: Path, mode: str, expected: list[str]) -> None:
    root = repo(tmp_path)
    script = [Script("", [
        calls(shell(["ls"])), calls(shell(["touch", "made.txt"])), calls(patch(ADD)), Turn(text="done"),
    ])]
    host = MemoryHost(root)
    asked: list[str] = []
    with FakeOpenAI(script) as fake:
        async def main() -> None:
            agent = make_agent(fake, root, host, approval=mode)
            agent.begin("do three things")
            while agent.busy:
                if agent.pending is not None and host.approval is not None and host.status == "waiting":
                    asked.append(str(agent.pending["describe"]).splitlines()[0])
                    agent.answer("approve")
                await asyncio.sleep(0.005)
            await agent.provider.close()

        run(main())
    assert asked == expected
    assert (root / "made.txt").exists() and (root / "added.txt").read_text() == "hello\n"
    assert [r["kind"] for r in host.of("approval_request")] == (
        ["command", "command", "patch"] if mode == "suggest" else ["command"] * len(expected))
    assert ("waiting" in [s for s, _ in host.statuses]) == bool(expected)
    assert host.status == "review" and host.approval is None


def test_deny_reason_reaches_the_model_and_always_approves_again(tmp_path: Path) -> None:
    root = repo(tmp_path)
    script = [Script("", [
        calls(shell(["touch", "a.txt"])), calls(shell(["touch", "b.txt"])), calls(shell(["touch", "b.txt"])),
        Turn(text="ok"),
    ])]
    host = MemoryHost(root)
    answers = [("deny", "use b.txt instead"), ("approve_always", "")]
    with FakeOpenAI(script) as fake:
        async def main() -> None:
            agent = make_agent(fake, root, host, approval="suggest")
            agent.begin("touch a file")
            while agent.busy:
                if host.status == "waiting" and agent.pending is not None:
                    decision, reason = answers.pop(0)
                    agent.answer(decision, reason)  # type: ignore[arg-type]
                await asyncio.sleep(0.005)
            with pytest.raises(Exception, match="no approval is pending"):
                agent.answer("approve")
            await agent.provider.close()

        run(main())
    assert answers == []
    assert not (root / "a.txt").exists() and (root / "b.txt").exists()
    denied = messages(fake, 1)[-1]
    assert denied["role"] == "tool" and "denied" in denied["content"] and "use b.txt instead" in denied["content"]
    assert [(a["decision"], a["reason"]) for a in host.of("approval")] == [
        ("deny", "use b.txt instead"), ("approve_always", "")]
    assert len(host.of("approval_request")) == 2  # the second `touch b.txt` did not ask
    assert host.meta["approval_grants"]["commands"] == ['["touch", "b.txt"]']
    assert host.of("tool_output")[0]["is_error"] is True


def test_model_mistakes_become_readable_errors(tmp_path: Path) -> None:
    root = repo(tmp_path)
    bad_patch = "*** Begin Patch\n*** Update File: calc.py\n@@\n-no such line\n+x\n*** End Patch\n"
    script = [Script("", [
        calls(ScriptedToolCall("browse_web", '{"url": "https://example.com"}')),
        calls(ScriptedToolCall("shell", '{"command": ["ls"')),
        calls(patch(bad_patch)),
        calls(shell(["sleep", "5"], timeout_ms=300)),
        Turn(text="I could not do it."),
    ])]
    host = MemoryHost(root)
    with FakeOpenAI(script) as fake:
        async def main() -> None:
            agent = make_agent(fake, root, host)
            agent.begin("try everything")
            await idle(agent, host)
            await agent.provider.close()

        run(main())  # bounded by pytest-timeout; how fast is for benchmarks/
    outs = host.of("tool_output")
    assert all(o["is_error"] for o in outs) and len(outs) == 4
    assert "unknown tool 'browse_web'" in outs[0]["output"]
    assert "not valid JSON" in outs[1]["output"]
    assert "apply_patch failed" in outs[2]["output"]
    assert "timed out after 300 ms" in outs[3]["output"]
    assert host.statuses[-1] == ("waiting", IDLE_REASON) and host.of("error") == []
    assert (root / "calc.py").read_text() == CALC
    assert fake.violations == []
    assert "apply_patch failed" in json.dumps(messages(fake, 3))


def test_retries_then_visible_error_and_nothing_lost(tmp_path: Path) -> None:
    root = repo(tmp_path)
    script = [Script("", [
        Turn(text="first answer", error=Fault("status", status=429, retry_after_ms=300)),
        Turn(text="recovered", error=Fault("status", status=500, times=3)),
    ])]
    host = MemoryHost(root)
    with FakeOpenAI(script) as fake:
        async def main() -> None:
            agent = make_agent(fake, root, host)
            agent.begin("task one")
            await idle(agent, host)
            assert host.status == "waiting"
            agent.send("task two")
            await idle(agent, host)
            assert host.status == "error"
            agent.send("try again")
            await idle(agent, host)
            await agent.provider.close()

        run(main())
    retries = host.of("retry")
    assert retries[0]["attempt"] == 1 and retries[0]["delay_s"] == pytest.approx(0.3)
    assert [r["attempt"] for r in retries[1:]] == [1, 2] and "HTTP 500" in retries[1]["reason"]
    errors = host.of("error")
    assert len(errors) == 1 and "gave up after 3 attempts" in errors[0]["message"]
    assert ("error", errors[0]["message"]) in host.statuses
    assert host.status == "waiting"
    _, items = host.stored()
    texts = [(i["type"], i.get("text")) for i in items[1:]]
    assert texts == [("user", "task one"), ("assistant", "first answer"), ("user", "task two"),
                     ("user", "try again"), ("assistant", "recovered")]
    assert len(fake.requests) == 6
    assert [m["content"] for m in messages(fake, 5) if m["role"] == "user"] == ["task one", "task two", "try again"]


def test_compaction_by_usage_keeps_the_original_task(tmp_path: Path) -> None:
    root = repo(tmp_path)
    script = [Script("", [
        calls(shell(["echo", "hi"]), usage=(950, 20)),
        Turn(text="HANDOFF: echo printed hi; nothing left but to say so.", usage=(960, 40)),
        Turn(text="all done"),
    ])]
    host = MemoryHost(root)
    with FakeOpenAI(script) as fake:
        async def main() -> None:
            agent = make_agent(fake, root, host, context_window=1000)
            agent.begin("ORIGINAL TASK: run echo")
            await idle(agent, host)
            await agent.provider.close()

        run(main())
    assert len(fake.requests) == 3
    summary_req = messages(fake, 1)
    assert summary_req[-1] == {"role": "user", "content": COMPACT_PROMPT}
    after = messages(fake, 2)
    assert [m["role"] for m in after] == ["system", "user", "user"]
    assert after[1]["content"] == "ORIGINAL TASK: run echo"
    assert after[2]["content"] == SUMMARY_PREFIX + "HANDOFF: echo printed hi; nothing left but to say so."
    comp = host.of("compaction")
    assert len(comp) == 1 and comp[0]["before"] == 970 and 0 < comp[0]["after"] < 970
    gen, items = host.stored()
    assert gen == 1 and [i["type"] for i in items] == ["system", "user", "summary", "assistant"]
    assert host.of("assistant")[-1]["text"] == "all done"
    assert fake.violations == []


def test_forced_compaction_keeps_latest_user_messages(tmp_path: Path) -> None:
    root = repo(tmp_path)
    script = [Script("", [Turn(text="one"), Turn(text="two"), Turn(text="THE SUMMARY"), Turn(text="three")])]
    host = MemoryHost(root)
    with FakeOpenAI(script) as fake:
        async def main() -> None:
            agent = make_agent(fake, root, host)
            agent.begin("TASK")
            await idle(agent, host)
            agent.send("second message")
            await idle(agent, host)
            res = await agent.compact()
            assert res["before"] > 0 and res["after"] > 0 and res["reason"] == "requested by the user"
            agent.send("third message")
            await idle(agent, host)
            await agent.provider.close()

        run(main())
    last = messages(fake, 3)
    assert [m["content"] for m in last[1:]] == [
        "TASK", "second message", SUMMARY_PREFIX + "THE SUMMARY", "third message"]
    assert host.status == "waiting"


def test_interrupt_stops_a_running_command_and_keeps_the_conversation_valid(tmp_path: Path) -> None:
    root = repo(tmp_path)
    script = [Script("", [calls(shell(["sleep", "30"])), Turn(text="after the interrupt")])]
    host = MemoryHost(root)
    with FakeOpenAI(script) as fake:
        async def main() -> None:
            agent = make_agent(fake, root, host)
            agent.begin("sleep a while")
            await until(lambda: bool(host.of("tool_call")))
            await asyncio.sleep(0.2)
            assert await agent.interrupt() is True
            assert not agent.busy and await agent.interrupt() is False
            agent.send("go on")
            await idle(agent, host)
            await agent.provider.close()

        run(main())
    assert "interrupted" in host.kinds()
    _, items = host.stored()
    assert items[3] == {"type": "tool_result", "call_id": items[2]["tool_calls"][0]["call_id"],
                        "output": INTERRUPT_RESULT, "is_error": True}
    assert host.of("assistant")[-1]["text"] == "after the interrupt"
    assert fake.violations == []


def test_resume_restores_a_pending_approval_and_answers_dangling_calls(tmp_path: Path) -> None:
    root = repo(tmp_path)
    script = [Script("", [calls(shell(["touch", "r.txt"])), Turn(text="done")])]
    host = MemoryHost(root)
    with FakeOpenAI(script) as fake:
        async def main() -> None:
            first = make_agent(fake, root, host, approval="suggest")
            first.begin("touch r.txt")
            await until(lambda: host.status == "waiting")
            await first.stop()  # as when the daemon stops
            await first.provider.close()
            assert host.approval is not None and host.approval["describe"] == "touch r.txt"
            gen, stored = host.stored()
            second = make_agent(fake, root, host, approval="suggest", generation=gen,
                                items=[item_from_dict(d) for d in stored], pending=host.approval)
            assert second.resume() is True
            await until(lambda: host.status == "waiting")
            second.answer("approve")
            await idle(second, host)
            await second.provider.close()

            # A call cut off by a crash (no approval involved) gets an explanatory result.
            gen, stored = host.stored()
            cut = [*stored, {"type": "assistant", "text": "", "tool_calls": [
                {"call_id": "c9", "name": "shell", "arguments": '{"command": ["true"]}'}]}]
            third = make_agent(fake, root, host, items=[item_from_dict(d) for d in cut])
            assert third.resume() is False
            assert third.items[-1].to_dict() == {"type": "tool_result", "call_id": "c9",
                                                 "output": RESTART_RESULT, "is_error": True}
            await third.provider.close()

        run(main())
    assert (root / "r.txt").exists() and host.status == "review"
    assert len(fake.requests) == 2  # the model was not asked again after the restart
    assert len(host.of("approval_request")) == 1


def test_max_turns_stops_with_an_error(tmp_path: Path) -> None:
    root = repo(tmp_path)
    script = [Script("", [calls(shell(["true"])) for _ in range(5)])]
    host = MemoryHost(root)
    with FakeOpenAI(script) as fake:
        async def main() -> None:
            agent = make_agent(fake, root, host, max_turns=2)
            agent.begin("loop forever")
            await idle(agent, host)
            await agent.provider.close()

        run(main())
    assert host.status == "error" and "max_turns" in host.statuses[-1][1]
    assert len(fake.requests) == 2


class _TimedProvider(Provider):
    """Adds up the time spent inside the provider (SDK, HTTP, the fake server)."""

    spent = 0.0

    async def stream(self, items: Any, tools: Any) -> Any:
        t = time.perf_counter()
        async for ev in super().stream(items, tools):
            self.spent += time.perf_counter() - t
            yield ev
            t = time.perf_counter()
        self.spent += time.perf_counter() - t


class _TimedRunner(LocalRunner):
    spent = 0.0

    async def run(self, argv: list[str], cwd: Path, timeout_ms: int) -> Any:
        t = time.perf_counter()
        try:
            return await super().run(argv, cwd, timeout_ms)
        finally:
            self.spent += time.perf_counter() - t


def test_loop_overhead_per_turn_is_small(tmp_path: Path) -> None:
    """Our own time per model turn: total minus the provider's and the commands' time."""
    root = repo(tmp_path)
    n = 30
    script = [Script("", [*(calls(shell(["true"])) for _ in range(n)), Turn(text="done")])]
    host = MemoryHost(root)
    with FakeOpenAI(script) as fake:
        async def main() -> tuple[float, float, float]:
            cfg = ProviderConfig(base_url=fake.base_url, api_key=None, model="m")
            provider, runner = _TimedProvider(cfg), _TimedRunner()
            opts = LoopOptions(root=root, prompt=PromptContext(worktree=root, approval="full-auto"), max_turns=n + 5)
            agent = Agent(provider, host, runner, opts)
            t0 = time.perf_counter()
            agent.begin("spin")
            await idle(agent, host)
            total = time.perf_counter() - t0
            await provider.close()
            return total, provider.spent, runner.spent

        total, model, commands = run(main())
    ours = (total - model - commands) / (n + 1)
    assert len(host.of("tool_output")) == n and host.status == "waiting"
    assert ours < 0.02, f"{ours * 1000:.2f} ms per turn in the loop itself"


def test_interrupt_while_waiting_for_approval_withdraws_it(tmp_path: Path) -> None:
    root = repo(tmp_path)
    script = [Script("", [calls(shell(["touch", "x"])), Turn(text="fine")])]
    host = MemoryHost(root)
    with FakeOpenAI(script) as fake:
        async def main() -> None:
            agent = make_agent(fake, root, host, approval="suggest")
            agent.begin("touch x")
            await until(lambda: host.status == "waiting")
            assert await agent.interrupt() is True
            assert agent.pending is None and host.approval is None and host.status == "waiting"
            with pytest.raises(Exception, match="no approval is pending"):
                agent.answer("approve")
            agent.send("skip it")
            await idle(agent, host)
            await agent.provider.close()

        run(main())
    assert not (root / "x").exists()
    assert host.of("tool_output")[0]["output"] == INTERRUPT_RESULT
    assert fake.violations == []


def test_a_server_that_refuses_streamed_tools_runs_the_task_unstreamed(tmp_path: Path) -> None:
    from workbench.agent.provider_unstreamed import NO_STREAMING

    NO_STREAMING.forget()
    root = repo(tmp_path)
    script = [Script("", [calls(patch(FIX)), calls(shell(TESTS)), Turn(text="Fixed.")])]
    host = MemoryHost(root)
    with FakeOpenAI(script, refuse_streamed_tools=True) as fake:
        async def main() -> None:
            agent = make_agent(fake, root, host)
            agent.begin("fix it")
            await idle(agent, host)
            await agent.provider.close()

        run(main())
    notices = host.of("notice")
    assert len(notices) == 1 and "refused a streamed request" in notices[0]["message"]
    assert host.of("retry") == [] and host.of("error") == [] and host.status == "review"
    assert [bool(r.body["stream"]) for r in fake.requests] == [True, False, False, False]
    assert "len(values)\n" in (root / "calc.py").read_text() and fake.violations == []
    NO_STREAMING.forget()


def test_cut_streams_in_a_row_show_a_saturated_endpoint_while_retrying(tmp_path: Path) -> None:
    root = repo(tmp_path)
    host = MemoryHost(root)
    with FakeOpenAI([Script("", [Turn(text="ok", error=Fault("cut", times=2))])]) as fake:
        async def main() -> None:
            agent = make_agent(fake, root, host)
            agent.begin("hi")
            await idle(agent, host)
            await agent.provider.close()

        run(main())
    reasons = [r for s, r in host.statuses if s == "running" and r]
    assert reasons[0].startswith("retry 1 in ") and reasons[1].startswith("the endpoint is saturated or slow; retry 2")
    assert [r["saturated"] for r in host.of("retry")] == [False, True]
    assert host.statuses[-1] == ("waiting", IDLE_REASON)
