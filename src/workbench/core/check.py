"""The per-repo check command (tests, linters) run in a session's worktree.

The caller wraps the command in the session's sandbox; this module runs it with a
timeout, keeps only the tail of its output, and kills its whole process group when
the time is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Protocol, cast

from workbench.core.escapes import strip_escapes
from workbench.errors import UsageError
from workbench.protocol import review as wire

CheckStatus = Literal["passed", "failed"]
KEEP_BYTES = 64 * 1024  # output kept while reading
TAIL_LINES = 40
TAIL_CHARS = 4000


class Runnable(Protocol):
    """A (sandboxed) command: see daemon.sandboxing."""

    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...]

    def close(self) -> None: ...


@dataclass
class CheckResult:
    status: CheckStatus
    exit_code: int | None
    duration_s: float
    tail: str
    command: str
    reason: str = ""  # why it failed without an exit code: timeout, could not start
    finished_at: float = field(default_factory=time.time)
    digest: str = ""  # the digest of the diff it checked ("" when not known)

    def to_json(self) -> wire.CheckResult:
        return cast(wire.CheckResult, asdict(self))


def check_argv(command: list[str] | str | None) -> list[str]:
    """The argv of a configured check command; a string runs through /bin/sh."""
    if command is None or (isinstance(command, str) and not command.strip()) or command == []:
        raise UsageError(
            "no check command is configured for this repository",
            hint='set [check] command = "pytest -q" in the repo\'s .workbench.toml',
        )
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    return [str(a) for a in command]


def command_text(command: list[str] | str) -> str:
    return command if isinstance(command, str) else shlex.join(command)


def tail_text(data: bytes, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last lines of output as inert text (no escape sequences)."""
    text = strip_escapes(data.decode("utf-8", "replace")).rstrip("\n")
    kept = text.splitlines()[-lines:]
    out = "\n".join(kept)
    return out[-chars:]


async def run_check(cmd: Runnable, cwd: Path, *, timeout_s: float, command: str, keep_bytes: int = KEEP_BYTES,
                    tail_lines: int = TAIL_LINES, tail_chars: int = TAIL_CHARS) -> CheckResult:
    """Run `cmd` in `cwd` (stdin closed, stderr merged into stdout) and judge it by its exit code.

    `cmd` is closed once the process has started (it may hold file descriptors for it). The
    result keeps the last `tail_lines` lines (at most `tail_chars`) of the output.
    """
    start = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd.argv,
            cwd=cwd,
            env=cmd.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            pass_fds=cmd.pass_fds,
            start_new_session=True,  # its own process group, killed as one on timeout
        )
    except OSError as e:
        return CheckResult("failed", None, time.monotonic() - start, "", command,
                           reason=f"could not start the check command: {e.strerror or e}")
    finally:
        cmd.close()
    buf = bytearray()
    reason = ""

    async def read() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            buf.extend(chunk)
            if len(buf) > keep_bytes:
                del buf[: len(buf) - keep_bytes]

    loop = asyncio.get_running_loop()
    reader = loop.create_task(read())
    deadline = loop.time() + timeout_s
    try:
        # Polled, not proc.wait(): that also waits for the pipe, which a background
        # child of the command may hold open long after the command itself exited.
        while proc.returncode is None:
            if loop.time() >= deadline:
                reason = f"timed out after {timeout_s:g} s"
                break
            await asyncio.sleep(0.02)
    finally:
        # Also whatever it left running in the background.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(reader), 1)
        reader.cancel()
    code = None if reason else proc.returncode
    status: CheckStatus = "passed" if code == 0 else "failed"
    tail = tail_text(bytes(buf), tail_lines, tail_chars)
    if reason:
        tail = (tail + "\n" if tail else "") + f"[workbench: {reason}]"
    return CheckResult(status, code, round(time.monotonic() - start, 3), tail, command, reason)
