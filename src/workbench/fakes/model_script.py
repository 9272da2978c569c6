"""What the fake model server says: scripts of turns, and reading them from JSON.

A `Script` answers the requests whose first user message contains its `match`, one `Turn`
a request; a turn's `Fault` is served `times` times before the turn itself. `workbench demo`
and `python -m workbench.fakes.model_server --script` load scripts from a JSON file, so a bad
file raises ConfigError naming the file and the key.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workbench.errors import ConfigError

FaultKind = Literal["status", "cut", "garbage", "hang", "stream_error"]


@dataclass
class ScriptedToolCall:
    name: str
    arguments: str  # JSON text
    call_id: str | None = None  # made up ("call_N") when not given
    chunks: int = 3  # the arguments arrive split across this many deltas

    def argument_deltas(self) -> list[str]:
        """`arguments` cut into `chunks` streamed deltas of (nearly) equal length."""
        if not self.arguments:
            return []
        size = max(1, math.ceil(len(self.arguments) / max(1, self.chunks)))
        return [self.arguments[i : i + size] for i in range(0, len(self.arguments), size)]


@dataclass
class Fault:
    """`status`: an HTTP error; `cut`: the stream closes mid-way; `garbage`: invalid JSON in
    the stream; `hang`: headers sent, then nothing for `delay_s` seconds; `stream_error`: part
    of the turn, then an in-stream error (chat `{"error": ...}` chunk, `response.failed`)."""

    kind: FaultKind
    status: int = 500
    retry_after_ms: int | None = None
    times: int = 1
    retry_after_s: float | None = None
    delay_s: float = 30.0


@dataclass
class Turn:
    text: str = ""
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    usage: tuple[int, int] | None = None  # (input, output); estimated when None
    error: Fault | None = None
    delay_s: float = 0  # before the first byte
    chunk_delay_s: float = 0  # between streamed events (makes demos watchable)

    def text_deltas(self) -> list[str]:
        """`text` as streamed: a word (with the spaces after it) a delta, as real servers do."""
        return re.findall(r"\S+\s*|\s+", self.text)


@dataclass
class Script:
    match: str  # substring of a request's first user message; "" = the default script
    turns: list[Turn]


# -- script files ---------------------------------------------------------------------------


def _get(
    d: dict[str, Any], key: str, kinds: type | tuple[type, ...], where: str, default: Any
) -> Any:
    if key not in d or d[key] is None:
        return default
    v = d[key]
    if isinstance(v, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise ConfigError(f"{where}.{key}: expected {_kind_name(kinds)}, got {v!r}")
    if not isinstance(v, kinds):
        raise ConfigError(f"{where}.{key}: expected {_kind_name(kinds)}, got {v!r}")
    return v


def _kind_name(kinds: type | tuple[type, ...]) -> str:
    ks = kinds if isinstance(kinds, tuple) else (kinds,)
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        list: "a list",
        dict: "an object",
    }
    return " or ".join(names.get(k, k.__name__) for k in ks)


def _only(d: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected an object, got {d!r:.80}")
    extra = sorted(set(d) - allowed)
    if extra:
        allowed_list = ", ".join(sorted(allowed))
        raise ConfigError(f"{where}: unknown key {extra[0]!r} (allowed: {allowed_list})")
    return d


def _parse_tool_call(c: Any, where: str) -> ScriptedToolCall:
    c = _only(c, {"name", "arguments", "call_id", "chunks"}, where)
    name = _get(c, "name", str, where, None)
    if not name:
        raise ConfigError(f'{where}: missing "name"')
    args = c.get("arguments", "{}")
    if not isinstance(args, str):
        args = json.dumps(args)  # an object in the file is sent as its JSON text
    chunks = _get(c, "chunks", int, where, 3)
    if chunks < 1:
        raise ConfigError(f"{where}.chunks: must be at least 1")
    return ScriptedToolCall(name, args, _get(c, "call_id", str, where, None), chunks)


def _parse_fault(e: Any, where: str) -> Fault:
    keys = {"kind", "status", "retry_after_ms", "retry_after_s", "times", "delay_s"}
    e = _only(e, keys, where)
    kind = e.get("kind")
    if kind not in ("status", "cut", "garbage", "hang", "stream_error"):
        raise ConfigError(
            f"{where}.kind: expected status, cut, garbage, hang or stream_error, got {kind!r}"
        )
    return Fault(
        kind=kind,
        status=_get(e, "status", int, where, 500),
        retry_after_ms=_get(e, "retry_after_ms", int, where, None),
        times=_get(e, "times", int, where, 1),
        retry_after_s=_get(e, "retry_after_s", (int, float), where, None),
        delay_s=float(_get(e, "delay_s", (int, float), where, 30.0)),
    )


def _parse_turn(d: Any, where: str) -> Turn:
    d = _only(d, {"text", "tool_calls", "usage", "error", "delay_s", "chunk_delay_s"}, where)
    calls = [
        _parse_tool_call(c, f"{where}.tool_calls[{j}]")
        for j, c in enumerate(_get(d, "tool_calls", list, where, []))
    ]
    usage_raw = _get(d, "usage", list, where, None)
    usage: tuple[int, int] | None = None
    if usage_raw is not None:
        if len(usage_raw) != 2 or not all(isinstance(x, int) and x >= 0 for x in usage_raw):
            raise ConfigError(
                f"{where}.usage: expected [input_tokens, output_tokens], got {usage_raw!r}"
            )
        usage = (usage_raw[0], usage_raw[1])
    fault = _parse_fault(d["error"], f"{where}.error") if d.get("error") is not None else None
    return Turn(
        text=_get(d, "text", str, where, ""),
        tool_calls=calls,
        usage=usage,
        error=fault,
        delay_s=float(_get(d, "delay_s", (int, float), where, 0)),
        chunk_delay_s=float(_get(d, "chunk_delay_s", (int, float), where, 0)),
    )


def parse_scripts(data: Any, where: str = "script") -> list[Script]:
    """Scripts from JSON data: `{"scripts": [...]}` or a bare list of scripts."""
    if isinstance(data, dict):
        data = _only(data, {"scripts"}, where).get("scripts")
        where = f"{where}: scripts"
    if not isinstance(data, list):
        raise ConfigError(f"{where}: expected a list of scripts")
    out: list[Script] = []
    for i, s in enumerate(data):
        sw = f"{where}[{i}]"
        s = _only(s, {"match", "turns"}, sw)
        turns = _get(s, "turns", list, sw, [])
        out.append(
            Script(
                match=_get(s, "match", str, sw, ""),
                turns=[_parse_turn(t, f"{sw}.turns[{j}]") for j, t in enumerate(turns)],
            )
        )
    return out


def load_script_file(path: str | Path) -> list[Script]:
    """Scripts from a JSON file; a bad file raises ConfigError naming the file and the key."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{p}: cannot read script file ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: script file is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}:{e.lineno}: invalid JSON: {e.msg}") from None
    return parse_scripts(data, str(p))
