"""Feeder threads: PTY output is read and parsed here, off the event loop.

On one thread, a loop iteration grew with the output of every busy session (kernel reads
and libghostty parsing), and a keystroke's echo waited behind several such iterations.
Here a small pool of threads (one per core, at most `MAX_THREADS`) reads the PTYs and
hands the bytes to each one's sink, which parses them in the same thread; `os.read` and
libghostty (through cffi) release the GIL, so this runs beside the event loop, whose
iterations now hold sockets, input, frames and requests only.

Fairness: each wake-up of a thread reads at most `CHUNK` bytes from each ready PTY. The
urgent ones (typed into lately) are read first and tried again after every other PTY's
chunk, which is then at most `URGENT_CHUNK`: an echo waits behind one small chunk's parse,
not a round of all of them (2.6 ms at p50 and 8.9 at p99 with 8 sessions streaming, now
~0.5 and ~2, the kernel's own share; docs/performance.md). A thread exits when it watches
nothing, so no thread outlives the sessions; `join()` waits for that.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import threading
from collections import deque
from typing import Protocol

log = logging.getLogger(__name__)

CHUNK = 16384
URGENT_CHUNK = 4096  # the other PTYs' read while one is typed into
# Most read from a PTY being removed (a left-behind child may write forever).
DRAIN_LIMIT = 1 << 20
MAX_THREADS = 2


class Sink(Protocol):
    """Where a PTY's output goes; `output` and `released` are called in a feeder thread."""

    @property
    def urgent(self) -> bool: ...

    def output(self, data: bytes) -> None: ...

    def released(self) -> None:
        """The fd is no longer read (end of file, or `remove` drained it): it may be closed."""


class _Worker:
    def __init__(self, pool: Feeder) -> None:
        self.pool = pool
        self.sinks: dict[int, Sink] = {}
        self.commands: deque[tuple[str, int, Sink | None]] = deque()
        self.dead = False
        self.ep = select.epoll()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.ep.register(self.wake_r, select.EPOLLIN)
        self.thread = threading.Thread(target=self._run, name="pty-feeder", daemon=True)

    def send(self, command: str, fd: int, sink: Sink | None = None) -> None:
        """Queue a command for the thread (called under the pool's lock)."""
        self.commands.append((command, fd, sink))
        with contextlib.suppress(BlockingIOError):
            os.write(self.wake_w, b"x")

    def _run(self) -> None:
        try:
            while self._commands():
                try:
                    events = self.ep.poll()
                except InterruptedError:
                    continue
                ready: list[int] = []
                for fd, _ in events:
                    if fd == self.wake_r:
                        with contextlib.suppress(BlockingIOError):
                            os.read(self.wake_r, 4096)
                    elif fd in self.sinks:
                        ready.append(fd)
                urgent = [fd for fd, sink in self.sinks.items() if sink.urgent]
                for fd in urgent:
                    self._read(fd, CHUNK)
                for fd in ready:
                    if fd in self.sinks and fd not in urgent:
                        self._read(fd, URGENT_CHUNK if urgent else CHUNK)
                        # An echo that arrived meanwhile is read now, not after the others.
                        for u in urgent:
                            if u in self.sinks:
                                self._read(u, CHUNK)
        except Exception:  # a bug here must not leave sessions unread without a trace
            log.exception("PTY feeder thread failed")
        finally:
            with self.pool.lock:
                if not self.dead:
                    self.dead = True
                    self.pool.workers.remove(self)
            for fd in list(self.sinks):  # their owners may close them now
                self._release(fd)
            self.ep.close()
            os.close(self.wake_r)
            os.close(self.wake_w)

    def _commands(self) -> bool:
        """Apply queued adds and removes; False when the thread should end (nothing watched)."""
        while True:
            with self.pool.lock:
                todo = list(self.commands)
                self.commands.clear()
                if not todo:
                    if self.sinks:
                        return True
                    self.dead = True
                    self.pool.workers.remove(self)
                    return False
            for command, fd, sink in todo:
                if command == "add" and sink is not None:
                    self.sinks[fd] = sink
                    try:
                        self.ep.register(fd, select.EPOLLIN)
                    except OSError:  # closed already: nothing to read
                        self._release(fd)
                elif command == "remove" and fd in self.sinks:
                    self._read(fd, DRAIN_LIMIT)  # what the program wrote last
                    if fd in self.sinks:
                        self._release(fd)

    def _read(self, fd: int, limit: int) -> None:
        """Read up to `limit` bytes (one read when `limit` is at most CHUNK) into fd's sink."""
        sink = self.sinks[fd]
        got = 0
        while got < limit:
            try:
                data = os.read(fd, min(limit, CHUNK))
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno not in (errno.EIO, errno.EBADF):
                    raise
                data = b""
            if not data:
                self._release(fd)
                return
            got += len(data)
            try:
                sink.output(data)
            except Exception:  # one session's bug must not stop the others' output
                log.exception("PTY output handler failed")

    def _release(self, fd: int) -> None:
        sink = self.sinks.pop(fd)
        with contextlib.suppress(OSError):
            self.ep.unregister(fd)
        with self.pool.lock:
            if self.pool.owner.get(fd) is self:
                del self.pool.owner[fd]
        sink.released()


class Feeder:
    """The pool: `add` a PTY's fd with its sink, `remove` it (drained) before closing it."""

    def __init__(self, threads: int | None = None) -> None:
        self.lock = threading.Lock()
        self.workers: list[_Worker] = []
        self.threads = threads or max(1, min(MAX_THREADS, os.cpu_count() or 1))
        self.owner: dict[int, _Worker] = {}
        # Every thread started and not yet joined: a worker leaves `workers` just before
        # its thread ends.
        self._started: list[threading.Thread] = []

    def add(self, fd: int, sink: Sink) -> None:
        """Read `fd` (non-blocking) in a feeder thread from now on."""
        with self.lock:
            live = [w for w in self.workers if not w.dead]
            if len(live) < self.threads:
                worker = _Worker(self)
                self.workers.append(worker)
                self._started = [t for t in self._started if t.is_alive()]
                self._started.append(worker.thread)
                worker.thread.start()
            else:
                worker = min(live, key=lambda w: len(w.sinks) + len(w.commands))
            self.owner[fd] = worker
            worker.send("add", fd, sink)

    def remove(self, fd: int) -> None:
        """Stop reading `fd` after reading what is there; its sink's `released` follows."""
        with self.lock:
            worker = self.owner.pop(fd, None)
            if worker is not None and not worker.dead:
                worker.send("remove", fd)

    def join(self, timeout: float = 5.0) -> None:
        """Wait for the threads, which end once nothing is watched."""
        with self.lock:
            threads = list(self._started)
        for t in threads:
            t.join(timeout)


# The daemon's pool; threads exist only while some PTY is read.
FEEDER = Feeder()
