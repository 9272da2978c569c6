"""The built-in agent loop: model turns, tool calls, approvals, compaction and resume.

The loop knows nothing about the daemon. It talks to an `AgentHost` (the daemon's
session, or a test double) that records transcript entries, stores conversation items,
keeps the pending approval and shows the session's state. Every item is stored as soon as
it exists, so a daemon killed at any point reloads a valid conversation: a tool call that
never got its result is answered on resume, and a pending approval is asked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from workbench.agent.compaction import compacted, should_compact
from workbench.agent.conversation import (
    AssistantMessage,
    Item,
    SystemMessage,
    ToolCallItem,
    ToolResult,
    UserMessage,
    estimate_tokens,
)
from workbench.agent.events import Retrying, StreamError, StreamingOff, TextDelta, ToolCallDone, Usage
from workbench.agent.prompts import COMPACT_PROMPT, PromptContext, system_prompt
from workbench.agent.providers import Provider, cost_usd
from workbench.agent.tools import (
    CommandRunner,
    ParsedCall,
    ToolCall,
    ToolOutcome,
    chat_tool_schemas,
    execute,
    is_known_read_only,
    parse_call,
    responses_tool_schemas,
)
from workbench.core.models import IDLE_REASON
from workbench.errors import UsageError, WorkbenchError

log = logging.getLogger(__name__)

Status = Literal["running", "waiting", "review", "error"]
Decision = Literal["approve", "approve_always", "deny"]
APPROVAL_MODES = ("suggest", "auto-edit", "full-auto")

RESTART_RESULT = (
    "This call was cut off: the workbench daemon restarted while it was running or before "
    "it ran, so it may not have completed. Check the current state before repeating it."
)
INTERRUPT_RESULT = "The user interrupted the turn; this call was stopped or never ran."
# A finished turn that changed nothing: the same reason a terminal agent's idle prompt gets.

# Provider error texts that mean "the request is larger than the context window".
_OVERFLOW = re.compile(
    r"context[_ ]length|context window|maximum context|too many tokens|prompt is too long", re.I
)


class AgentHost(Protocol):
    """What the loop needs from whoever runs it (the daemon's session or a test)."""

    def record(self, kind: str, data: dict[str, Any]) -> None: ...

    def delta(self, text: str) -> None: ...

    def set_status(self, status: Status, reason: str = "") -> None: ...

    def append_items(self, items: list[Item], generation: int) -> None: ...

    def replace_items(self, items: list[Item], generation: int) -> None: ...

    def set_approval(self, data: dict[str, Any] | None) -> None: ...

    def add_usage(self, tokens_in: int, tokens_out: int, cost: float) -> None: ...

    def save_meta(self, key: str, value: Any) -> None: ...

    async def worktree_changed(self) -> bool: ...


@dataclass
class LoopOptions:
    root: Path
    prompt: PromptContext
    compact_threshold: float = 0.9
    max_output_bytes: int = 16_384
    command_timeout_ms: int = 120_000
    max_turns: int = 200


@dataclass
class Grants:
    """Approvals given with `--always`: exact commands, and edits in general."""

    commands: set[str] = field(default_factory=set)
    patches: bool = False

    @staticmethod
    def key(argv: Iterable[str]) -> str:
        return json.dumps(list(argv))

    def to_dict(self) -> dict[str, Any]:
        return {"commands": sorted(self.commands), "patches": self.patches}

    @classmethod
    def from_dict(cls, d: Any) -> Grants:
        if not isinstance(d, dict):
            return cls()
        cmds = d.get("commands")
        return cls(
            commands={c for c in cmds if isinstance(c, str)} if isinstance(cmds, list) else set(),
            patches=bool(d.get("patches")),
        )


def needs_approval(mode: str, parsed: ParsedCall, grants: Grants) -> bool:
    """The approval policy: whether `parsed` must wait for the user under `mode`."""
    if parsed.kind in ("update_plan", "invalid") or mode == "full-auto":
        return False
    if parsed.kind == "apply_patch":
        return mode == "suggest" and not grants.patches
    argv = parsed.argv or []
    if Grants.key(argv) in grants.commands:
        return False
    return not (mode == "auto-edit" and is_known_read_only(argv))


def _denied_text(parsed: ParsedCall, reason: str) -> str:
    what = "patch" if parsed.kind == "apply_patch" else "command"
    text = f"The user denied this {what}; it was not run."
    if reason.strip():
        return f"{text} Their reason: {reason.strip()}"
    return f"{text} They gave no reason: try another way, or ask them."


class Agent:
    """One session's conversation and the task that works on it."""

    def __init__(
        self,
        provider: Provider,
        host: AgentHost,
        runner: CommandRunner,
        opts: LoopOptions,
        *,
        items: list[Item] | None = None,
        generation: int = 0,
        pending: dict[str, Any] | None = None,
        grants: Grants | None = None,
        queued: list[str] | None = None,
    ) -> None:
        self.provider = provider
        self.host = host
        self.runner = runner
        self.opts = opts
        self.items: list[Item] = list(items or [])
        self.generation = generation
        self.grants = grants or Grants()
        self.pending: dict[str, Any] | None = None
        self.context_tokens = estimate_tokens(self.items)
        self.turns_total = 0
        self._answer: asyncio.Future[tuple[Decision, str]] | None = None
        self._queue: list[str] = list(queued or [])
        self._task: asyncio.Task[None] | None = None
        self._partial: list[str] = []
        self._compact_requested = False
        wire = provider.cfg.wire_api
        self._tools = responses_tool_schemas() if wire == "responses" else chat_tool_schemas()
        if pending is not None:
            self.pending = dict(pending)
            self._answer = asyncio.get_running_loop().create_future()

    # -- state ---------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def approval_mode(self) -> str:
        return self.opts.prompt.approval

    def system_text(self) -> str:
        return system_prompt(self.opts.prompt)

    def dangling_calls(self) -> list[ToolCallItem]:
        """Calls of the last assistant message that have no result yet."""
        for i in range(len(self.items) - 1, -1, -1):
            it = self.items[i]
            if isinstance(it, AssistantMessage):
                answered = {r.call_id for r in self.items[i + 1 :] if isinstance(r, ToolResult)}
                return [c for c in it.tool_calls if c.call_id not in answered]
        return []

    # -- starting ------------------------------------------------------------------------

    def begin(self, task: str) -> None:
        """A new conversation: the system prompt, then the task (if any) starts a run."""
        self.items = [SystemMessage(self.system_text())]
        self.generation = 0
        self.host.append_items(self.items, 0)
        self.context_tokens = estimate_tokens(self.items)
        if task.strip():
            self.send(task)

    def resume(self) -> bool:
        """After a reload from the store. Returns True when a run started at once (a pending
        approval to wait for, or queued messages); otherwise the agent is idle."""
        dangling = self.dangling_calls()
        if self.pending is not None and any(c.call_id == self.pending.get("call_id") for c in dangling):
            self._start()
            return True
        if self.pending is not None:  # stale: its call was answered already
            self._clear_pending()
        if dangling:
            self._answer_calls(dangling, RESTART_RESULT)
        if self._queue:
            self._start()
            return True
        return False

    def send(self, text: str) -> bool:
        """Add a user message. Returns True if it waits for the current turn to reach a
        point where it can be delivered, False if it started a new run."""
        if not text.strip():
            raise UsageError("the message is empty")
        self.host.record("user", {"text": text})
        self._queue.append(text)
        self.host.save_meta("queued", list(self._queue))
        if self.busy:
            return True
        self._start()
        return False

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    # -- answering -----------------------------------------------------------------------

    def answer(self, decision: Decision, reason: str = "") -> dict[str, Any]:
        """Approve or deny the pending call; returns what was pending."""
        if self.pending is None or self._answer is None or self._answer.done():
            raise UsageError("no approval is pending for this session")
        if decision == "approve_always":
            if self.pending.get("kind") == "patch":
                self.grants.patches = True
            else:
                self.grants.commands.add(Grants.key(self.pending.get("argv") or []))
            self.host.save_meta("approval_grants", self.grants.to_dict())
        pending = dict(self.pending)
        self._answer.set_result((decision, reason))
        return pending

    async def interrupt(self) -> bool:
        """Stop the current turn; the conversation stays valid and the agent goes idle."""
        if not self.busy:
            return False
        await self._cancel()
        partial = "".join(self._partial)
        self._partial = []
        if partial:
            msg = AssistantMessage(partial)
            self._append(msg)
            self.host.record("assistant", {"text": partial, "interrupted": True})
        dangling = self.dangling_calls()
        if dangling:
            self._answer_calls(dangling, INTERRUPT_RESULT)
        if self.pending is not None:
            self._clear_pending()
        self._flush_queue()
        self.host.record("interrupted", {"reason": "interrupted by the user"})
        await self._settle()
        return True

    async def stop(self) -> None:
        """Cancel any work without touching the conversation: resume() picks it up."""
        await self._cancel()

    async def compact(self) -> dict[str, Any]:
        """Compact now (idle), or before the next model request (busy)."""
        if self.busy:
            self._compact_requested = True
            return {"scheduled": True}
        result: dict[str, Any] = {}

        async def standalone() -> None:
            self.host.set_status("running", "compacting the conversation")
            try:
                res = await self._compact("requested by the user")
            finally:
                await self._settle()
            if isinstance(res, str):
                raise WorkbenchError(f"compaction failed: {res}")
            result.update(res)

        task = self._task = asyncio.get_running_loop().create_task(standalone())
        await asyncio.wait([task])  # an interrupt cancels the task, not our caller
        if task.cancelled():
            raise WorkbenchError("compaction was interrupted")
        task.result()
        return result

    async def _cancel(self) -> None:
        task = self._task
        if task is None or task.done():
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def _clear_pending(self) -> None:
        self.pending = None
        self._answer = None
        self.host.set_approval(None)

    # -- the run -------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._work()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug here must not take the daemon (or the session) down
            log.exception("agent loop failed")
            msg = f"internal error in the agent loop: {type(e).__name__}: {e}"
            self.host.record("error", {"message": msg})
            self.host.set_status("error", msg)

    async def _work(self) -> None:
        if self.pending is None:  # a restored approval goes straight back to waiting
            self.host.set_status("running")
        await self._run_calls(self.dangling_calls())
        turns = 0
        while True:
            self._flush_queue()
            if self._compact_requested or should_compact(
                self.context_tokens, self.provider.cfg.context_window, self.opts.compact_threshold
            ):
                why = "requested by the user" if self._compact_requested else "context nearly full"
                self._compact_requested = False
                await self._compact(why)
            if turns >= self.opts.max_turns:
                msg = (
                    f"stopped after {turns} model turns without finishing (agent.max_turns); "
                    "send a message to let it continue"
                )
                self.host.record("error", {"message": msg})
                self.host.set_status("error", msg)
                return
            reply = await self._model_turn()
            if reply is None:
                return
            turns += 1
            self.turns_total += 1
            if not reply.tool_calls:
                if self._queue:
                    continue
                break
            await self._run_calls(reply.tool_calls)
        await self._settle()

    async def _settle(self) -> None:
        """The model is done: review if the worktree changed, else waiting for a message."""
        try:
            changed = await self.host.worktree_changed()
        except Exception:  # git trouble must not hide the answer
            log.exception("checking the worktree failed")
            changed = False
        if changed:
            self.host.set_status("review")
        else:
            self.host.set_status("waiting", IDLE_REASON)

    def _flush_queue(self) -> None:
        """Deliver queued user messages (recorded in the transcript when they were sent)."""
        if not self._queue:
            return
        msgs: list[Item] = [UserMessage(t) for t in self._queue]
        self._queue.clear()
        self.items.extend(msgs)
        self.host.append_items(msgs, self.generation)
        self.host.save_meta("queued", [])

    def _append(self, item: Item) -> None:
        self.items.append(item)
        self.host.append_items([item], self.generation)

    def _answer_calls(self, calls: list[ToolCallItem], text: str) -> None:
        for c in calls:
            self._append(ToolResult(c.call_id, text, is_error=True))
            self.host.record("tool_output", {"call_id": c.call_id, "output": text, "is_error": True})

    # -- model turns ---------------------------------------------------------------------

    async def _stream(
        self, items: list[Item], live: bool
    ) -> tuple[AssistantMessage, Usage | None] | str:
        """One model request; the reply, or an error message once retries are exhausted."""
        text: list[str] = []
        calls: list[ToolCallItem] = []
        usage: Usage | None = None
        self._partial = text if live else []
        async with contextlib.aclosing(self.provider.stream(items, self._tools)) as events:
            async for ev in events:
                if isinstance(ev, TextDelta):
                    text.append(ev.text)
                    if live:
                        self.host.delta(ev.text)
                elif isinstance(ev, ToolCallDone):
                    calls.append(ToolCallItem(ev.call_id, ev.name, ev.arguments))
                elif isinstance(ev, Usage):
                    usage = ev
                elif isinstance(ev, Retrying):
                    # The next attempt streams the whole turn again.
                    text.clear()
                    calls.clear()
                    usage = None
                    self.host.record("retry", {
                        "attempt": ev.attempt, "delay_s": round(ev.delay_s, 3), "reason": ev.reason,
                        "saturated": ev.saturated,
                    })
                    busy = "the endpoint is saturated or slow; " if ev.saturated else ""
                    self.host.set_status(
                        "running", f"{busy}retry {ev.attempt} in {ev.delay_s:.1f}s: {ev.reason}"[:300]
                    )
                elif isinstance(ev, StreamingOff):
                    self.host.record("notice", {"message": ev.reason})
                elif isinstance(ev, StreamError):
                    self._partial = []
                    return ev.message
        self._partial = []
        return AssistantMessage("".join(text), calls), usage

    async def _model_turn(self) -> AssistantMessage | None:
        tried_compaction = False
        while True:
            res = await self._stream(self.items, live=True)
            if not isinstance(res, str):
                break
            if not tried_compaction and _OVERFLOW.search(res) and len(self.items) > 2:
                tried_compaction = True
                self.host.record("error", {"message": res})
                if isinstance(await self._compact("the request was larger than the context window"), dict):
                    continue
            self.host.record("error", {"message": res})
            self.host.set_status("error", res)
            return None
        msg, usage = res
        self._append(msg)
        if msg.text:
            self.host.record("assistant", {"text": msg.text})
        for c in msg.tool_calls:
            parsed = parse_call(ToolCall(c.call_id, c.name, c.arguments))
            self.host.record("tool_call", {"call_id": c.call_id, "name": c.name, "describe": parsed.describe()})
        if usage is not None:
            self._account(usage, context=True)
        else:
            self.context_tokens = estimate_tokens(self.items)
        self.host.set_status("running")
        return msg

    def _account(self, u: Usage, context: bool) -> None:
        cost = cost_usd(self.provider.cfg, u.input_tokens, u.output_tokens)
        if context:
            self.context_tokens = u.input_tokens + u.output_tokens
        self.host.add_usage(u.input_tokens, u.output_tokens, cost)
        self.host.record(
            "usage",
            {
                "tokens_in": u.input_tokens,
                "tokens_out": u.output_tokens,
                "cached_tokens": u.cached_tokens,
                "cost_usd": cost,
                "context_tokens": self.context_tokens,
                "context_window": self.provider.cfg.context_window,
            },
        )

    # -- tools ---------------------------------------------------------------------------

    async def _run_calls(self, calls: list[ToolCallItem]) -> None:
        for call in calls:
            parsed = parse_call(ToolCall(call.call_id, call.name, call.arguments))
            outcome = await self._handle(parsed)
            if outcome.plan is not None:
                self.host.record("plan", {"steps": outcome.plan, "explanation": parsed.explanation or ""})
            self._append(ToolResult(call.call_id, outcome.output, outcome.is_error))
            self.host.record(
                "tool_output", {"call_id": call.call_id, "output": outcome.output, "is_error": outcome.is_error}
            )

    async def _handle(self, parsed: ParsedCall) -> ToolOutcome:
        if needs_approval(self.approval_mode, parsed, self.grants):
            decision, reason = await self._ask(parsed)
            if decision == "deny":
                return ToolOutcome(_denied_text(parsed, reason), True)
        try:
            return await execute(
                parsed,
                root=self.opts.root,
                runner=self.runner,
                max_output_bytes=self.opts.max_output_bytes,
                default_timeout_ms=self.opts.command_timeout_ms,
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the model must get an answer whatever broke
            log.exception("tool %s failed", parsed.name)
            return ToolOutcome(f"the {parsed.name} tool failed: {type(e).__name__}: {e}", True)

    async def _ask(self, parsed: ParsedCall) -> tuple[Decision, str]:
        restored = self.pending is not None and self.pending.get("call_id") == parsed.call_id
        if restored and self._answer is not None:
            fut = self._answer
        else:
            kind = "patch" if parsed.kind == "apply_patch" else "command"
            data: dict[str, Any] = {
                "call_id": parsed.call_id,
                "kind": kind,
                "describe": parsed.describe(),
                "requested_at": time.time(),
            }
            if kind == "patch":
                data["patch"] = parsed.patch
            else:
                data["argv"] = list(parsed.argv or [])
            self.pending = data
            fut = self._answer = asyncio.get_running_loop().create_future()
            self.host.set_approval(data)
            self.host.record("approval_request", {k: v for k, v in data.items() if k != "requested_at"})
        first = str(self.pending["describe"] if self.pending else "").splitlines()[0][:200]
        self.host.set_status("waiting", f"approve {first}")
        decision, reason = await fut
        call_id = parsed.call_id
        self._clear_pending()
        self.host.record("approval", {"decision": decision, "reason": reason, "call_id": call_id})
        self.host.set_status("running")
        return decision, reason

    # -- compaction ----------------------------------------------------------------------

    async def _compact(self, why: str) -> dict[str, Any] | str:
        before = self.context_tokens
        self.host.set_status("running", "compacting the conversation")
        res = await self._stream([*self.items, UserMessage(COMPACT_PROMPT)], live=False)
        if isinstance(res, str):
            self.host.record("error", {"message": f"compaction failed: {res}"})
            return res
        msg, usage = res
        if usage is not None:
            self._account(usage, context=False)
        result = compacted(
            self.items, msg.text, self.system_text, self.provider.cfg.context_window, before
        )
        self.generation += 1
        self.items = result.items
        self.host.replace_items(list(result.items), self.generation)
        self.context_tokens = result.after
        data = {"before": result.before, "after": result.after, "reason": why}
        self.host.record("compaction", data)
        self.host.set_status("running")
        return data
