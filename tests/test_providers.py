"""Provider.stream against the real fake server over HTTP on 127.0.0.1 (both wire APIs)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from workbench.agent.conversation import (
    SUMMARY_PREFIX,
    AssistantMessage,
    Item,
    Summary,
    SystemMessage,
    ToolCallItem,
    ToolResult,
    UserMessage,
    dumps,
    estimate_tokens,
    item_from_dict,
    loads,
    to_chat_messages,
    to_responses_input,
)
from workbench.agent.events import (
    Event,
    Retrying,
    StreamError,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
    ToolCallStart,
    TurnDone,
    Usage,
)
from workbench.agent.providers import (
    Provider,
    ProviderConfig,
    cost_usd,
    make_provider_config,
    retry_after_s,
)
from workbench.config import ProviderSettings
from workbench.errors import ConfigError, WorkbenchError
from workbench.fakes.model_server import FakeOpenAI, Fault, Script, ScriptedToolCall, Turn

WIRES = ["chat", "responses"]

SHELL_TOOL_CHAT = {
    "type": "function",
    "function": {
        "name": "shell",
        "description": "run a command",
        "parameters": {"type": "object", "properties": {"command": {"type": "array"}}},
    },
}
SHELL_TOOL_RESPONSES = {
    "type": "function",
    "name": "shell",
    "description": "run a command",
    "parameters": {"type": "object", "properties": {"command": {"type": "array"}}},
}


def tools_for(wire: str) -> list[dict[str, Any]]:
    return [SHELL_TOOL_CHAT if wire == "chat" else SHELL_TOOL_RESPONSES]


@pytest.fixture
def fake_factory() -> Iterator[Any]:
    started: list[FakeOpenAI] = []

    def make(turns: list[Turn], **kw: Any) -> FakeOpenAI:
        fake = FakeOpenAI([Script("", turns)], **kw)
        fake.start()
        started.append(fake)
        return fake

    yield make
    for f in started:
        f.stop()


def config(fake: FakeOpenAI, wire: str, **kw: Any) -> ProviderConfig:
    base: dict[str, Any] = {"retry_base_s": 0.02, "timeout_s": 5, "max_retries": 3}
    base.update(kw)
    return ProviderConfig(
        base_url=fake.base_url, api_key=base.pop("api_key", None), model="fake-model",
        wire_api=wire,  # type: ignore[arg-type]
        headers=base.pop("headers", {}), **base,
    )


def run(cfg: ProviderConfig, items: list[Item], tools: list[dict[str, Any]] | None = None
        ) -> list[tuple[float, Event]]:
    """All events of one stream with the time each arrived (seconds from the start)."""

    async def go() -> list[tuple[float, Event]]:
        p = Provider(cfg)
        out: list[tuple[float, Event]] = []
        t0 = time.monotonic()
        try:
            async for ev in p.stream(items, tools or []):
                out.append((time.monotonic() - t0, ev))
        finally:
            await p.close()
        return out

    return asyncio.run(go())


def evs(timed: list[tuple[float, Event]]) -> list[Event]:
    return [e for _, e in timed]


def final_turn(events: list[Event]) -> list[Event]:
    """What a consumer keeps: everything after the last Retrying."""
    last = max((i for i, e in enumerate(events) if isinstance(e, Retrying)), default=-1)
    return events[last + 1 :]


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


CONVO: list[Item] = [SystemMessage("You are terse."), UserMessage("list the files")]


@pytest.mark.parametrize("wire", WIRES)
def test_streams_text_tool_calls_and_usage(fake_factory: Any, wire: str) -> None:
    args1 = json.dumps({"command": ["ls", "-la", "src"], "workdir": "."})
    args2 = json.dumps({"command": ["cat", "README.md"]})
    fake = fake_factory([Turn(
        text="Let me look around.",
        tool_calls=[ScriptedToolCall("shell", args1, call_id="call_a", chunks=4),
                    ScriptedToolCall("shell", args2, chunks=2)],
        usage=(123, 45),
    )])
    events = evs(run(config(fake, wire), CONVO, tools_for(wire)))

    assert text_of(events) == "Let me look around."
    assert sum(isinstance(e, TextDelta) for e in events) > 1  # really streamed in pieces
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.name, s.index) for s in starts] == [("shell", 0), ("shell", 1)]
    assert starts[0].call_id == "call_a"
    second_id = starts[1].call_id
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    deltas_a = [e.fragment for e in deltas if e.call_id == "call_a"]
    deltas_b = [e.fragment for e in deltas if e.call_id == second_id]
    assert len(deltas_a) == 4 and "".join(deltas_a) == args1
    assert len(deltas_b) == 2 and "".join(deltas_b) == args2
    dones = [e for e in events if isinstance(e, ToolCallDone)]
    assert dones == [
        ToolCallDone("call_a", "shell", args1), ToolCallDone(second_id, "shell", args2)
    ]
    # Each call: start, then its pieces, then done.
    ia = [i for i, e in enumerate(events) if getattr(e, "call_id", None) == "call_a"]
    assert isinstance(events[ia[0]], ToolCallStart) and isinstance(events[ia[-1]], ToolCallDone)
    assert Usage(123, 45, 0) in events
    assert events[-1] == TurnDone("tool_calls")
    assert fake.violations == []

    req = fake.requests[0]
    assert req.body["stream"] is True
    assert req.body["model"] == "fake-model"
    assert req.headers["authorization"] == "Bearer not-needed"  # no key configured: placeholder
    if wire == "chat":
        assert req.path == "/v1/chat/completions"
        assert req.body["stream_options"] == {"include_usage": True}
        assert req.body["messages"] == to_chat_messages(CONVO)
        assert req.body["tools"] == [SHELL_TOOL_CHAT]
    else:
        assert req.path == "/v1/responses"
        assert req.body["instructions"] == "You are terse."
        assert req.body["input"] == to_responses_input(CONVO)[1]
        assert req.body["store"] is False
        assert req.body["tools"] == [SHELL_TOOL_RESPONSES]


@pytest.mark.parametrize("wire", WIRES)
def test_plain_text_turn_and_custom_headers(fake_factory: Any, wire: str) -> None:
    fake = fake_factory([Turn(text="done.", usage=(7, 2))])
    cfg = config(fake, wire, api_key="sk-test", headers={"X-Workbench-Session": "s1"})
    events = evs(run(cfg, CONVO))
    assert events == [TextDelta("done."), Usage(7, 2, 0), TurnDone("stop")]
    assert fake.requests[0].headers["x-workbench-session"] == "s1"
    assert fake.requests[0].headers["authorization"] == "Bearer sk-test"
    assert "tools" not in fake.requests[0].body


@pytest.mark.parametrize("wire", WIRES)
def test_429_honours_retry_after_ms(fake_factory: Any, wire: str) -> None:
    fault = Fault("status", 429, retry_after_ms=300)
    fake = fake_factory([Turn(text="after the wait", error=fault)])
    # A 5 s base delay proves the server's 300 ms was used instead of our own backoff.
    timed = run(config(fake, wire, retry_base_s=5.0), CONVO)
    events = evs(timed)
    retry = events[0]
    assert isinstance(retry, Retrying)
    assert retry.attempt == 1 and retry.delay_s == pytest.approx(0.3)
    assert "HTTP 429" in retry.reason and fake.base_url in retry.reason
    waited = timed[1][0] - timed[0][0]
    assert waited >= 0.28  # it did wait (the delay above proves the server's 300 ms was used)
    assert text_of(final_turn(events)) == "after the wait"
    assert events[-1] == TurnDone("stop")
    assert len(fake.requests) == 2


def test_retry_after_seconds_header_over_http(fake_factory: Any) -> None:
    fake = fake_factory([Turn(text="ok", error=Fault("status", 503, retry_after_s=0.25))])
    timed = run(config(fake, "chat", retry_base_s=5.0), CONVO)
    retry = timed[0][1]
    assert isinstance(retry, Retrying) and retry.delay_s == pytest.approx(0.25)
    assert timed[1][0] - timed[0][0] >= 0.23
    assert text_of(evs(timed)) == "ok"


def test_retry_after_parsing() -> None:
    assert retry_after_s({"Retry-After-Ms": "1500"}) == 1.5
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_s({"retry-after": "2"}) == 2.0
    now = time.time()
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_s({"retry-after": date}, now=now) == pytest.approx(30, abs=1.5)
    assert retry_after_s({"retry-after": "soon"}) is None
    assert retry_after_s({"retry-after-ms": "-5"}) is None
    assert retry_after_s({}) is None


@pytest.mark.parametrize("wire", WIRES)
def test_500_then_success_uses_backoff(fake_factory: Any, wire: str) -> None:
    fake = fake_factory([Turn(text="recovered", error=Fault("status", 500, times=2))])
    events = evs(run(config(fake, wire, retry_base_s=0.05), CONVO))
    retries = [e for e in events if isinstance(e, Retrying)]
    assert [r.attempt for r in retries] == [1, 2]
    # Exponential with ±20% jitter: ~0.05 then ~0.1.
    assert 0.04 <= retries[0].delay_s <= 0.06 and 0.08 <= retries[1].delay_s <= 0.12
    assert all("HTTP 500" in r.reason and "scripted fault" in r.reason for r in retries)
    assert text_of(events) == "recovered" and events[-1] == TurnDone("stop")
    assert len(fake.requests) == 3


@pytest.mark.parametrize("wire", WIRES)
def test_cut_stream_is_retried_and_partial_turn_dropped(fake_factory: Any, wire: str) -> None:
    text = "one two three four five six seven eight"
    call = ScriptedToolCall("shell", '{"command": ["true"]}')
    fake = fake_factory([Turn(text=text, tool_calls=[call], error=Fault("cut"))])
    events = evs(run(config(fake, wire), CONVO, tools_for(wire)))
    i = next(i for i, e in enumerate(events) if isinstance(e, Retrying))
    partial = text_of(events[:i])
    assert partial and text.startswith(partial) and partial != text  # live text was streamed
    assert not any(isinstance(e, TurnDone | ToolCallDone) for e in events[:i])
    retry = events[i]
    assert isinstance(retry, Retrying) and "cut" in retry.reason
    kept = final_turn(events)
    assert text_of(kept) == text
    assert next(e for e in kept if isinstance(e, ToolCallDone)).arguments == call.arguments
    assert kept[-1] == TurnDone("tool_calls")


@pytest.mark.parametrize("wire", WIRES)
def test_garbage_is_retried(fake_factory: Any, wire: str) -> None:
    fake = fake_factory([Turn(text="clean", error=Fault("garbage"))])
    events = evs(run(config(fake, wire), CONVO))
    retry = next(e for e in events if isinstance(e, Retrying))
    assert "malformed response" in retry.reason and "JSONDecodeError" in retry.reason
    assert text_of(final_turn(events)) == "clean"
    assert events[-1] == TurnDone("stop")


@pytest.mark.parametrize("wire", WIRES)
def test_in_stream_error_is_retried(fake_factory: Any, wire: str) -> None:
    text = "alpha beta gamma delta epsilon"
    fake = fake_factory([Turn(text=text, error=Fault("stream_error"))])
    events = evs(run(config(fake, wire), CONVO))
    i = next(i for i, e in enumerate(events) if isinstance(e, Retrying))
    assert text_of(events[:i]) and text_of(events[:i]) != text
    retry = events[i]
    assert isinstance(retry, Retrying) and "scripted stream error" in retry.reason
    assert text_of(final_turn(events)) == text and events[-1] == TurnDone("stop")


def test_hang_times_out_and_is_retried(fake_factory: Any) -> None:
    fake = fake_factory([Turn(text="awake", error=Fault("hang", delay_s=10))])
    events = evs(run(config(fake, "chat", timeout_s=0.3), CONVO))
    retry = events[0]
    assert isinstance(retry, Retrying) and "within 0.3s" in retry.reason
    assert text_of(events) == "awake"


@pytest.mark.parametrize("wire", WIRES)
def test_retries_exhausted_gives_stream_error(fake_factory: Any, wire: str) -> None:
    fake = fake_factory([Turn(text="never", error=Fault("status", 503, times=50))])
    events = evs(run(config(fake, wire, max_retries=2), CONVO))
    assert [type(e) for e in events] == [Retrying, Retrying, StreamError]
    err = events[-1]
    assert isinstance(err, StreamError) and err.retryable is False
    assert "HTTP 503" in err.message and "gave up after 3 attempts" in err.message
    assert fake.base_url in err.message
    assert len(fake.requests) == 3


@pytest.mark.parametrize("wire", WIRES)
def test_401_is_not_retried_and_says_how_to_fix(fake_factory: Any, wire: str) -> None:
    fake = fake_factory([Turn(text="secret")], api_key="sk-right")
    events = evs(run(config(fake, wire), CONVO))
    assert len(events) == 1 and isinstance(events[0], StreamError)
    assert "HTTP 401" in events[0].message and "set OPENAI_API_KEY" in events[0].message
    assert len(fake.requests) == 1

    events = evs(run(config(fake, wire, api_key="sk-wrong", api_key_env="MY_KEY"), CONVO))
    assert isinstance(events[0], StreamError) and "check MY_KEY" in events[0].message

    events = evs(run(config(fake, wire, api_key="sk-right"), CONVO))
    assert text_of(events) == "secret"


@pytest.mark.parametrize("wire", WIRES)
def test_unknown_model_404_names_model(fake_factory: Any, wire: str) -> None:
    fake = fake_factory([Turn(text="x")], models=["real-model"])
    events = evs(run(config(fake, wire), CONVO))
    assert len(events) == 1 and isinstance(events[0], StreamError)
    msg = events[0].message
    assert msg.startswith("model 'fake-model' (the default; set model in [providers.NAME] or --model)")
    assert "does not exist" in msg  # the server's own message is passed on
    assert len(fake.requests) == 1


def test_connection_refused_is_reported_at_once() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = ProviderConfig(f"http://127.0.0.1:{port}/v1", None, "m", "chat", {},
                         max_retries=1, retry_base_s=0.01)
    events = evs(run(cfg, CONVO))
    assert [type(e) for e in events] == [StreamError]  # nobody listens: no retry can help
    err = events[-1]
    assert isinstance(err, StreamError)
    assert f"cannot reach http://127.0.0.1:{port}/v1: connection refused" in err.message


def test_consumer_can_stop_early(fake_factory: Any) -> None:
    fake = fake_factory([Turn(text="a b c d e f g h", chunk_delay_s=0.05), Turn(text="next")])

    async def go() -> tuple[list[Event], list[Event]]:
        p = Provider(config(fake, "chat"))
        first: list[Event] = []
        gen = p.stream(CONVO, [])
        async for ev in gen:
            first.append(ev)
            if len(first) == 2:
                break
        await gen.aclose()
        second = [ev async for ev in p.stream(CONVO, [])]
        await p.close()
        return first, second

    first, second = asyncio.run(go())
    assert text_of(first) == "a b "
    assert text_of(second) == "next" and second[-1] == TurnDone("stop")


# -- a conversation with tool results, through both the SDK and the fake server --------------


FULL: list[Item] = [
    SystemMessage("You are a coding agent."),
    UserMessage("fix the bug"),
    Summary("We found the bug in app.py."),
    AssistantMessage("Running tests.", [
        ToolCallItem("call_1", "shell", '{"command": ["pytest"]}'),
        ToolCallItem("call_2", "update_plan", ""),
    ]),
    ToolResult("call_1", "1 failed", is_error=True),
    ToolResult("call_2", "plan updated"),
    AssistantMessage("Tests fail; patching."),
    UserMessage("go on"),
]


@pytest.mark.parametrize("wire", WIRES)
def test_full_conversation_is_accepted(fake_factory: Any, wire: str) -> None:
    fake = fake_factory([Turn(text="patched")])
    events = evs(run(config(fake, wire), FULL, tools_for(wire)))
    assert text_of(events) == "patched"
    assert fake.violations == []
    body = fake.requests[0].body
    if wire == "chat":
        assert body["messages"] == to_chat_messages(FULL) and len(body["messages"]) == 8
    else:
        assert body["input"] == to_responses_input(FULL)[1] and len(body["input"]) == 9
        assert body["instructions"] == "You are a coding agent."


@pytest.mark.parametrize("wire", WIRES)
def test_dangling_tool_result_is_a_violation(fake_factory: Any, wire: str) -> None:
    fake = fake_factory([Turn(text="still answered")])
    bad: list[Item] = [UserMessage("hi"), ToolResult("call_nope", "orphan")]
    events = evs(run(config(fake, wire), bad))
    assert text_of(events) == "still answered"  # answered normally
    assert len(fake.violations) == 1
    assert "call_nope" in fake.violations[0] and "answers no earlier" in fake.violations[0]

    unanswered: list[Item] = [
        UserMessage("hi"), AssistantMessage("", [ToolCallItem("c9", "shell", "{}")])
    ]
    run(config(fake, wire), unanswered)
    assert any("c9" in v and ("no tool result" in v or "no function_call_output" in v)
               for v in fake.violations[1:])


# -- conversation items ---------------------------------------------------------------------


def test_items_round_trip_through_dicts_and_json() -> None:
    for it in FULL:
        d = it.to_dict()
        assert json.loads(json.dumps(d)) == d
        assert item_from_dict(d) == it
    assert loads(dumps(FULL)) == FULL
    assert FULL[3].to_dict()["type"] == "assistant"
    assert {it.to_dict()["type"] for it in FULL} == {
        "system", "user", "summary", "assistant", "tool_result"}


def test_bad_stored_items_raise_clear_errors() -> None:
    with pytest.raises(WorkbenchError, match="unknown type 'bogus'"):
        item_from_dict({"type": "bogus"})
    with pytest.raises(WorkbenchError, match="malformed"):
        item_from_dict({"type": "tool_result", "output": "x"})
    with pytest.raises(WorkbenchError, match="not valid JSON"):
        loads("[{")


def test_chat_message_shapes() -> None:
    msgs = to_chat_messages(FULL)
    assert msgs[0] == {"role": "system", "content": "You are a coding agent."}
    assert msgs[2] == {"role": "user", "content": SUMMARY_PREFIX + "We found the bug in app.py."}
    assert msgs[3] == {
        "role": "assistant",
        "content": "Running tests.",
        "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "shell", "arguments": '{"command": ["pytest"]}'}},
            {"id": "call_2", "type": "function",
             "function": {"name": "update_plan", "arguments": "{}"}},
        ],
    }
    assert msgs[4] == {"role": "tool", "tool_call_id": "call_1", "content": "1 failed"}
    assert msgs[6] == {"role": "assistant", "content": "Tests fail; patching."}
    only_calls = to_chat_messages([AssistantMessage("", [ToolCallItem("c", "shell", "{}")])])
    assert only_calls[0]["content"] is None


def test_responses_input_shapes() -> None:
    instructions, items = to_responses_input([SystemMessage("a"), *FULL[1:], SystemMessage("b")])
    assert instructions == "a\n\nb"
    assert items[0] == {"type": "message", "role": "user", "content": "fix the bug"}
    assert items[1]["content"].startswith(SUMMARY_PREFIX)
    assert items[2] == {"type": "message", "role": "assistant", "content": "Running tests."}
    assert items[3] == {"type": "function_call", "call_id": "call_1", "name": "shell",
                        "arguments": '{"command": ["pytest"]}'}
    assert items[4]["arguments"] == "{}"
    assert items[5] == {"type": "function_call_output", "call_id": "call_1", "output": "1 failed"}
    assert to_responses_input([UserMessage("x")])[0] is None


def test_estimate_tokens_is_about_chars_over_four() -> None:
    small = estimate_tokens([UserMessage("x" * 400)])
    big = estimate_tokens([UserMessage("x" * 4000)])
    assert 100 <= small <= 110 and 1000 <= big <= 1010
    with_call = estimate_tokens([AssistantMessage("", [ToolCallItem("c", "shell", "y" * 400)])])
    assert with_call > 100
    assert estimate_tokens([]) == 0


# -- config ---------------------------------------------------------------------------------


def test_make_provider_config_reads_key_from_env() -> None:
    settings = ProviderSettings(base_url="http://localhost:11434/v1", model="qwen", api_key_env="K",
                                wire_api="responses", headers={"X-A": "1"}, max_retries=7,
                                price_in_per_million=2.0, price_out_per_million=8.0)
    cfg = make_provider_config(settings, {"K": "sk-1", "OPENAI_API_KEY": "other"})
    assert cfg.api_key == "sk-1" and cfg.api_key_env == "K"
    assert (cfg.model, cfg.wire_api, cfg.max_retries) == ("qwen", "responses", 7)
    assert cfg.headers == {"X-A": "1"}
    assert make_provider_config(settings, {}).api_key is None
    assert cost_usd(cfg, 1_000_000, 500_000) == pytest.approx(6.0)
    assert cost_usd(cfg, 0, 0) == 0


def test_make_provider_config_without_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no model"):
        make_provider_config(ProviderSettings(), {})
