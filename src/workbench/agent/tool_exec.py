"""Running a parsed tool call: a command through the session's runner, a patch in the
workspace (or by the runner, in its sandbox), a plan recorded.

Errors the model can fix come back as `is_error` outcomes, never exceptions, so a turn
goes on. The runner is a protocol: the daemon's runs in a sandbox, `LocalRunner` does not.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from workbench.agent.command_run import CommandResult
from workbench.agent.patch import PatchError, PatchResult, apply_patch
from workbench.agent.tool_calls import ParsedCall
from workbench.agent.truncate import truncate_output


class CommandRunner(Protocol):
    """Runs one argv in a directory: the daemon's sandboxed runner, or `LocalRunner`."""

    async def run(self, argv: list[str], cwd: Path, timeout_ms: int) -> CommandResult: ...


class PatchRunner(Protocol):
    """A runner that also applies patches itself (the daemon's, inside the session's sandbox).

    Returns what was changed or raises `PatchError` (a message for the model) or
    `PatchUnavailable`. Runners without it have patches applied in this process.
    """

    async def apply_patch(self, patch: str, root: Path, cwd: Path) -> PatchResult: ...


class PatchUnavailable(Exception):
    """The patch could not be applied for a reason other than the patch (no sandbox, a crash)."""


@dataclass
class ToolOutcome:
    """What the model reads back, plus what the loop records (changed files, the plan)."""

    output: str
    is_error: bool
    changed_files: list[str] = field(default_factory=list)
    plan: list[dict[str, str]] | None = None


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
