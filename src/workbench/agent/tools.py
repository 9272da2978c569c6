"""The agent's tools (`shell`, `apply_patch`, `update_plan`): specs, validation, execution.

Independent of the provider wire format: providers turn `TOOL_SPECS` into their JSON shape
and hand back `ToolCall`s; the loop asks for approval using `ParsedCall.describe()` and then
calls `execute`. Nothing here raises for a model's mistake: it becomes an error outcome the
model can read and correct.

About 600 lines: tool specs, argument checks and execution of the three tools (running one
command is `command_run.py`); specs and execution are the next seam to split on.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from workbench.agent.command_run import CommandResult
from workbench.agent.patch import (
    AddFile,
    DeleteFile,
    PatchError,
    PatchResult,
    apply_patch,
    extract_patch_with_cwd,
    parse_patch,
)
from workbench.agent.truncate import truncate_output

# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


_SHELL_DESCRIPTION = """Run a command and return its exit code and output (stdout and stderr \
merged). `command` is an argv array, e.g. ["rg", "-n", "TODO", "src"]; for pipes, redirection \
or `&&` use ["bash", "-lc", "..."]. Runs in the workspace (or `workdir`, relative to it) with \
no stdin. Long output is shortened in the middle. Do not use it to edit files: use apply_patch."""

_PATCH_DESCRIPTION = """Edit files with a patch. Paths are relative to the workspace root. \
Format:
*** Begin Patch
*** Add File: path/new.py
+every line of the new file, each prefixed with +
*** Update File: path/old.py
*** Move to: path/renamed.py   (optional)
@@ class or def line the hunk is in (optional)
 context line (prefixed with a space; about 3 before and after each change)
