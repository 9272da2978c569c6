"""A session's terminal, painted from the daemon's frames with the line API.

Each screen row becomes a cached Strip keyed by the row's version, so a frame that
changes three rows repaints three lines. While the widget has focus every key goes to
the session's PTY except the detach key; the attention key (ctrl+space) is offered to the
screen first (`JumpKey`), which jumps or hands its bytes (NUL) back to the program.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual import events, work
from textual.cache import LRUCache
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.selection import Selection
from textual.strip import Strip
from textual.widget import Widget

from workbench.core.echo_trace import mark
from workbench.protocol.terminal import ScrollbackResult
from workbench.ui.keymap import DEFAULT_DETACH, DEFAULT_KEYS, key_to_bytes, paste_bytes
from workbench.ui.term_model import Row, TermState, row_text
from workbench.ui.widgets.direct_paint import paint_now

ScrollbackFetch = Callable[[str, int, int], Awaitable[ScrollbackResult]]
WHEEL_LINES = 3


def _color(value: Any) -> Color | None:
    if not isinstance(value, int) or value < 0:
        return None
    if value & 0x1000000:
        rgb = value & 0xFFFFFF
        return Color.from_rgb(rgb >> 16, (rgb >> 8) & 0xFF, rgb & 0xFF)
    return Color.from_ansi(value & 0xFF)


_STYLE_CACHE: dict[tuple[Any, Any, int], Style] = {}


def run_style(fg: Any, bg: Any, flags: int) -> Style:
    key = (fg, bg, flags)
    style = _STYLE_CACHE.get(key)
    if style is None:
        style = Style(
            color=_color(fg), bgcolor=_color(bg), bold=bool(flags & 1) or None,
            dim=bool(flags & 2) or None, italic=bool(flags & 4) or None,
            underline=bool(flags & 8) or None, blink=bool(flags & 16) or None,
            reverse=bool(flags & 32) or None, conceal=bool(flags & 64) or None,
            strike=bool(flags & 128) or None,
        )
        if len(_STYLE_CACHE) > 4096:
            _STYLE_CACHE.clear()
        _STYLE_CACHE[key] = style
    return style


def row_strip(row: Row, width: int, base: Style) -> Strip:
    segments = []
    for run in row:
        if not run or not isinstance(run[0], str) or not run[0]:
            continue
        fg, bg, flags = [*run[1:4], -1, -1, 0][:3]
        segments.append(Segment(run[0], base + run_style(fg, bg, int(flags or 0))))
    return Strip(segments).crop_extend(0, width, base)


class TerminalView(Widget, can_focus=True):
    """Paints a TermState. Set `state`, then call `refresh_rows()` after applying frames."""

    DEFAULT_CSS = """
    TerminalView { height: 1fr; width: 1fr; background: $background; color: $foreground; }
    TerminalView:focus { background-tint: $foreground 3%; }
    """
    ALLOW_SELECT = True

    @dataclass
    class Input(Message):
        """Bytes for the session's PTY."""

        view: TerminalView
        session_id: str
        data: bytes

        @property
        def control(self) -> TerminalView:
            return self.view

    @dataclass
    class Detached(Message):
        view: TerminalView
        session_id: str

        @property
        def control(self) -> TerminalView:
            return self.view

    @dataclass
    class JumpKey(Message):
        """The attention key while attached: the screen jumps, or sends `data` to the PTY."""

        view: TerminalView
        session_id: str
        data: bytes

        @property
        def control(self) -> TerminalView:
            return self.view

    @dataclass
    class SizeWanted(Message):
        """The view is attached (focused) and its size differs from the session's PTY."""

        view: TerminalView
        session_id: str
        cols: int
        rows: int

        @property
        def control(self) -> TerminalView:
            return self.view

    @dataclass
    class Copied(Message):
        view: TerminalView
        text: str

        @property
        def control(self) -> TerminalView:
            return self.view

    scroll_back: reactive[int] = reactive(0, always_update=False)

    def __init__(self, state: TermState, *, detach_key: str = DEFAULT_DETACH,
                 fetch_scrollback: ScrollbackFetch | None = None, placeholder: str = "",
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.state = state
        self.detach_key = detach_key
        # The attention jump's keys (the screen sets the user's); every other key is the program's.
        self.jump_keys = frozenset(DEFAULT_KEYS["app.attention"].split(","))
        self.fetch_scrollback = fetch_scrollback
        self.placeholder = placeholder
        self._cache: LRUCache[tuple[Any, ...], Strip] = LRUCache(1024)
        self._sb_total = 0
        self._sb_rows: dict[int, Row] = {}
        self.last_paint = 0.0
        # Resize the PTY to this view even when not focused (single view, not a grid tile).
        self.auto_size = False

    # geometry

    def _top(self) -> int:
        """First screen row shown when the view is shorter than the screen: keep the cursor in view."""
        height, n = self.size.height, self.state.nrows
        if height >= n:
            return 0
        return max(0, min(n - height, self.state.cursor[1] - height + 1))

    def _line_source(self, y: int) -> tuple[str, int]:
        """('screen', row) or ('sb', scrollback index) for view line y."""
        if self.scroll_back <= 0:
            return "screen", self._top() + y
        idx = self._sb_total - self.scroll_back + y
        if idx < self._sb_total:
            return "sb", idx
        return "screen", idx - self._sb_total

    # painting

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        st = self.state
        if not st.received:
            text = self.placeholder if y == self.size.height // 2 else ""
            return Strip([Segment(text.center(width)[:width], base + Style(dim=True))]).crop_extend(
                0, width, base).apply_offsets(0, y)
        kind, idx = self._line_source(y)
        cursor_x = -1
        selection = self.text_selection
        if kind == "sb":
            row = self._sb_rows.get(idx)
            key: tuple[Any, ...] = ("sb", idx, row is None, width)
        else:
            if not 0 <= idx < st.nrows:
                return Strip.blank(width, base)
            row = st.rows[idx]
            cx, cy, visible = st.cursor
            if visible and cy == idx and self.scroll_back <= 0:
                cursor_x = cx
            key = ("screen", idx, st.versions[idx], cursor_x, self.has_focus, width)
        strip = None if selection is not None else self._cache.get(key)
        if strip is None:
            strip = row_strip(row or [], width, base)
            if cursor_x >= 0 and cursor_x < width:
                left, cell, right = strip.divide([cursor_x, cursor_x + 1, width])
                cur = Style(reverse=True) if self.has_focus else Style(underline=True)
                strip = Strip.join([left, cell.apply_style(cur), right])
            if selection is not None and (span := selection.get_span(y)) is not None:
                start, end = span
                end = width if end == -1 else end
                sel = self.screen.get_component_rich_style("screen--selection")
                a, b, c = strip.divide([start, max(start, end), width])
                strip = Strip.join([a, b.apply_style(sel), c])
            elif selection is None:
                self._cache[key] = strip
        self.last_paint = time.monotonic()
        return strip.apply_offsets(0, y)

    def refresh_rows(self, changed: set[int] | None) -> None:
        """Repaint the given screen rows (None: all)."""
        if changed is None or self.scroll_back > 0 or self.size.height < self.state.nrows:
            self.refresh()
            return
        top, height = self._top(), self.size.height
        lines = sorted(r - top for r in changed if top <= r < top + height)
        if self.text_selection is None and paint_now(self, lines):
            mark("ui.painted")
            return
        for y in lines:
            self.refresh(Region(0, y, self.size.width, 1))

    def visible_text(self) -> list[str]:
        out = []
        for y in range(self.size.height):
            kind, idx = self._line_source(y)
            if kind == "sb":
                out.append(row_text(self._sb_rows.get(idx) or []))
            else:
                out.append(row_text(self.state.rows[idx]) if 0 <= idx < len(self.state.rows) else "")
        return out

    # selection and copy

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        return selection.extract("\n".join(self.visible_text())), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()

    def on_mouse_up(self, event: events.MouseUp) -> None:
        # Copy on select, as terminals do: ctrl+c belongs to the shell while attached.
        text = self.screen.get_selected_text()
        if text and self.text_selection is not None:
            self.app.copy_to_clipboard(text)
            self.post_message(self.Copied(self, text))

    # input

    def on_key(self, event: events.Key) -> None:
        event.stop()
        event.prevent_default()
        if event.key == self.detach_key:
            self.post_message(self.Detached(self, self.state.session))
            return
        mark("ui.key")
        data = key_to_bytes(event.key, event.character, self.state.app_cursor)
        if event.key in self.jump_keys:
            self.post_message(self.JumpKey(self, self.state.session, data or b""))
            return
        if data:
            if self.scroll_back:
                self.scroll_back = 0
            self.post_message(self.Input(self, self.state.session, data))

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        if event.text:
            self.post_message(self.Input(self, self.state.session,
                                         paste_bytes(event.text, self.state.bracketed_paste)))

    def on_focus(self) -> None:
        self._want_size()
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_resize(self) -> None:
        self._cache.clear()
        if self.has_focus or self.auto_size:
            self._want_size()

    def want_size(self) -> None:
        self._want_size()

    def _want_size(self) -> None:
        cols, rows = self.size.width, self.size.height
        if cols >= 10 and rows >= 4 and (cols, rows) != (self.state.cols, self.state.nrows):
            self.post_message(self.SizeWanted(self, self.state.session, cols, rows))

    # wheel: scrollback in the normal screen; arrows or mouse reports in full-screen programs

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self._wheel(-1, event)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self._wheel(1, event)

    def _wheel(self, direction: int, event: events.MouseEvent) -> None:
        st = self.state
        if st.alt or (st.mouse and self.scroll_back == 0 and direction > 0):
            if st.mouse:
                button = 64 if direction < 0 else 65
                data = f"\x1b[<{button};{event.x + 1};{event.y + 1}M".encode()
            else:
                data = (b"\x1bOA" if direction < 0 else b"\x1bOB") * WHEEL_LINES
            self.post_message(self.Input(self, st.session, data))
            return
        if direction > 0:
            self.scroll_back = max(0, self.scroll_back - WHEEL_LINES)
        elif self.fetch_scrollback is not None:
            self._scroll_up()

    @work(exclusive=True, group="scrollback", exit_on_error=False)
    async def _scroll_up(self) -> None:
        assert self.fetch_scrollback is not None
        sid, height = self.state.session, self.size.height
        head = await self.fetch_scrollback(sid, 1 << 30, 1)
        self._sb_total = int(head.get("total") or 0)
        target = min(self._sb_total, self.scroll_back + WHEEL_LINES)
        start = max(0, self._sb_total - target)
        need = [i for i in range(start, min(self._sb_total, start + height)) if i not in self._sb_rows]
        if need:
            got = await self.fetch_scrollback(sid, need[0], need[-1] - need[0] + 1)
            for i, row in enumerate(got.get("rows") or []):
                self._sb_rows[int(got.get("start", need[0])) + i] = row
        self.scroll_back = target

    def watch_scroll_back(self) -> None:
        if self.scroll_back == 0:
            self._sb_rows.clear()
        self.refresh()
