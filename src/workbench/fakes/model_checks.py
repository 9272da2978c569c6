"""Request shape checks: what a real OpenAI-compatible server would reject.

The fake answers every well-formed request, so a client's protocol mistakes (a tool result
that answers no call, a call left without a result, tools in the other wire's shape) would
pass unseen; these checks name them, and the server records them in `violations`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal


def _check_tools(tools: Any, wire: Literal["chat", "responses"]) -> list[str]:
    out: list[str] = []
    if tools is None:
        return out
    if not isinstance(tools, list):
        return [f"tools is {type(tools).__name__}, not a list"]
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or t.get("type") != "function":
            out.append(f"tools[{i}] is not a {{'type': 'function', ...}} object")
        elif wire == "chat" and not isinstance(t.get("function"), dict):
            out.append(f"tools[{i}] has no 'function' object (chat nests name/parameters in it)")
        elif wire == "responses" and "name" not in t:
            out.append(f"tools[{i}] has no top-level 'name' (the Responses API wants it flat)")
    return out


class _CallLedger:
    """The tool calls a request's history made, and whether each got its one result.

    `result` and `call` are the wire's names for them, used in the problems it reports."""

    def __init__(self, result: str, call: str) -> None:
        self.result = result
        self.call = call
        self.pending: dict[str, str] = {}  # call id -> tool name, still without a result
        self.answered: set[str] = set()
        self.late: set[str] = set()  # passed over by a later message: a result now is too late

    def made(self, cid: str, name: str) -> None:
        self.pending[cid] = name

    def answer(self, cid: Any, content: Any, field: str) -> list[str]:
        """Take a result for call `cid`, its text in `content` (the result's `field`): what is
        wrong with it, if anything."""
        out = [] if isinstance(content, str | list) else [f"{self.result} {field} is not text"]
        if cid in self.pending:
            del self.pending[cid]
            self.answered.add(cid)
        elif cid in self.answered:
            out.append(f"second {self.result} for call_id {cid!r}")
        elif cid in self.late:
            out.append(
                f"{self.result} for call_id {cid!r} does not directly follow "
                "the assistant message that made the call"
            )
        else:
            out.append(f"{self.result} for call_id {cid!r} answers no earlier {self.call}")
        return out

    def pass_over(self) -> list[str]:
        """Calls still waiting, now passed over (chat wants results right after the call)."""
        waiting = sorted(self.pending)
        self.late.update(self.pending)
        self.pending.clear()
        return waiting

    def unanswered(self) -> list[str]:
        """The problem of calls that never got a result, if there are any."""
        if not self.pending:
            return []
        return [f"{self.call}(s) {sorted(self.pending)} have no {self.result}"]


def _objects(seq: list[Any], where: str, out: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The objects in `seq`, with their index; anything else is noted in `out` as it is met."""
    for i, x in enumerate(seq):
        if isinstance(x, dict):
            yield i, x
        else:
            out.append(f"{where}[{i}] is not an object")


def check_chat_request(body: dict[str, Any]) -> list[str]:
    """Problems a real Chat Completions server would reject in `body`."""
    out = [] if body.get("model") else ["no model"]
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return [*out, "messages missing or empty"]
    calls = _CallLedger("tool result", "tool call")
    for i, m in _objects(msgs, "messages", out):
        role = m.get("role")
        if role == "tool":
            problems = calls.answer(m.get("tool_call_id"), m.get("content"), "content")
            out += [f"messages[{i}]: {p}" for p in problems]
            continue
        if role not in ("system", "developer", "user", "assistant"):
            out.append(f"messages[{i}]: unknown role {role!r}")
        if calls.pending:
            out.append(
                f"messages[{i}] ({role}): tool call(s) {calls.pass_over()} were not answered "
                "before this message"
            )
        if role == "assistant":
            for j, tc in enumerate(m.get("tool_calls") or []):
                fn = tc.get("function") if isinstance(tc, dict) else None
                if not isinstance(tc, dict) or not tc.get("id") or not isinstance(fn, dict):
                    out.append(f"messages[{i}].tool_calls[{j}] lacks an id or a function")
                    continue
                if not isinstance(fn.get("arguments"), str):
                    out.append(f"messages[{i}].tool_calls[{j}]: arguments must be a JSON string")
                calls.made(tc["id"], str(fn.get("name")))
    return out + calls.unanswered() + _check_tools(body.get("tools"), "chat")


def check_responses_request(body: dict[str, Any]) -> list[str]:
    """Problems a real Responses API server would reject in `body`."""
    out = [] if body.get("model") else ["no model"]
    items = body.get("input")
    if isinstance(items, str):
        return out + _check_tools(body.get("tools"), "responses")
    if not isinstance(items, list) or not items:
        return [*out, "input missing or empty"]
    calls = _CallLedger("function_call_output", "function_call")
    for i, it in _objects(items, "input", out):
        kind = it.get("type") or ("message" if "role" in it else None)
        if kind == "function_call":
            cid = it.get("call_id")
            if not cid or not it.get("name"):
                out.append(f"input[{i}]: function_call lacks a call_id or a name")
            elif not isinstance(it.get("arguments"), str):
                out.append(f"input[{i}]: function_call arguments must be a JSON string")
            if cid:
                calls.made(cid, str(it.get("name")))
        elif kind == "function_call_output":
            problems = calls.answer(it.get("call_id"), it.get("output"), "output")
            out += [f"input[{i}]: {p}" for p in problems]
        elif kind == "message":
            if it.get("role") not in ("system", "developer", "user", "assistant"):
                out.append(f"input[{i}]: unknown role {it.get('role')!r}")
        else:
            out.append(f"input[{i}]: unknown item type {kind!r}")
    return out + calls.unanswered() + _check_tools(body.get("tools"), "responses")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def first_user_text(body: dict[str, Any]) -> str:
    """The first user message of a chat or responses request body."""
    seq = body.get("messages")
    if seq is None:
        seq = body.get("input")
        if isinstance(seq, str):
            return seq
    for m in seq if isinstance(seq, list) else []:
        if isinstance(m, dict) and m.get("role") == "user":
            return _text_of(m.get("content"))
    return ""
