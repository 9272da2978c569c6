"""A small ACP agent for the tests, on the SDK's agent side. What it does depends on the prompt:

  write NAME TEXT   plan, thought, message, an edit tool call with its diff, asks permission,
                    then writes NAME through the client's fs/write_text_file
  read PATH         reads PATH through fs/read_text_file and says what it got (or the error)
  put PATH TEXT     writes PATH through fs/write_text_file without asking (refusal tests)
  run COMMAND       runs COMMAND in a client terminal and says its output
  wait              streams a message, then waits until cancelled
  die               streams a message, then exits with code 3 mid-turn
  garbage           writes a line that is not JSON
  anything else     answers "echo: TEXT"
Flags: --no-load (no loadSession capability). Sessions are kept in $ACP_FAKE_STATE (a
directory) so that a new process can load them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from acp import (
    PROTOCOL_VERSION,
    plan_entry,
    run_agent,
    start_tool_call,
    tool_diff_content,
    update_agent_message_text,
    update_agent_thought_text,
    update_plan,
    update_tool_call,
)
from acp.schema import (
    AgentCapabilities,
    AllowedOutcome,
    Implementation,
    InitializeResponse,
    LoadSessionResponse,
    NewSessionResponse,
    PermissionOption,
    PromptResponse,
    ToolCallLocation,
    ToolCallUpdate,
    Usage,
    UsageUpdate,
)


class FakeAgent:
    def __init__(self, can_load: bool) -> None:
        self.can_load = can_load
        self.conn: Any = None
        self.cwd = "."
        self.cancelled: dict[str, asyncio.Event] = {}
        self.state = Path(os.environ.get("ACP_FAKE_STATE") or "/tmp")

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    async def initialize(self, protocol_version: int, client_capabilities: Any = None, client_info: Any = None,
                         **kw: Any) -> InitializeResponse:
        info = Implementation(name="fake-acp", version="0.1")
        return InitializeResponse(protocol_version=PROTOCOL_VERSION, agent_info=info,
                                  agent_capabilities=AgentCapabilities(load_session=self.can_load))

    def _history(self, sid: str) -> Path:
        return self.state / f"acp-fake-{sid}.json"

    async def new_session(self, cwd: str, mcp_servers: Any = None, **kw: Any) -> NewSessionResponse:
        self.cwd = cwd
        sid = "fake-" + uuid.uuid4().hex[:8]
        self._history(sid).write_text("[]")
        return NewSessionResponse(session_id=sid)

    async def load_session(self, cwd: str, session_id: str, mcp_servers: Any = None, **kw: Any) -> LoadSessionResponse:
        self.cwd = cwd
        for text in json.loads(self._history(session_id).read_text()):
            await self.say(session_id, text)
        return LoadSessionResponse()

    async def say(self, sid: str, text: str) -> None:
        await self.conn.session_update(session_id=sid, update=update_agent_message_text(text))

    async def cancel(self, session_id: str, **kw: Any) -> None:
        self.cancelled.setdefault(session_id, asyncio.Event()).set()

    async def prompt(self, prompt: list[Any], session_id: str, **kw: Any) -> PromptResponse:
        text = " ".join(getattr(b, "text", "") for b in prompt)
        hist = self._history(session_id)
        hist.write_text(json.dumps([*json.loads(hist.read_text()), f"(earlier) {text}"]))
        self.cancelled[session_id] = asyncio.Event()
        word, _, rest = text.partition(" ")
        handler = getattr(self, f"do_{word}", None)
        stop = await handler(session_id, rest) if handler else await self.do_echo(session_id, text)
        usage = Usage(input_tokens=10, output_tokens=5, total_tokens=15)
        return PromptResponse(stop_reason=stop, usage=usage)

    async def do_echo(self, sid: str, text: str) -> str:
        await self.say(sid, "echo: ")
        await self.say(sid, text)
        return "end_turn"

    async def do_write(self, sid: str, rest: str) -> str:
        name, _, body = rest.partition(" ")
        path = os.path.join(self.cwd, name)
        await self.conn.session_update(session_id=sid, update=update_plan([
            plan_entry(f"write {name}", status="in_progress"), plan_entry("report", status="pending")]))
        await self.conn.session_update(session_id=sid, update=update_agent_thought_text("the user wants a file"))
        await self.say(sid, f"I will write {name}.")
        call = start_tool_call("call-1", f"Write {name}", kind="edit", status="pending",
                               content=[tool_diff_content(path, body + "\n")], locations=[ToolCallLocation(path=path)])
        await self.conn.session_update(session_id=sid, update=call)
        options = [PermissionOption(option_id="yes", name="Allow", kind="allow_once"),
                   PermissionOption(option_id="always", name="Always", kind="allow_always"),
                   PermissionOption(option_id="no", name="Reject", kind="reject_once")]
        tc = ToolCallUpdate(tool_call_id="call-1", title=f"Write {name}", kind="edit",
                            content=[tool_diff_content(path, body + "\n")])
        res = await self.conn.request_permission(session_id=sid, tool_call=tc, options=options)
        if self.cancelled[sid].is_set():
            return "cancelled"
        if isinstance(res.outcome, AllowedOutcome) and res.outcome.option_id in ("yes", "always"):
            await self.conn.write_text_file(session_id=sid, path=path, content=body + "\n")
            await self.conn.session_update(session_id=sid, update=update_tool_call("call-1", status="completed"))
            await self.say(sid, f"wrote {name} ({res.outcome.option_id})")
        else:
            await self.conn.session_update(session_id=sid, update=update_tool_call("call-1", status="failed"))
            await self.say(sid, f"not writing {name}")
        await self.conn.session_update(session_id=sid, update=UsageUpdate(session_update="usage_update", used=1200,
                                                                         size=200000))
        return "end_turn"

    async def do_read(self, sid: str, path: str) -> str:
        try:
            res = await self.conn.read_text_file(session_id=sid, path=path)
            await self.say(sid, f"read: {res.content}")
        except Exception as e:
            await self.say(sid, f"read failed: {e}")
        return "end_turn"

    async def do_put(self, sid: str, rest: str) -> str:
        path, _, body = rest.partition(" ")
        try:
            await self.conn.write_text_file(session_id=sid, path=path, content=body)
            await self.say(sid, f"put {path}")
        except Exception as e:
            await self.say(sid, f"put failed: {e}")
        return "end_turn"

    async def do_run(self, sid: str, command: str) -> str:
        term = await self.conn.create_terminal(session_id=sid, command="/bin/sh", args=["-c", command], cwd=self.cwd)
        done = await self.conn.wait_for_terminal_exit(session_id=sid, terminal_id=term.terminal_id)
        out = await self.conn.terminal_output(session_id=sid, terminal_id=term.terminal_id)
        await self.conn.release_terminal(session_id=sid, terminal_id=term.terminal_id)
        await self.say(sid, f"exit {done.exit_code}: {out.output}")
        return "end_turn"

    async def do_wait(self, sid: str, rest: str) -> str:
        await self.say(sid, "waiting for cancel")
        await self.cancelled[sid].wait()
        return "cancelled"

    async def do_die(self, sid: str, rest: str) -> str:
        await self.say(sid, "about to die")
        await asyncio.sleep(0.2)
        sys.stderr.write("fake agent: dying on purpose\n")
        sys.stderr.flush()
        os._exit(3)

    async def do_garbage(self, sid: str, rest: str) -> str:
        await asyncio.sleep(0.1)
        os.write(1, b"this is not json\n")
        await asyncio.sleep(30)
        return "end_turn"


def main() -> None:
    asyncio.run(run_agent(FakeAgent(can_load="--no-load" not in sys.argv[1:])))


if __name__ == "__main__":
    main()
