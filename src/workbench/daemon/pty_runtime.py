"""A running PTY session: process + emulator + frame publishing at most ~60 frames/s."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from workbench.core.pty import PtyProcess
from workbench.core.screen import ScreenEvent, TerminalScreen
from workbench.daemon.hub import Hub

log = logging.getLogger(__name__)

FRAME_INTERVAL = 1 / 60


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
        self.bytes_in = 0
        self.last_output = time.monotonic()

    def start(self) -> None:
        self.proc.start(self._output, self._exited)

    @property
    def alive(self) -> bool:
        return self.proc.alive

    def _output(self, data: bytes) -> None:
        self.bytes_in += len(data)
        self.last_output = time.monotonic()
        self.screen.feed(data)
        replies = self.screen.take_replies()
        if replies:
            self.proc.write(replies)
        for ev in self.screen.take_events():
            self._on_screen_event(ev)
        self._on_output()
        self._schedule_frame()

    def _schedule_frame(self) -> None:
        if self._frame_handle is not None:
            return
        if not self.hub.frame_watchers(self.session_id):
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_frame + FRAME_INTERVAL - loop.time())
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

    def flush_frame(self) -> None:
        """Send the rows changed since the last frame to every watcher."""
        self._frame_handle = None
        self._last_frame = asyncio.get_running_loop().time()
        watchers = self.hub.frame_watchers(self.session_id)
        if not watchers:
            return
        rows = self.screen.dirty_rows()
        frame = {**self._meta(), "rows": {str(k): v for k, v in rows.items()}, "full": False}
        for c in watchers:
            c.send_frame(self.session_id, frame)

    def full_frame(self) -> dict[str, Any]:
        """A complete frame for a newly attached client; others get their pending delta first."""
        if self.hub.frame_watchers(self.session_id):
            if self._frame_handle is not None:
                self._frame_handle.cancel()
            self.flush_frame()
        rows = self.screen.frame()
        return {**self._meta(), "rows": {str(i): r for i, r in enumerate(rows)}, "full": True}

    def write(self, data: bytes) -> None:
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