-removed line
+added line
*** Delete File: path/gone.py
*** End Patch
Context and removed lines must match the file. Use several @@ hunks for several places in \
one file, in file order. Add `*** End of File` after a hunk that ends at the end of a file."""

_PLAN_DESCRIPTION = """Record the plan for the task as a short list of steps with statuses, \
and update it as work progresses. At most one step should be in_progress."""

TOOL_SPECS: list[ToolSpec] = [
    ToolSpec(
        name="shell",
        description=_SHELL_DESCRIPTION,
        parameters={
            "type": "object",
            "properties": {
                "command": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "The command and its arguments.",
                },
                "workdir": {
                    "type": "string",
                    "description": "Directory to run in, relative to the workspace root.",
                },
                "timeout_ms": {
                    "type": "integer",
                    "description": "Kill the command after this many milliseconds.",
                },
            },
            "required": ["command"],
            "additionalProperties": False,
        },
    ),
    ToolSpec(
        name="apply_patch",
        description=_PATCH_DESCRIPTION,
        parameters={
            "type": "object",
            "properties": {
                "input": {
                    "type": "string",
                    "description": "The whole patch, from *** Begin Patch to *** End Patch.",
                }
            },
            "required": ["input"],
            "additionalProperties": False,
        },
    ),
    ToolSpec(
        name="update_plan",
        description=_PLAN_DESCRIPTION,
        parameters={
            "type": "object",
            "properties": {
                "explanation": {"type": "string"},
                "plan": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "step": {"type": "string"},
                            "status": {
                                "type": "string",
                                "enum": ["pending", "in_progress", "completed"],
                            },
                        },
                        "required": ["step", "status"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["plan"],
            "additionalProperties": False,
        },
    ),
]

_SPECS_BY_NAME = {spec.name: spec for spec in TOOL_SPECS}
# Names models trained on other harnesses sometimes use for the same tools.
_ALIASES = {"container.exec": "shell", "local_shell": "shell", "applypatch": "apply_patch"}
PLAN_STATUSES = ("pending", "in_progress", "completed")
MAX_TIMEOUT_MS = 24 * 3600 * 1000


def chat_tool_schemas() -> list[dict[str, Any]]:
    """`tools=` for Chat Completions."""
    return [
        {
            "type": "function",
            "function": {
                "name": s.name,
                "description": s.description,
                "parameters": s.parameters,
            },
        }
        for s in TOOL_SPECS
    ]


def responses_tool_schemas() -> list[dict[str, Any]]:
    """`tools=` for the Responses API (function tools)."""
    return [
        {
            "type": "function",
            "name": s.name,
            "description": s.description,
            "parameters": s.parameters,
            "strict": False,
        }
        for s in TOOL_SPECS
    ]


# --------------------------------------------------------------------------- running


class CommandRunner(Protocol):
    async def run(self, argv: list[str], cwd: Path, timeout_ms: int) -> CommandResult: ...


class PatchRunner(Protocol):
    """A runner that also applies patches itself (the daemon's, inside the session's sandbox).

    Returns what was changed or raises `PatchError` (a message for the model) or
    `PatchUnavailable`. Runners without it have patches applied in this process.
    """

    async def apply_patch(self, patch: str, root: Path, cwd: Path) -> PatchResult: ...


class PatchUnavailable(Exception):
    """The patch could not be applied for a reason other than the patch (no sandbox, a crash)."""


# --------------------------------------------------------------------------- calls


@dataclass
class ToolCall:
    call_id: str
    name: str
    arguments: str  # raw JSON text as the model sent it


@dataclass
class ToolOutcome:
    output: str
    is_error: bool
    changed_files: list[str] = field(default_factory=list)
    plan: list[dict[str, str]] | None = None


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


# --------------------------------------------------------------------------- read-only

_SHELLS = {"bash", "sh", "zsh", "dash"}
_SIMPLE = {
    "ls", "cat", "head", "tail", "wc", "pwd", "echo", "stat", "which", "nl", "cut", "tr",
    "basename", "dirname", "realpath", "readlink", "true", "grep", "egrep", "fgrep", "du", "df",
}  # fmt: skip
_FIND_WRITES = {"-exec", "-execdir", "-ok", "-okdir", "-delete", "-fprint", "-fprint0",
                "-fprintf", "-fls"}  # fmt: skip
_SED_PRINT = re.compile(r"^\s*(\d+|\$)(\s*,\s*(\d+|\$))?\s*p\s*$")
_GIT_BRANCH_FLAGS = {"-a", "--all", "-r", "--remotes", "-v", "-vv", "--verbose", "--list",
                     "-l", "--show-current", "--no-color", "--color", "--no-column"}  # fmt: skip
_SHELL_OPERATORS = {"|", "||", "&&", ";"}


def _program(word: str) -> str | None:
    if "/" not in word:
        return word
    # Only trust absolute paths in system directories; ./ls could be anything.
    head, _, base = word.rpartition("/")
    return base if head in ("/bin", "/usr/bin", "/usr/local/bin") else None


def _has_short(args: list[str], letter: str) -> bool:
    """Whether a short option appears, alone or in a cluster like `-uo`."""
    return any(a.startswith("-") and not a.startswith("--") and letter in a for a in args)


def _read_only_simple(argv: list[str]) -> bool:
    if not argv:
        return False
    prog = _program(argv[0])
    args = argv[1:]
    if prog is None:
        return False
    if prog in _SIMPLE:
        return True
    if prog == "tree":
        return not (_has_short(args, "o") or any(a.startswith("--output") for a in args))
    if prog == "file":
        return not (_has_short(args, "C") or "--compile" in args)
    if prog == "rg":
        return not any(a.startswith("--pre") for a in args)
    if prog == "find":
        return not any(a in _FIND_WRITES for a in args)
    if prog == "sort":
        return not (
            _has_short(args, "o") or any(a.startswith(("--output", "--compress")) for a in args)
        )
    if prog == "uniq":
        return sum(1 for a in args if not a.startswith("-")) <= 1  # a second name is an output
    if prog == "sed":
        return _read_only_sed(args)
    if prog == "git":
        return _read_only_git(args)
    return False


def _read_only_sed(args: list[str]) -> bool:
    if "-n" not in args:
        return False
    rest = [a for a in args if a != "-n"]
    if any(a.startswith("-") for a in rest) or not rest:
        return False  # -i, --in-place, -e, -f ...: not the plain `sed -n 'N,Mp' file` form
    return bool(_SED_PRINT.match(rest[0]))


def _read_only_git(args: list[str]) -> bool:
    while args and args[0] in ("--no-pager", "--no-optional-locks"):
        args = args[1:]
    if not args:
        return False
    sub, rest = args[0], args[1:]
    if sub in ("status", "log", "diff", "show"):
        return not any(a.startswith(("--output", "--ext-diff")) for a in rest)
    if sub == "branch":
        if "--list" in rest or "-l" in rest:
            return all(a in _GIT_BRANCH_FLAGS or not a.startswith("-") for a in rest)
        return all(a in _GIT_BRANCH_FLAGS for a in rest)  # a bare name would create a branch
    return False


def _split_script(script: str) -> list[list[str]] | None:
    """The simple commands of a `cmd | cmd && cmd` script, or None if it uses anything else."""
    if any(c in script for c in "\n\r`$<>()#") or "&" in script.replace("&&", ""):
        return None
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:
        return None
    commands: list[list[str]] = [[]]
    for tok in tokens:
        if tok in _SHELL_OPERATORS:
            commands.append([])
        elif set(tok) <= set(";&|"):
            return None
        else:
            commands[-1].append(tok)
    return commands if all(commands) else None


def is_known_read_only(argv: list[str]) -> bool:
    """True only for commands that plainly cannot change anything (conservative)."""
    if not argv or not all(isinstance(a, str) for a in argv):
        return False
    prog = _program(argv[0])
    if prog in _SHELLS:
        if len(argv) != 3 or argv[1] not in ("-c", "-lc"):
            return False
        commands = _split_script(argv[2])
        if commands is None:
            return False
        return all((cmd[0] == "cd" and len(cmd) <= 2) or _read_only_simple(cmd) for cmd in commands)
    if any(a in _SHELL_OPERATORS or a.startswith((">", "<")) for a in argv[1:]):
        return False  # written as if a shell would interpret it; be safe
    return _read_only_simple(argv)


# --------------------------------------------------------------------------- execution


def _resolve_workdir(root: Path, workdir: str | None) -> Path | str:
    """Absolute directory inside root, or an error message."""
    real_root = Path(os.path.realpath(root))
    if not workdir:
        return real_root
    if "\x00" in workdir:
        return "workdir contains a NUL byte"
    target = Path(os.path.realpath(real_root / workdir))  # absolute workdir replaces root
    if target != real_root and real_root not in target.parents:
        return f"workdir {workdir!r} is outside the workspace {str(real_root)!r}"
    if not target.is_dir():
        return f"workdir {workdir!r} does not exist or is not a directory"
    return target


def _format(result: CommandResult, timeout_ms: int) -> str:
    wall = f"Wall time: {result.duration_ms / 1000:.1f} s"
    if result.timed_out:
        head = f"Command timed out after {timeout_ms} ms\n{wall}\nOutput (partial):\n"
    else:
        head = f"Exit code: {result.exit_code}\n{wall}\nOutput:\n"
    return head + result.output


async def execute(
    parsed: ParsedCall,
    *,
    root: Path,
    runner: CommandRunner,
    max_output_bytes: int,
    default_timeout_ms: int,
) -> ToolOutcome:
    """Run a parsed call. Model mistakes come back as `is_error` outcomes, never exceptions."""
    if parsed.kind == "invalid":
        return ToolOutcome(parsed.error or "invalid tool call", True)
    if parsed.kind == "update_plan":
        steps = parsed.plan or []
        return ToolOutcome("Plan updated", False, plan=[dict(s) for s in steps])
    cwd = _resolve_workdir(root, parsed.workdir)
    if isinstance(cwd, str):
        return ToolOutcome(cwd, True)
    if parsed.kind == "apply_patch":
        own = getattr(runner, "apply_patch", None)
        try:
            if own is not None:
                result = await own(parsed.patch or "", root, cwd)
            else:
                result = await asyncio.to_thread(apply_patch, parsed.patch or "", root, cwd=cwd)
        except PatchError as e:
            return ToolOutcome(f"apply_patch failed, no files were changed:\n{e}", True)
        except PatchUnavailable as e:
            return ToolOutcome(f"apply_patch could not run: {e}", True)
        text = "Success. Updated the following files:\n" + result.summary()
        return ToolOutcome(text, False, changed_files=result.paths())

    timeout_ms = parsed.timeout_ms or default_timeout_ms
    try:
        res = await runner.run(list(parsed.argv or []), cwd, timeout_ms)
    except OSError as e:
        return ToolOutcome(f"failed to start {shlex.join(parsed.argv or [])}: {e}", True)
    # Leave room for the header so the whole text stays within the limit.
    res.output = truncate_output(res.output, max(max_output_bytes - 96, 64))
    return ToolOutcome(_format(res, timeout_ms), res.timed_out or res.exit_code != 0)
