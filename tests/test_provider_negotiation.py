"""Streaming negotiated with the endpoint, unstreamed turns, a saturated endpoint, and errors
that name the setting that was used: Provider against the fake server over real HTTP, and
the config's provider resolution."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from workbench.agent.conversation import SystemMessage, UserMessage
from workbench.agent.events import (
    Event,
    Retrying,
    StreamError,
    StreamingOff,
    TextDelta,
    ToolCallDone,
    ToolCallStart,
    TurnDone,
    Usage,
)
from workbench.agent.provider_unstreamed import NO_STREAMING, refuses_streaming
from workbench.agent.providers import Provider, ProviderConfig, make_provider_config
from workbench.config import Config, ProviderSettings
from workbench.errors import ConfigError
from workbench.fakes.model_server import (
    STREAMED_TOOLS_REFUSAL,
    FakeOpenAI,
    Fault,
    Script,
    ScriptedToolCall,
    Turn,
)

WIRES = ["chat", "responses"]
CONVO = [SystemMessage("sys"), UserMessage("do it")]
TOOL_CHAT = {"type": "function", "function": {"name": "shell", "parameters": {"type": "object"}}}
TOOL_RESPONSES = {"type": "function", "name": "shell", "parameters": {"type": "object"}}
CALL = ScriptedToolCall("shell", '{"command": ["ls"]}', call_id="call_ls")


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    NO_STREAMING.forget()  # a port may be reused by the next test's server
    yield
    NO_STREAMING.forget()


@pytest.fixture
def make_fake() -> Iterator[Any]:
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
    base: dict[str, Any] = {"retry_base_s": 0.01, "timeout_s": 5, "max_retries": 3, "api_key": None}
    base.update(kw)
    return ProviderConfig(base_url=fake.base_url, model="fake-model", wire_api=wire, **base)  # type: ignore[arg-type]


def turn(cfg: ProviderConfig, provider: Provider | None = None) -> list[Event]:
    tools = [TOOL_CHAT if cfg.wire_api == "chat" else TOOL_RESPONSES]

    async def go() -> list[Event]:
        p = provider or Provider(cfg)
        try:
            return [ev async for ev in p.stream(CONVO, tools)]
        finally:
            if provider is None:
                await p.close()

    return asyncio.run(asyncio.wait_for(go(), 30))


def streamed(fake: FakeOpenAI) -> list[bool]:
    return [bool(r.body.get("stream")) for r in fake.requests if r.method == "POST"]


@pytest.mark.parametrize("wire", WIRES)
def test_refused_streaming_repeats_the_turn_unstreamed_at_once_and_is_remembered(
    make_fake: Any, wire: str
) -> None:
    fake = make_fake([Turn(text="Listing.", tool_calls=[CALL], usage=(70, 9)), Turn(text="done", usage=(80, 2))],
                     refuse_streamed_tools=True)
    cfg = config(fake, wire, retry_base_s=30.0)  # a backoff would hang the test
    events = turn(cfg)
    assert isinstance(events[0], StreamingOff) and STREAMED_TOOLS_REFUSAL in events[0].reason
    assert "without streaming" in events[0].reason
    assert not any(isinstance(e, Retrying | StreamError) for e in events)
    assert events[1:] == [
        TextDelta("Listing."), ToolCallStart("call_ls", "shell", 0),
        ToolCallDone("call_ls", "shell", '{"command": ["ls"]}'), Usage(70, 9), TurnDone("tool_calls"),
    ]
    assert streamed(fake) == [True, False] and fake.refused == 1
    # Another session on the same endpoint and model: unstreamed from its first request, and
    # it says so once.
    events = turn(cfg)
    assert isinstance(events[0], StreamingOff)
    assert events[1:] == [TextDelta("done"), Usage(80, 2), TurnDone("stop")]
    assert streamed(fake) == [True, False, False] and fake.violations == []


@pytest.mark.parametrize("wire", WIRES)
def test_stream_false_never_streams_and_errors_are_handled_as_when_streamed(make_fake: Any, wire: str) -> None:
    fake = make_fake([
        Turn(text="a", error=Fault("status", status=429, retry_after_ms=10)),
        Turn(text="b", error=Fault("garbage")),
        Turn(text="c", error=Fault("stream_error")),
    ])
    cfg = config(fake, wire, stream=False, sources={"stream": "[providers.local].stream in config.toml"})

    async def three() -> list[list[Event]]:
        p = Provider(cfg)
        try:
            return [[ev async for ev in p.stream(CONVO, [])] for _ in range(3)]
        finally:
            await p.close()

    first, second, third = asyncio.run(asyncio.wait_for(three(), 30))
    assert isinstance(first[0], StreamingOff) and "[providers.local].stream" in first[0].reason
    assert not any(isinstance(e, StreamingOff) for e in second + third)  # said once
    for events, text in ((first, "a"), (second, "b"), (third, "c")):
        retries = [e for e in events if isinstance(e, Retrying)]
        assert len(retries) == 1 and not retries[0].saturated
        assert events[-3:][0] == TextDelta(text) and events[-1] == TurnDone("stop")
    assert "HTTP 429" in next(e for e in first if isinstance(e, Retrying)).reason
    assert not any(streamed(fake))


def test_stream_true_treats_a_refusal_as_an_error(make_fake: Any) -> None:
    fake = make_fake([Turn(text="x")], refuse_streamed_tools=True)
    events = turn(config(fake, "chat", stream=True, max_retries=1))
    assert isinstance(events[-1], StreamError) and STREAMED_TOOLS_REFUSAL in events[-1].message
    assert all(streamed(fake)) and not any(isinstance(e, StreamingOff) for e in events)


@pytest.mark.parametrize("wire", WIRES)
def test_unstreamed_reply_that_failed_or_was_cut_short(make_fake: Any, wire: str) -> None:
    fake = make_fake([Turn(text="x", error=Fault("status", status=404, times=5))])
    events = turn(config(fake, wire, stream=False))
    assert isinstance(events[-1], StreamError) and not events[-1].retryable and "HTTP 404" in events[-1].message


def test_cut_streams_and_503_in_a_row_say_the_endpoint_is_saturated(make_fake: Any) -> None:
    fake = make_fake([Turn(text="a", error=Fault("cut", times=3)), Turn(text="b", error=Fault("status", status=500,
                                                                                             times=2))])
    cfg = config(fake, "chat")
    events = turn(cfg)
    assert [e.saturated for e in events if isinstance(e, Retrying)] == [False, True, True]
    events = turn(cfg)  # plain server errors are not saturation
    assert [e.saturated for e in events if isinstance(e, Retrying)] == [False, False]


def test_a_stream_cut_while_the_server_is_busy_is_retried(make_fake: Any) -> None:
    fake = make_fake([Turn(text="slow", delay_s=60), Turn(text="quick")], max_streams=1)
    cfg = config(fake, "chat", retry_base_s=0.05, max_retries=8)

    async def both() -> tuple[list[Event], list[Event]]:
        p1, p2 = Provider(cfg), Provider(cfg)
        try:
            slow = asyncio.ensure_future(_collect(p1))
            while fake.in_flight < 1:
                await asyncio.sleep(0.01)
            quick_task = asyncio.ensure_future(_collect(p2))
            while fake.cuts < 3:
                await asyncio.sleep(0.01)
            fake.release()
            return await slow, await quick_task
        finally:
            await p1.close()
            await p2.close()

    slow, quick = asyncio.run(asyncio.wait_for(both(), 30))
    assert TextDelta("slow") in slow and slow[-1] == TurnDone("stop")
    assert not any(isinstance(e, Retrying) for e in slow)
    sat = [e.saturated for e in quick if isinstance(e, Retrying)]
    assert sat[:3] == [False, True, True] and quick[-1] == TurnDone("stop")


async def _collect(p: Provider) -> list[Event]:
    return [ev async for ev in p.stream(CONVO, [])]


@pytest.mark.parametrize(("status", "message", "refused"), [
    (500, STREAMED_TOOLS_REFUSAL, True),
    (400, "streaming is not supported with tools", True),
    (422, "Tool calling with stream=true is unsupported", True),
    (500, "internal error", False),
    (503, "upstream stream closed", False),
    (200, STREAMED_TOOLS_REFUSAL, False),
])
def test_what_counts_as_a_refusal_of_streaming(status: int, message: str, refused: bool) -> None:
    assert refuses_streaming(status, message) is refused


# -- where a setting came from -----------------------------------------------------------


def test_choose_provider_names_each_settings_source() -> None:
    cfg = Config.model_validate({"providers": {"local": {"base_url": "http://127.0.0.1:1/v1", "model": "m",
                                                         "wire_api": "responses", "stream": False}}})
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:2/v1", "WORKBENCH_WIRE_API": "responses"}
    default = cfg.choose_provider("default", env=env)
    assert default.settings.wire_api == "responses" and default.settings.model == "gpt-5.1-codex"
    assert default.sources == {"base_url": "OPENAI_BASE_URL", "wire_api": "WORKBENCH_WIRE_API"}
    local = cfg.choose_provider("local", env=env)
    assert local.settings.stream is False and local.settings.base_url == "http://127.0.0.1:1/v1"
    assert local.sources["wire_api"] == "[providers.local].wire_api in config.toml"
    over = cfg.choose_provider("local", {"model": "other", "wire_api": "chat"}, env=env)
    assert (over.settings.model, over.settings.wire_api) == ("other", "chat")
    assert over.sources["model"] == "--model" and over.sources["wire_api"] == "--wire-api"
    with pytest.raises(ConfigError, match=r"unknown provider 'nope' \(defined: local\)"):
        cfg.choose_provider("nope")
    with pytest.raises(ConfigError, match="--wire-api"):
        cfg.choose_provider("local", {"wire_api": "soap"})
    with pytest.raises(ValidationError):
        Config.model_validate({"providers": {"local": {"stream": "maybe"}}})


@pytest.mark.parametrize("source", ["WORKBENCH_WIRE_API", "--wire-api", "[providers.x].wire_api in config.toml"])
def test_the_responses_api_hint_names_the_setting_that_chose_it(make_fake: Any, source: str) -> None:
    fake = make_fake([Turn(text="x")], no_responses=True)
    events = turn(config(fake, "responses", sources={"wire_api": source}))
    err = events[-1]
    assert isinstance(err, StreamError) and "HTTP 404" in err.message and not err.retryable
    assert f'{source} chose "responses", set it to "chat"' in err.message
    assert [r.path for r in fake.requests] == ["/v1/responses"]


def test_404_and_401_name_where_model_url_and_key_came_from(make_fake: Any) -> None:
    fake = make_fake([Turn(text="x")], models=["real-model"], api_key="k")
    sources = {"model": "--model", "base_url": "OPENAI_BASE_URL", "api_key_env": "[providers.p].api_key_env"}
    err = turn(config(fake, "chat", sources=sources))[-1]
    assert isinstance(err, StreamError) and "no API key is set: set OPENAI_API_KEY (from [providers.p]" in err.message
    err = turn(config(fake, "chat", sources=sources, api_key="k"))[-1]
    assert isinstance(err, StreamError)
    assert err.message.startswith(f"model 'fake-model' (set by --model) is not served by {fake.base_url}")


def test_make_provider_config_carries_stream_and_sources() -> None:
    s = ProviderSettings(model="m", stream=False)
    cfg = make_provider_config(s, {}, {"model": "--model"})
    assert cfg.stream is False and cfg.sources == {"model": "--model"}
