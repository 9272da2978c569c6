"""A running PTY session: process + emulator + frame publishing at most ~60 frames/s.

Output is parsed in a feeder thread (core/pty_feeder.py) under the screen's lock; what the
loop must do about it (write the terminal's replies, pass on screen events, schedule a
frame) is posted to the loop once per batch, coalesced while one is pending.

Frames cost the event loop (decode the changed rows, then JSON), so under load they are
rationed: the frames of sessions nobody is typing into share `FRAME_SHARE` of wall time
(a token bucket across all sessions), and their rate drops when many stream at once. A
session typed into lately gets its echo frame at once, written to the socket directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.core.echo_trace import mark
from workbench.core.pty import PtyProcess
from workbench.core.screen import ScreenEvent, TerminalScreen
from workbench.daemon.hub import Hub

log = logging.getLogger(__name__)

FRAME_INTERVAL = 1 / 60
# The first frame after input (the echo of typed keys) may follow the previous one this
# soon; a 60 Hz cap would add up to 16 ms to every keystroke.
ECHO_INTERVAL = 1 / 250
FRAME_SHARE = 0.2
FRAME_BURST = 0.02
MAX_PENDING_EVENTS = 256


class _FrameBudget:
    """Token bucket, in seconds of loop time, for the frames of sessions not typed into."""

    def __init__(self) -> None:
        self.tokens = FRAME_BURST
        self.at = time.perf_counter()

    def wait(self) -> float:
        """Seconds until a background frame may be made (0: now)."""
        now = time.perf_counter()
        self.tokens = min(FRAME_BURST, self.tokens + (now - self.at) * FRAME_SHARE)
        self.at = now
        return 0.0 if self.tokens > 0 else -self.tokens / FRAME_SHARE

    def spend(self, seconds: float) -> None:
        self.tokens -= seconds


_budget = _FrameBudget()

# History is compressed once a session has printed nothing for this long, if it has this
# many rows in the emulator (~1 KB each there, a few bytes compressed).
COMPACT_AFTER_QUIET_S = 2.0
COMPACT_MIN_ROWS = 200


class PtyRuntime:
    def __init__(
        self,
        session_id: str,
        hub: Hub,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        cols: int,
        rows: int,
        scrollback_lines: int,
        pass_fds: Sequence[int] = (),
        on_exit: Callable[[PtyRuntime], None],
        on_screen_event: Callable[[ScreenEvent], None] = lambda e: None,
        on_output: Callable[[], None] = lambda: None,
    ) -> None:
        self.session_id = session_id
        self.hub = hub
        self.screen = TerminalScreen(cols, rows, scrollback_lines=scrollback_lines)
        self.proc = PtyProcess(argv, cwd=cwd, env=env, cols=cols, rows=rows, pass_fds=pass_fds)
        self._on_exit = on_exit
        self._on_screen_event = on_screen_event
        self._on_output = on_output
        self._frame_handle: asyncio.TimerHandle | None = None
        self._last_frame = 0.0
        self._echo_due = False
        self.bytes_in = 0
        self.last_output = time.monotonic()
        # Filled by the feeder thread under the screen's lock, emptied by the loop.
        self._replies = bytearray()
        self._events: list[ScreenEvent] = []
        self._posted = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.proc.start(self._feed, self._exited)

    @property
    def alive(self) -> bool:
        return self.proc.alive

    def _feed(self, data: bytes) -> None:
        """In the feeder thread: parse, and have the loop follow up once per batch."""
        scr = self.screen
        if self._echo_due:
            mark("daemon.parsing")
        with scr.lock:
            if scr.closed:
                return
            scr.feed(data)
            self.bytes_in += len(data)
            self.last_output = time.monotonic()
            self._replies += scr.take_replies()
            self._events += scr.take_events()
            del self._events[:-MAX_PENDING_EVENTS]  # a flood of bells while the loop is busy
            post, self._posted = not self._posted, True
        if post and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the daemon is gone
                self._loop.call_soon_threadsafe(self._output)

    def _output(self) -> None:
        if self._echo_due:
            mark("daemon.loop")
        with self.screen.lock:
            self._posted = False
            replies, self._replies = bytes(self._replies), bytearray()
            events, self._events = self._events, []
        if self.screen.closed:
            return
        if replies:
            self.proc.write(replies)
        for ev in events:
            self._on_screen_event(ev)
        self._on_output()
        self._schedule_frame()

    def _schedule_frame(self) -> None:
        if self._frame_handle is not None:
            return
        if not self.hub.frame_watchers(self.session_id):
            return
        loop = asyncio.get_running_loop()
        if self._echo_due:
            delay = max(0.0, self._last_frame + ECHO_INTERVAL - loop.time())
            if delay == 0.0:
                self.flush_frame(urgent=True)
                return
            self._frame_handle = loop.call_later(delay, self.flush_frame, True)
            return
        delay = max(0.0, self._last_frame + FRAME_INTERVAL - loop.time())
        if not self.proc.interactive:
            delay = max(delay, _budget.wait())
        self._frame_handle = loop.call_later(delay, self.flush_frame)

    def _meta(self) -> dict[str, Any]:
        cur = self.screen.cursor
        return {
            "session": self.session_id,
            "cursor": [cur.x, cur.y, cur.visible],
            "size": list(self.screen.size),
            "alt": self.screen.alt_screen,
            "title": self.screen.title,
            "bracketed_paste": self.screen.bracketed_paste,
            "mouse": self.screen.mouse_tracking,
            "app_cursor": self.screen.app_cursor_keys,
        }

    def flush_frame(self, urgent: bool = False) -> None:
        """Send the rows changed since the last frame to every watcher."""
        self._frame_handle = None
        self._echo_due = False
        self._last_frame = asyncio.get_running_loop().time()
        watchers = self.hub.frame_watchers(self.session_id)
        if not watchers:
            return
        if self.screen.closed:
            return
        t0 = time.perf_counter()
        with self.screen.lock:  # rows and cursor of the same moment
            rows = self.screen.dirty_rows()
            meta = self._meta()
        frame = {**meta, "rows": {str(k): v for k, v in rows.items()}, "full": False}
        if urgent:
            mark("daemon.frame")
        for c in watchers:
            if urgent:
                c.send_frame(self.session_id, frame, urgent=True)
            else:
                c.send_frame(self.session_id, frame)
        if not urgent:
            # Encoding happens later in each client's pump and costs about as much again.
            _budget.spend(2 * (time.perf_counter() - t0))

    def full_frame(self) -> dict[str, Any]:
        """A complete frame for a newly attached client; others get their pending delta first."""
        if self.hub.frame_watchers(self.session_id):
            if self._frame_handle is not None:
                self._frame_handle.cancel()
            self.flush_frame()
        with self.screen.lock:
            rows = self.screen.frame()
            meta = self._meta()
        return {**meta, "rows": {str(i): r for i, r in enumerate(rows)}, "full": True}

    def write(self, data: bytes) -> None:
        """Input on a person's (or agent's) behalf: the session counts as interactive."""
        mark("daemon.written")
        self.proc.last_input = time.monotonic()
        self._echo_due = True
        self.proc.write(data)

    def resize(self, cols: int, rows: int) -> None:
        self.screen.resize(cols, rows)
        self.proc.resize(cols, rows)
        frame = self.full_frame()
        for c in self.hub.frame_watchers(self.session_id):
            c.send_frame(self.session_id, frame)

    def _exited(self, proc: PtyProcess) -> None:
        if self._frame_handle is not None:
            self._frame_handle.cancel()
            self._frame_handle = None
        if self.hub.frame_watchers(self.session_id):
            self.flush_frame()
        self._on_exit(self)

    async def stop(self) -> None:
        await self.proc.stop()

    def close(self) -> None:
        if self._frame_handle is not None:
            self._frame_handle.cancel()
        self.screen.close()

    def compact_if_quiet(self, now: float) -> int:
        """Compress the screen's history once output has paused (core/scrollback_cold.py),
        and free the copy of its cells the last read left (`release_render_state`); the rows
        moved. During a stream the emulator's own limits bound it."""
        if now - self.last_output < COMPACT_AFTER_QUIET_S:
            return 0
        moved = self.screen.compact_history(min_rows=COMPACT_MIN_ROWS)
        self.screen.release_render_state()
        return moved
