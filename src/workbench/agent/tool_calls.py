"""A model's tool call checked and normalised into a `ParsedCall`, before anyone runs it.

Separate from execution because the loop needs the parsed call first: to decide on
approval (`ParsedCall.describe()`) and to record normalised arguments. Mistakes become
`kind="invalid"` with a message (and the expected schema) the model can act on.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from workbench.agent.patch import (
    AddFile,
    DeleteFile,
    PatchError,
    extract_patch_with_cwd,
    parse_patch,
)
from workbench.agent.tool_specs import TOOL_SPECS

_SPECS_BY_NAME = {spec.name: spec for spec in TOOL_SPECS}
# Names models trained on other harnesses sometimes use for the same tools.
_ALIASES = {"container.exec": "shell", "local_shell": "shell", "applypatch": "apply_patch"}
PLAN_STATUSES = ("pending", "in_progress", "completed")
MAX_TIMEOUT_MS = 24 * 3600 * 1000


@dataclass
class ToolCall:
    """A call as the provider handed it over, arguments not yet checked."""

    call_id: str
    name: str
    arguments: str  # raw JSON text as the model sent it


Kind = Literal["shell", "apply_patch", "update_plan", "invalid"]


@dataclass
class ParsedCall:
    """A validated call. `error` is set exactly when `kind` is "invalid"."""

    call_id: str
    name: str
    kind: Kind
    argv: list[str] | None = None
    workdir: str | None = None
    timeout_ms: int | None = None
    patch: str | None = None
    plan: list[dict[str, str]] | None = None
    explanation: str | None = None
    error: str | None = None

    @property
    def args(self) -> dict[str, Any]:
        """Normalised arguments, as the canonical tool would have received them."""
        if self.kind == "shell":
            out: dict[str, Any] = {"command": self.argv}
            if self.workdir is not None:
                out["workdir"] = self.workdir
            if self.timeout_ms is not None:
                out["timeout_ms"] = self.timeout_ms
            return out
        if self.kind == "apply_patch":
            out = {"input": self.patch}
            if self.workdir is not None:
                out["workdir"] = self.workdir
            return out
        if self.kind == "update_plan":
            out = {"plan": self.plan}
            if self.explanation is not None:
                out["explanation"] = self.explanation
            return out
        return {}

    def describe(self) -> str:
        """What a human approves: the exact command line, or the files a patch touches."""
        if self.kind == "shell":
            line = shlex.join(self.argv or [])
            return f"{line}    (in {self.workdir})" if self.workdir else line
        if self.kind == "apply_patch":
            lines = ["apply_patch" + (f" (in {self.workdir})" if self.workdir else "")]
            try:
                ops = parse_patch(self.patch or "")
            except PatchError as e:
                return f"{lines[0]}: invalid patch: {e}"
            for op in ops:
                if isinstance(op, AddFile):
                    lines.append(f"A {op.path}")
                elif isinstance(op, DeleteFile):
                    lines.append(f"D {op.path}")
                elif op.move_to:
                    lines.append(f"R {op.path} -> {op.move_to}")
                else:
                    lines.append(f"M {op.path}")
            return "\n".join(lines)
        if self.kind == "update_plan":
            steps = self.plan or []
            done = sum(1 for s in steps if s["status"] == "completed")
            return f"update_plan: {len(steps)} steps, {done} completed"
        return f"invalid call to {self.name}: {self.error}"


def _schema_hint(name: str) -> str:
    return f"Expected arguments for {name}: {json.dumps(_SPECS_BY_NAME[name].parameters)}"


def _invalid(call: ToolCall, message: str, tool: str | None = None) -> ParsedCall:
    text = message if tool is None else f"{message}\n{_schema_hint(tool)}"
    return ParsedCall(call.call_id, call.name, "invalid", error=text)


# Characters that make a command string need a shell to mean what it says.
_SHELL_SYNTAX = re.compile(r"[|&;<>()$`*?\[\]{}~!#\n\\]|^\s*\w+=")


def _command_argv(value: Any) -> list[str] | str:
    """The argv for a `command` value, or an error message."""
    if isinstance(value, str):
        if not value.strip():
            return "`command` is empty"
        try:
            split = shlex.split(value)
        except ValueError as e:
            return f"`command` string could not be split into arguments ({e}); pass an array"
        # A string with pipes, redirections or globs was written for a shell: give it one.
        return ["bash", "-lc", value] if _SHELL_SYNTAX.search(value) else split
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        return '`command` must be an array of strings, e.g. ["ls", "-la"]'
    if not value or not value[0]:
        return "`command` is empty; give the program and its arguments"
    return list(value)


def _int_arg(value: Any, name: str) -> int | str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"`{name}` must be an integer number of milliseconds"
    if not math.isfinite(value) or value != int(value) or value <= 0:
        return f"`{name}` must be a positive integer"
    return min(int(value), MAX_TIMEOUT_MS)


def parse_call(call: ToolCall) -> ParsedCall:
    """Validate and normalise a model's tool call; problems become `kind="invalid"`."""
    name = _ALIASES.get(call.name, call.name)
    if name not in _SPECS_BY_NAME:
        known = ", ".join(_SPECS_BY_NAME)
        return _invalid(call, f"unknown tool {call.name!r}; available tools: {known}")
    raw = call.arguments
    try:
        args = raw if isinstance(raw, dict) else json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as e:
        if name == "apply_patch" and raw.lstrip().startswith("*** Begin Patch"):
            args = {"input": raw}  # freeform tool style: the patch itself, not JSON
        else:
            return _invalid(call, f"arguments are not valid JSON ({e.msg} at char {e.pos})", name)
    if not isinstance(args, dict):
        return _invalid(call, f"arguments must be a JSON object, got {type(args).__name__}", name)
    if name == "shell":
        return _parse_shell(call, args)
    if name == "apply_patch":
        patch = args.get("input", args.get("patch"))
        if not isinstance(patch, str):
            return _invalid(call, "`input` (the patch text) is required and must be a string", name)
        workdir = args.get("workdir")
        if workdir is not None and not isinstance(workdir, str):
            return _invalid(call, "`workdir` must be a string", name)
        return _patch_call(call, patch, workdir)
    return _parse_plan(call, args)


