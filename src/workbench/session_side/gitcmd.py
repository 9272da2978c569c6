"""Running git inside the sandbox, for the session-side helpers (stdlib only).

Only `os` and `sys` (loaded by every interpreter anyway): `subprocess` alone would add
~10 ms to each helper's start, and a snapshot pays that start on every diff. git runs by
`posix_spawn` with its output on a pipe and its stderr (and any input) in unnamed
scratch files, so no second pipe can fill up while the first is read.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing and collections are not loaded at run time
    from collections.abc import Mapping, Sequence

# The helpers' own invocations: no pager, no prompts; hooks stay the session's business
# (they run as the session, inside the sandbox) but none of ours needs them.
_BASE = ("git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "core.quotePath=false")


class HelperError(Exception):
    """A failure to report to the host as {"error": ...}."""


class Completed:
    """What `subprocess.run` would have returned: returncode, stdout, stderr."""

    __slots__ = ("args", "returncode", "stderr", "stdout")

    def __init__(self, args: list[str], returncode: int, stdout: bytes, stderr: bytes) -> None:
        self.args, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr


def scratch_path(prefix: str) -> str:
    """A fresh name under $TMPDIR (the sandbox's private /tmp)."""
    return os.path.join(os.environ.get("TMPDIR") or "/tmp", prefix + os.urandom(8).hex())


def scratch_fd() -> int:
    """An unnamed read-write file (close-on-exec)."""
    try:
        return os.memfd_create("wb-git", os.MFD_CLOEXEC)
    except (AttributeError, OSError):  # not Linux, or refused
        pass
    name = scratch_path("wb-git-")
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    os.unlink(name)
    return fd


def read_all(fd: int, limit: int | None = None) -> bytes:
    """`fd` to its end, or its first `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while limit is None or size < limit:
        chunk = os.read(fd, 1 << 16 if limit is None else min(1 << 16, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def spawn(argv: Sequence[str], env: Mapping[str, str], *, input: bytes | None = None,
          stdout_fd: int | None = None) -> Completed:
    """Run `argv` to the end. Its stdout is captured, or goes to `stdout_fd` as it is."""
    opened: list[int] = []
    pid = 0
    try:
        if input is None:
            stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        else:
            stdin = scratch_fd()
            view = memoryview(input)
            while view:
                view = view[os.write(stdin, view):]
            os.lseek(stdin, 0, os.SEEK_SET)
        opened.append(stdin)
        err = scratch_fd()
        opened.append(err)
        read_end = write_end = -1
        if stdout_fd is None:
            read_end, write_end = os.pipe()
            opened += [read_end, write_end]
        actions = [(os.POSIX_SPAWN_DUP2, stdin, 0), (os.POSIX_SPAWN_DUP2, err, 2)]
        if stdout_fd is None:
            actions.append((os.POSIX_SPAWN_DUP2, write_end, 1))
        elif stdout_fd != 1:
            actions.append((os.POSIX_SPAWN_DUP2, stdout_fd, 1))
        pid = os.posix_spawnp(argv[0], list(argv), dict(env), file_actions=actions)
        out = b""
        if stdout_fd is None:
            os.close(write_end)
            opened.remove(write_end)
            out = read_all(read_end)
        _, status = os.waitpid(pid, 0)
        pid = 0
        os.lseek(err, 0, os.SEEK_SET)
        return Completed(list(argv), os.waitstatus_to_exitcode(status), out, read_all(err))
    finally:
        if pid:  # interrupted while git ran: it does not outlive us
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except OSError:
                pass
        for fd in opened:
            try:
                os.close(fd)
            except OSError:
                pass


def git(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    stdout_fd: int | None = None,
) -> Completed:
    full = dict(os.environ)
    full.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", GIT_EDITOR=":")
    if env:
        full.update(env)
    proc = spawn([*_BASE, *args], full, input=input, stdout_fd=stdout_fd)
    if check and proc.returncode != 0:
        raise HelperError(f"git {args[0]} failed: {tail(proc.stderr)}")
    return proc


def out(*args: str, env: Mapping[str, str] | None = None) -> str:
    return git(args, env=env).stdout.decode("utf-8", "surrogateescape").strip()


def tail(raw: bytes) -> str:
    lines = [ln for ln in raw.decode("utf-8", "replace").splitlines() if ln.strip()]
    return "; ".join(lines[-3:])[:500] or "no message"


def fail(message: str) -> int:
    sys.stderr.write(message[:2000] + "\n")
    return 2
