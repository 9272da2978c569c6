"""Running one command for the agent: spawn it in its own process group, keep the head and
tail of its merged output, notice its exit at once, and kill what it left behind.

Shared by the daemon's sandboxed runner (`daemon/agent_host.py`) and `LocalRunner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class CommandResult:
    exit_code: int | None  # None when killed by the timeout
    output: str
    timed_out: bool
    duration_ms: int


class _ExitProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The stream protocol plus a future set when the process itself exits.

    `Process.wait()` also waits for the pipes to close, which a background child holding
    stdout would delay until it exits; polling `returncode` instead costs up to the poll
    interval on every command (it was ~15 ms a tool call).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=2**16, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


@dataclass
class Spawned:
    proc: asyncio.subprocess.Process
    exited: asyncio.Future[None]  # done when the process (not its pipes) is gone


async def spawn(argv: list[str], **kwargs: Any) -> Spawned:
    """`asyncio.create_subprocess_exec` whose result also says when the process exited."""
    loop = asyncio.get_running_loop()
    protocol = _ExitProtocol(loop)
    transport, _ = await loop.subprocess_exec(lambda: protocol, *argv, **kwargs)
    return Spawned(asyncio.subprocess.Process(transport, protocol, loop), protocol.exited)


class _Capture:
    """Keeps the first and last `limit/2` bytes of a stream, counting what falls between."""

    def __init__(self, limit: int) -> None:
        self.half = max(limit // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def feed(self, chunk: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            extra = len(self.tail) - self.half
            if extra > 0:
                del self.tail[:extra]
                self.dropped += extra

    def text(self) -> str:
        middle = f"\n[... {self.dropped} bytes not captured ...]\n" if self.dropped else ""
        head = self.head.decode("utf-8", "replace")
        return head + middle + bytes(self.tail).decode("utf-8", "replace")


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def collect_output(
    spawned: Spawned, timeout_ms: int, max_bytes: int, elapsed: Callable[[], int]
) -> CommandResult:
    """Wait for a command started in its own session (merged stdout/stderr on a pipe), keep
    the head and tail of its output, and kill its whole process group when done or late."""
    proc = spawned.proc
    capture = _Capture(max_bytes)
    assert proc.stdout is not None

    async def pump() -> None:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(65536):
            capture.feed(chunk)

    reader = asyncio.create_task(pump())
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(spawned.exited), timeout=max(timeout_ms, 0) / 1000)
    except TimeoutError:
        timed_out = True
    except asyncio.CancelledError:
        _kill_group(proc.pid)
        reader.cancel()
        raise
    # The leader is done (or timed out); take any children still holding the pipe with it.
    _kill_group(proc.pid)
    await spawned.exited
    try:
        await asyncio.wait_for(reader, timeout=1.0)
    except TimeoutError:
        # A child that left the group (setsid) still holds the pipe: keep what we have and
        # close our end, which asyncio only exposes through the process transport.
        transport = getattr(proc, "_transport", None)
        if transport is not None:
            transport.close()
    code = None if timed_out else proc.returncode
    return CommandResult(code, capture.text(), timed_out, elapsed())


class LocalRunner:
    """Plain subprocess without a sandbox: its own process group, stdin /dev/null,
    stdout and stderr merged. On timeout, and after the command exits, the whole group is
    killed so background children do not outlive the call."""

    def __init__(
        self, env: Mapping[str, str] | None = None, max_capture_bytes: int = 8 * 1024 * 1024
    ) -> None:
        self.env = dict(env) if env is not None else None
        self.max_capture_bytes = max_capture_bytes

    async def run(self, argv: list[str], cwd: Path, timeout_ms: int) -> CommandResult:
        start = time.monotonic()

        def elapsed() -> int:
            return int((time.monotonic() - start) * 1000)

        if not argv:
            return CommandResult(127, "empty command", False, 0)
        try:
            spawned = await spawn(
                argv,
                cwd=cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError:
            if not Path(cwd).is_dir():
                return CommandResult(127, f"working directory not found: {cwd}", False, elapsed())
            return CommandResult(127, f"command not found: {argv[0]}", False, elapsed())
        except PermissionError:
            return CommandResult(126, f"permission denied: {argv[0]}", False, elapsed())
        except OSError as e:
            return CommandResult(126, f"cannot run {argv[0]}: {e.strerror or e}", False, elapsed())

        return await collect_output(spawned, timeout_ms, self.max_capture_bytes, elapsed)