def _patch_call(call: ToolCall, patch: str, workdir: str | None) -> ParsedCall:
    try:
        parse_patch(patch)
    except PatchError as e:
        return _invalid(call, f"apply_patch: invalid patch: {e}")
    return ParsedCall(call.call_id, call.name, "apply_patch", patch=patch, workdir=workdir)


def _parse_shell(call: ToolCall, args: dict[str, Any]) -> ParsedCall:
    if "command" not in args:
        return _invalid(call, "`command` is required", "shell")
    argv = _command_argv(args["command"])
    if isinstance(argv, str):
        return _invalid(call, argv, "shell")
    workdir = args.get("workdir")
    if workdir is not None and not isinstance(workdir, str):
        return _invalid(call, "`workdir` must be a string", "shell")
    timeout = _int_arg(args.get("timeout_ms", args.get("timeout")), "timeout_ms")
    if isinstance(timeout, str):
        return _invalid(call, timeout, "shell")
    found = extract_patch_with_cwd(argv)
    if found is not None:
        patch, cd = found
        if cd:
            workdir = str(Path(workdir) / cd) if workdir else cd
        return _patch_call(call, patch, workdir)
    if argv[0] in ("apply_patch", "applypatch"):
        return _invalid(
            call,
            "apply_patch needs the patch as its one argument: "
            '["apply_patch", "*** Begin Patch\\n...*** End Patch"]',
        )
    return ParsedCall(
        call.call_id, call.name, "shell", argv=argv, workdir=workdir, timeout_ms=timeout
    )


def _parse_plan(call: ToolCall, args: dict[str, Any]) -> ParsedCall:
    explanation = args.get("explanation")
    if explanation is not None and not isinstance(explanation, str):
        return _invalid(call, "`explanation` must be a string", "update_plan")
    raw = args.get("plan")
    if not isinstance(raw, list):
        return _invalid(call, "`plan` is required and must be an array of steps", "update_plan")
    plan: list[dict[str, str]] = []
    for k, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("step"), str):
            return _invalid(
                call, f"plan[{k}] must be an object with a string `step`", "update_plan"
            )
        status = item.get("status")
        norm = re.sub(r"[\s-]+", "_", status.strip().lower()) if isinstance(status, str) else None
        if norm not in PLAN_STATUSES:
            return _invalid(
                call,
                f"plan[{k}].status is {status!r}; use one of {', '.join(PLAN_STATUSES)}",
                "update_plan",
            )
        plan.append({"step": item["step"], "status": norm})
    return ParsedCall(call.call_id, call.name, "update_plan", plan=plan, explanation=explanation)
