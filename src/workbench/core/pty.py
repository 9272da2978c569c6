"""A PTY-backed child process whose output is read in a feeder thread (core/pty_feeder.py).

The event loop only writes input, watches for the exit and closes; reading (and whatever
the output callback does, e.g. parsing) happens off the loop, so busy sessions cannot
starve it and an echo is never queued behind another session's bulk output.
See docs/performance.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import ptyprocess

from workbench.core.pty_feeder import FEEDER, Feeder
from workbench.errors import UsageError

WRITE_CHUNK = 65536
# A session written to within this many seconds counts as interactive.
INTERACTIVE_S = 1.0


def process_start_time(pid: int) -> int | None:
    """Kernel start time of `pid` (clock ticks since boot), to tell a pid from its reuse."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name may contain spaces and ')': fields resume after the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def default_signals() -> None:
    """In the child, before it execs: every signal back to its default action, none blocked.

    A child inherits ignored signals through exec. Python ignores SIGPIPE and SIGXFSZ, so
    `yes | head -1` in a session printed "Broken pipe"; a daemon started from a script's
    background job also ignores SIGINT and SIGQUIT, and then Ctrl-C could not stop a
    session's program. A terminal (tmux, a terminal emulator) starts its shell with the
    defaults."""
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            with contextlib.suppress(OSError, ValueError):  # the C library's own (32, 33)
                signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())


def _no_output(data: bytes) -> None:
    pass


def _no_exit(proc: PtyProcess) -> None:
    pass


class PtyProcess:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        cols: int,
        rows: int,
        pass_fds: Sequence[int] = (),
    ) -> None:
        if not argv:
            raise UsageError("empty command")
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(env)
        self.cols, self.rows = cols, rows
        self.pass_fds = tuple(pass_fds)
        self.exit_code: int | None = None
        self.exit_signal: int | None = None
        self._proc: ptyprocess.PtyProcess | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._out: bytearray = bytearray()
        self._writing = False
        self._pidfd: int | None = None
        self._feeder: Feeder = FEEDER
        self._released = False
        self._finishing = False
        self._exited = asyncio.Event()
        self._on_output: Callable[[bytes], None] = _no_output
        self._on_exit: Callable[[PtyProcess], None] = _no_exit
        self.last_input = float("-inf")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def fd(self) -> int:
        assert self._proc is not None
        return int(self._proc.fd)

    def start(
        self, on_output: Callable[[bytes], None], on_exit: Callable[[PtyProcess], None]
    ) -> None:
        """Spawn; `on_output` is called in a feeder thread, `on_exit` on the loop."""
        self._loop = asyncio.get_running_loop()
        self._on_output, self._on_exit = on_output, on_exit
        try:
            self._proc = ptyprocess.PtyProcess.spawn(
                self.argv,
                cwd=str(self.cwd),
                env=self.env,
                dimensions=(self.rows, self.cols),
                pass_fds=self.pass_fds,
                preexec_fn=default_signals,
            )
        except FileNotFoundError:
            raise UsageError(f"command not found: {self.argv[0]}") from None
        except OSError as e:
            raise UsageError(f"cannot start {self.argv[0]}: {e.strerror or e}") from None
        # Its close() sleeps this long "for the kernel" before checking the child, on our
        # event loop: 100 ms of every session's end. We close only once the child is reaped.
        self._proc.delayafterclose = 0
        os.set_blocking(self.fd, False)
        self._feeder.add(self.fd, self)
        try:
            self._pidfd = os.pidfd_open(self._proc.pid)
            self._loop.add_reader(self._pidfd, self._check_exit)
        except (AttributeError, OSError):
            self._pidfd = None
            self._loop.call_later(0.5, self._poll_exit)

    @property
    def interactive(self) -> bool:
        """Typed into lately (`last_input` is set by whoever writes on a person's behalf)."""
        return time.monotonic() - self.last_input < INTERACTIVE_S

    # -- the feeder's sink (called in the feeder thread)

    @property
    def urgent(self) -> bool:
        return self.interactive

    def output(self, data: bytes) -> None:
        self._on_output(data)

    def released(self) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing waits any more
            self._loop.call_soon_threadsafe(self._on_released)

    def _on_released(self) -> None:
        self._released = True
        if self._finishing:
            self._close()
        else:  # end of file: the child has probably exited
            self._check_exit()

    def _check_exit(self) -> None:
        if self._proc is None or self.exit_code is not None or self.exit_signal is not None:
            return
        try:
            pid, status = os.waitpid(self._proc.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self._proc.pid, 0
        if pid == 0:
            return
        if os.WIFSIGNALED(status):
            self.exit_signal = os.WTERMSIG(status)
            self.exit_code = 128 + self.exit_signal
        else:
            self.exit_code = os.waitstatus_to_exitcode(status)
        self._proc.terminated = True
        self._finish()

    def _poll_exit(self) -> None:
        self._check_exit()
        if self.exit_code is None and self._loop is not None:
            self._loop.call_later(0.5, self._poll_exit)

    def _finish(self) -> None:
        """The child exited: read what it wrote last (the feeder drains), then close."""
        assert self._loop is not None
        self._finishing = True
        if self._pidfd is not None:  # stays readable: it would call back until closed
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self._released:
            self._close()
        else:
            self._feeder.remove(self.fd)

    def _close(self) -> None:
        assert self._loop is not None and self._proc is not None
        if self._exited.is_set():
            return
        with contextlib.suppress(Exception):
            self._loop.remove_writer(self.fd)
        with contextlib.suppress(OSError):
            self._proc.close(force=False)
        self._exited.set()
        on_exit = self._on_exit
        # The callbacks are the owner's bound methods, and the owner holds this process: a
        # cycle that would keep a removed session's screen and buffers until a full
        # collection, which the daemon's raised thresholds make rare.
        self._on_output, self._on_exit = _no_output, _no_exit
        on_exit(self)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self.exit_code is None

    def write(self, data: bytes) -> None:
        if not self.alive or not data:
            return
        self._out += data
        self._flush()

    def _flush(self) -> None:
        assert self._loop is not None
        while self._out:
            try:
                n = os.write(self.fd, self._out[:WRITE_CHUNK])
            except BlockingIOError:
                break
            except OSError:
                self._out.clear()
                break
            del self._out[:n]
        if self._out and not self._writing:
            self._writing = True
            self._loop.add_writer(self.fd, self._writable)
        elif not self._out and self._writing:
            self._writing = False
            self._loop.remove_writer(self.fd)

    def _writable(self) -> None:
        self._flush()

    def resize(self, cols: int, rows: int) -> None:
        self.cols, self.rows = cols, rows
        if self.alive:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def signal(self, sig: int) -> None:
        """Signal the child's whole process group (its job-control children too)."""
        if not self.alive or self.pid is None:
            return
        try:
            os.killpg(os.getpgid(self.pid), sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    async def stop(self, grace: float = 2.0) -> None:
        """SIGHUP (as a closing terminal would), then SIGKILL after `grace` seconds."""
        if not self.alive:
            return
        self.signal(signal.SIGHUP)
        self.signal(signal.SIGCONT)
        try:
            await asyncio.wait_for(self._exited.wait(), grace)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exited.wait(), 2.0)

    async def wait(self) -> int | None:
        await self._exited.wait()
        return self.exit_code
