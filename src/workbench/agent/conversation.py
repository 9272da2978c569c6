"""Provider-neutral conversation items and their two wire shapes (chat, responses).

Items serialise to JSON-safe dicts tagged with `"type"` so the daemon can store a
conversation and rebuild it after a restart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import WorkbenchError

# How a compaction summary is introduced to the model; it goes in as a user message because
# not every server accepts a second system message mid-conversation.
SUMMARY_PREFIX = "Summary of the conversation so far (earlier turns were compacted):\n\n"


@dataclass
class SystemMessage:
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "system", "text": self.text}


@dataclass
class UserMessage:
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "user", "text": self.text}


@dataclass
class ToolCallItem:
    call_id: str
    name: str
    arguments: str  # JSON text exactly as the model produced it

    def to_dict(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "name": self.name, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolCallItem:
        return cls(call_id=str(d["call_id"]), name=str(d["name"]), arguments=str(d["arguments"]))


@dataclass
class AssistantMessage:
    text: str
    tool_calls: list[ToolCallItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "assistant",
            "text": self.text,
            "tool_calls": [c.to_dict() for c in self.tool_calls],
        }


@dataclass
class ToolResult:
    call_id: str
    output: str
    is_error: bool = False  # recorded for the UI; the output text itself tells the model

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "tool_result",
            "call_id": self.call_id,
            "output": self.output,
            "is_error": self.is_error,
        }


@dataclass
class Summary:
    """The hand-off note that replaces compacted turns."""

    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "summary", "text": self.text}


Item = SystemMessage | UserMessage | AssistantMessage | ToolResult | Summary


def item_from_dict(d: dict[str, Any]) -> Item:
    """Rebuild an item stored with `to_dict()`; a bad record raises WorkbenchError."""
    try:
        kind = d["type"]
        if kind == "system":
            return SystemMessage(text=str(d["text"]))
        if kind == "user":
            return UserMessage(text=str(d["text"]))
        if kind == "assistant":
            calls = [ToolCallItem.from_dict(c) for c in d.get("tool_calls") or []]
            return AssistantMessage(text=str(d.get("text") or ""), tool_calls=calls)
        if kind == "tool_result":
            return ToolResult(
                call_id=str(d["call_id"]), output=str(d["output"]), is_error=bool(d.get("is_error"))
            )
        if kind == "summary":
            return Summary(text=str(d["text"]))
    except (KeyError, TypeError, AttributeError) as e:
        raise WorkbenchError(f"stored conversation item is malformed ({e!r}): {d!r:.200}") from None
    raise WorkbenchError(f"stored conversation item has unknown type {d.get('type')!r}")


def to_chat_messages(items: Iterable[Item]) -> list[dict[str, Any]]:
    """Chat Completions `messages`."""
    out: list[dict[str, Any]] = []
    for it in items:
        if isinstance(it, SystemMessage):
            out.append({"role": "system", "content": it.text})
        elif isinstance(it, UserMessage):
            out.append({"role": "user", "content": it.text})
        elif isinstance(it, Summary):
            out.append({"role": "user", "content": SUMMARY_PREFIX + it.text})
        elif isinstance(it, AssistantMessage):
            msg: dict[str, Any] = {"role": "assistant"}
            if it.tool_calls:
                # Some servers reject "" next to tool calls; null is what OpenAI itself sends.
                msg["content"] = it.text or None
                msg["tool_calls"] = [
                    {
                        "id": c.call_id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments or "{}"},
                    }
                    for c in it.tool_calls
                ]
            else:
                msg["content"] = it.text
            out.append(msg)
        elif isinstance(it, ToolResult):
            out.append({"role": "tool", "tool_call_id": it.call_id, "content": it.output})
    return out


def to_responses_input(items: Iterable[Item]) -> tuple[str | None, list[dict[str, Any]]]:
    """Responses API `instructions` (all system messages joined) and `input` items."""
    instructions: list[str] = []
    out: list[dict[str, Any]] = []
    for it in items:
        if isinstance(it, SystemMessage):
            instructions.append(it.text)
        elif isinstance(it, UserMessage):
            out.append({"type": "message", "role": "user", "content": it.text})
        elif isinstance(it, Summary):
            out.append({"type": "message", "role": "user", "content": SUMMARY_PREFIX + it.text})
        elif isinstance(it, AssistantMessage):
            if it.text:
                out.append({"type": "message", "role": "assistant", "content": it.text})
            for c in it.tool_calls:
                out.append(
                    {
                        "type": "function_call",
                        "call_id": c.call_id,
                        "name": c.name,
                        "arguments": c.arguments or "{}",
                    }
                )
        elif isinstance(it, ToolResult):
            out.append({"type": "function_call_output", "call_id": it.call_id, "output": it.output})
    return ("\n\n".join(instructions) if instructions else None), out


def estimate_tokens(items: Iterable[Item]) -> int:
    """Rough token count (4 characters a token, plus a little per item for framing)."""
    chars = 0
    n = 0
    for it in items:
        n += 1
        if isinstance(it, AssistantMessage):
            chars += len(it.text)
            chars += sum(len(c.name) + len(c.arguments) + 8 for c in it.tool_calls)
        elif isinstance(it, ToolResult):
            chars += len(it.output)
        elif isinstance(it, Summary):
            chars += len(SUMMARY_PREFIX) + len(it.text)
        else:
            chars += len(it.text)
    return (chars + 3) // 4 + 4 * n


def dumps(items: Iterable[Item]) -> str:
    """A whole conversation as JSON text (a list of `to_dict()` records)."""
    return json.dumps([it.to_dict() for it in items], ensure_ascii=False)


def loads(text: str) -> list[Item]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise WorkbenchError(f"stored conversation is not valid JSON: {e}") from None
    if not isinstance(data, list):
        raise WorkbenchError("stored conversation is not a JSON list of items")
    return [item_from_dict(d) for d in data]
