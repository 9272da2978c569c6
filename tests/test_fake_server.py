"""The scripted fake OpenAI server, over real HTTP (raw and through the official SDK)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from workbench.errors import ConfigError
from workbench.fakes.model_checks import check_chat_request, check_responses_request
from workbench.fakes.model_server import (
    FINISHED_TEXT,
    FakeOpenAI,
    Fault,
    Script,
    ScriptedToolCall,
    Turn,
    load_script_file,
    main,
)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    f = FakeOpenAI([
        Script("fix the bug", [
            Turn(text="Looking.", tool_calls=[ScriptedToolCall("shell", '{"command": ["ls"]}',
                                                               call_id="call_x")],
                 usage=(50, 10)),
            Turn(text="Fixed it.", usage=(80, 5)),
        ]),
        Script("", [Turn(text="default one"), Turn(text="default two")]),
    ])
    f.start()
    yield f
    f.stop()


def post(url: str, body: Any, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def chat_body(text: str, stream: bool = False) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], "stream": stream}


def test_non_streaming_chat_through_sdk(fake: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key="x", max_retries=0)
    try:
        r = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "please fix the bug now"}])
        msg = r.choices[0].message
        assert msg.content == "Looking."
        assert msg.tool_calls is not None and msg.tool_calls[0].id == "call_x"
        assert msg.tool_calls[0].function.name == "shell"  # type: ignore[union-attr]
        assert r.choices[0].finish_reason == "tool_calls"
        assert r.usage is not None
        assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (50, 10)
        # The other script is untouched by that request.
        r2 = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert r2.choices[0].message.content == "default one"
        models = [m.id for m in client.models.list()]
        assert models == ["fake-model"]
    finally:
        client.close()


def test_non_streaming_responses_through_sdk(fake: FakeOpenAI) -> None:
    client = openai.OpenAI(base_url=fake.base_url, api_key="x", max_retries=0)
    try:
        r = client.responses.create(model="m", input="fix the bug please")
        assert r.output_text == "Looking."
        calls = [o for o in r.output if o.type == "function_call"]
        assert [(c.call_id, c.name) for c in calls] == [("call_x", "shell")]
        assert r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens) == (50, 10)
    finally:
        client.close()


def test_scripts_advance_per_match_then_finish(fake: FakeOpenAI) -> None:
    url = fake.base_url + "/chat/completions"

    def text(prompt: str) -> str:
        status, _, raw = post(url, chat_body(prompt))
        assert status == 200
        return str(json.loads(raw)["choices"][0]["message"]["content"])

    assert text("hello") == "default one"
    assert text("fix the bug") == "Looking."
    assert text("hello again") == "default two"
    assert text("fix the bug") == "Fixed it."
    assert text("fix the bug") == FINISHED_TEXT
    assert text("hello") == FINISHED_TEXT
    assert [r.script for r in fake.requests] == ["", "fix the bug", "", "fix the bug",
                                                  "fix the bug", ""]


def test_no_script_matches() -> None:
    with FakeOpenAI([Script("only this", [Turn(text="x")])]) as f:
        status, _, raw = post(f.base_url + "/chat/completions", chat_body("other"))
        assert status == 200
        assert "no script matches" in json.loads(raw)["choices"][0]["message"]["content"]


def test_faults_are_served_first_and_do_not_advance() -> None:
    turns = [Turn(text="after faults", error=Fault("status", 429, retry_after_ms=1500, times=2)),
             Turn(text="second")]
    with FakeOpenAI([Script("", turns)]) as f:
        url = f.base_url + "/chat/completions"
        s1, h1, b1 = post(url, chat_body("x"))
        s2, _, _ = post(url, chat_body("x"))
        s3, _, b3 = post(url, chat_body("x"))
        s4, _, b4 = post(url, chat_body("x"))
    assert (s1, s2, s3, s4) == (429, 429, 200, 200)
    assert h1["retry-after-ms"] == "1500"
    err = json.loads(b1)["error"]
    assert err["code"] == "rate_limit_exceeded" and "429" in err["message"]
    assert json.loads(b3)["choices"][0]["message"]["content"] == "after faults"
    assert json.loads(b4)["choices"][0]["message"]["content"] == "second"


def test_streaming_chat_wire_format(fake: FakeOpenAI) -> None:
    body = {**chat_body("fix the bug", stream=True), "stream_options": {"include_usage": True}}
    status, headers, raw = post(fake.base_url + "/chat/completions", body)
    assert status == 200 and headers["content-type"] == "text/event-stream"
    blocks = [b for b in raw.decode().split("\n\n") if b]
    assert all(b.startswith("data: ") for b in blocks)
    assert blocks[-1] == "data: [DONE]"
    chunks = [json.loads(b[6:]) for b in blocks[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 50
    args = "".join(
        tc["function"].get("arguments", "")
        for c in chunks for ch in c["choices"] for tc in ch["delta"].get("tool_calls", [])
    )
    assert args == '{"command": ["ls"]}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_streaming_responses_wire_format(fake: FakeOpenAI) -> None:
    body = {"model": "m", "input": "fix the bug", "stream": True}
    status, _, raw = post(fake.base_url + "/responses", body)
    assert status == 200
    events = []
    for block in raw.decode().split("\n\n"):
        if block:
            ev_line, data_line = block.split("\n")
            data = json.loads(data_line.removeprefix("data: "))
            assert ev_line == f"event: {data['type']}"
            events.append(data)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert kinds.count("response.function_call_arguments.delta") == 3
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    usage = events[-1]["response"]["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (50, 10)


def test_unknown_endpoint_and_bad_json(fake: FakeOpenAI) -> None:
    status, _, raw = post(fake.base_url + "/embeddings", {"x": 1})
    assert status == 404 and "no such endpoint" in json.loads(raw)["error"]["message"]
    req = urllib.request.Request(fake.base_url + "/chat/completions", data=b"{nope",
                                 method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 400
    assert [r.path for r in fake.requests] == ["/v1/embeddings", "/v1/chat/completions"]


def test_requests_are_recorded(fake: FakeOpenAI) -> None:
    post(fake.base_url + "/chat/completions", chat_body("hello"), {"X-Probe": "yes"})
    (r,) = fake.requests
    assert (r.method, r.path) == ("POST", "/v1/chat/completions")
    assert r.headers["x-probe"] == "yes"
    assert r.body == chat_body("hello")


def test_stop_releases_a_hanging_connection() -> None:
    f = FakeOpenAI([Script("", [Turn(text="x", error=Fault("hang", delay_s=60))])])
    f.start()
    result: list[object] = []

    def client() -> None:
        try:
            post(f.base_url + "/chat/completions", chat_body("x", stream=True))
            result.append("returned")
        except Exception as e:  # the connection is cut, which is the point
            result.append(e)

    t = threading.Thread(target=client)
    t.start()
    time.sleep(0.3)
    assert t.is_alive()  # really hanging
    f.stop()
    t.join(5)
    assert not t.is_alive()
    assert result


# -- protocol checks ------------------------------------------------------------------------


def test_chat_violations() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "shell", "arguments": "{}"}}
    ok = {"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
        {"role": "user", "content": "more"},
    ]}
    assert check_chat_request(ok) == []
    dangling = {"model": "m", "messages": [
        {"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "zz", "content": "x"}]}
    (v,) = check_chat_request(dangling)
    assert "'zz' answers no earlier tool call" in v
    unanswered = {"model": "m", "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [call]}]}
    (v,) = check_chat_request(unanswered)
    assert "['c1'] have no tool result" in v
    late = {"model": "m", "messages": [
        {"role": "user", "content": "hi"}, {"role": "assistant", "tool_calls": [call]},
        {"role": "user", "content": "wait"},
        {"role": "tool", "tool_call_id": "c1", "content": "x"}]}
    vs = check_chat_request(late)
    assert any("not answered before this message" in x for x in vs)
    assert any("does not directly follow" in x for x in vs)
    wrong_tools = {**ok, "tools": [{"type": "function", "name": "shell"}]}
    assert any("no 'function' object" in x for x in check_chat_request(wrong_tools))


def test_responses_violations() -> None:
    ok = {"model": "m", "input": [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ], "tools": [{"type": "function", "name": "shell", "parameters": {}}]}
    assert check_responses_request(ok) == []
    dangling = {"model": "m", "input": [
        {"role": "user", "content": "hi"},
        {"type": "function_call_output", "call_id": "c9", "output": "ok"}]}
    (v,) = check_responses_request(dangling)
    assert "'c9' answers no earlier function_call" in v
    unanswered = {"model": "m", "input": ok["input"][:2]}
    (v,) = check_responses_request(unanswered)
    assert "['c1'] have no function_call_output" in v
    chat_shaped_tools = {**ok, "tools": [{"type": "function", "function": {"name": "shell"}}]}
    assert any("top-level 'name'" in x for x in check_responses_request(chat_shaped_tools))


def test_violations_are_recorded_and_request_still_answered(fake: FakeOpenAI) -> None:
    body = {"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "ghost", "content": "x"}]}
    status, _, raw = post(fake.base_url + "/chat/completions", body)
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "default one"
    (v,) = fake.violations
    assert v.startswith("request 1 (/v1/chat/completions)") and "ghost" in v


# -- script files and the command line -------------------------------------------------------


SCRIPT_JSON = {
    "scripts": [
        {"match": "demo", "turns": [
            {"text": "Let me look.",
             "tool_calls": [{"name": "shell", "arguments": {"command": ["ls"]}, "chunks": 2}],
             "usage": [100, 20]},
            {"text": "Done.", "error": {"kind": "status", "status": 503, "times": 2}},
        ]},
        {"turns": [{"text": "hello"}]},
    ]
}


def test_load_script_file(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SCRIPT_JSON))
    scripts = load_script_file(p)
    assert [s.match for s in scripts] == ["demo", ""]
    t0, t1 = scripts[0].turns
    assert t0.tool_calls == [ScriptedToolCall("shell", '{"command": ["ls"]}', None, 2)]
    assert t0.usage == (100, 20)
    assert t1.error == Fault("status", 503, times=2)
    # A bare list works too.
    p.write_text(json.dumps(SCRIPT_JSON["scripts"]))
    assert load_script_file(p) == scripts


@pytest.mark.parametrize(("content", "message"), [
    ("{", "s.json:1: invalid JSON"),
    ('{"scripts": [{"turns": [{"txt": "x"}]}]}', "scripts[0].turns[0]: unknown key 'txt'"),
    ('[{"turns": [{"error": {"kind": "boom"}}]}]', "turns[0].error.kind: expected status, cut"),
    ('[{"turns": [{"usage": [1]}]}]', "usage: expected [input_tokens, output_tokens]"),
    ('[{"turns": [{"tool_calls": [{"arguments": "{}"}]}]}]', 'tool_calls[0]: missing "name"'),
    ('[{"match": 3, "turns": []}]', "[0].match: expected a string, got 3"),
    ('{"scripts": 1}', "expected a list of scripts"),
])
def test_bad_script_files(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "s.json"
    p.write_text(content)
    with pytest.raises(ConfigError) as e:
        load_script_file(p)
    assert message in str(e.value) and str(p) in str(e.value)


def test_missing_script_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read script file"):
        load_script_file(tmp_path / "nope.json")
    assert main(["--script", str(tmp_path / "nope.json")]) == 2


def test_command_line_serves_until_terminated(tmp_path: Path) -> None:
    p = tmp_path / "s.json"
    p.write_text(json.dumps(SCRIPT_JSON))
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.fakes.model_server", "--script", str(p), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        status, _, raw = post(url + "/chat/completions", chat_body("run the demo"))
        assert status == 200
        assert json.loads(raw)["choices"][0]["message"]["content"] == "Let me look."
    finally:
        proc.terminate()
        rc = proc.wait(10)
    assert rc == 0


def test_local_server_switches_leave_the_script_alone() -> None:
    from workbench.fakes.model_server import STREAMED_TOOLS_REFUSAL

    tools = [{"type": "function", "function": {"name": "shell", "parameters": {}}}]
    with FakeOpenAI([Script("", [Turn(text="one"), Turn(text="two")])],
                    refuse_streamed_tools=True, no_responses=True) as f:
        status, _, raw = post(f.base_url + "/chat/completions", {**chat_body("x", stream=True), "tools": tools})
        assert status == 500 and json.loads(raw)["error"]["message"] == STREAMED_TOOLS_REFUSAL
        status, _, _ = post(f.base_url + "/responses", {"model": "m", "input": "x"})
        assert status == 404
        # Unstreamed with tools, or streamed without: answered, from the script's first turn.
        status, _, raw = post(f.base_url + "/chat/completions", {**chat_body("x"), "tools": tools})
        assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "one"
        assert f.refused == 1


def test_max_streams_cuts_a_stream_while_the_server_is_busy_until_released() -> None:
    with FakeOpenAI([Script("", [Turn(text="slow", delay_s=60), Turn(text="quick")])], max_streams=1) as f:
        held: list[int] = []
        t = threading.Thread(target=lambda: held.append(post(f.base_url + "/chat/completions", chat_body("a"))[0]))
        t.start()
        deadline = time.monotonic() + 10
        while f.in_flight < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(http.client.IncompleteRead):  # headers, then the connection closes
            post(f.base_url + "/chat/completions", chat_body("b", stream=True))
        assert f.cuts == 1
        f.release()
        t.join(10)
        assert held == [200]
        # the handler counts itself out after the client has read the whole reply: wait for it
        deadline = time.monotonic() + 10
        while f.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)
        assert f.in_flight == 0
        status, _, raw = post(f.base_url + "/chat/completions", chat_body("c"))
        assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "quick"


def test_command_line_switches(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench.fakes.model_server", "--port", "0", "--no-responses",
         "--refuse-streamed-tools", "--max-streams", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert post(url + "/responses", {"model": "m", "input": "x"})[0] == 404
        tools = [{"type": "function", "function": {"name": "shell", "parameters": {}}}]
        assert post(url + "/chat/completions", {**chat_body("x", stream=True), "tools": tools})[0] == 500
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_it_handles_sigterm_before_it_says_where_it_listens() -> None:
    """A caller that stops the server right after reading its address gets a clean exit,
    never death by the signal (a loaded CI run got -15): the address line is written with
    SIGTERM already handled. The server's stdout is wrapped to note the handler at that
    moment."""
    code = (
        "import signal, sys\n"
        "from workbench.fakes import model_server\n"
        "class Out:\n"
        "    def write(self, s):\n"
        "        if s.strip():\n"
        "            dfl = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL\n"
        "            sys.__stdout__.write(f'{s.strip()} default-sigterm={dfl}\\n')\n"
        "            sys.__stdout__.flush()\n"
        "        return len(s)\n"
        "    def flush(self):\n"
        "        pass\n"
        "sys.stdout = Out()\n"
        "sys.exit(model_server.main(['--port', '0']))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url, note = proc.stdout.readline().split()
    assert url.startswith("http://127.0.0.1:") and note == "default-sigterm=False"
    proc.terminate()
    assert proc.wait(10) == 0
