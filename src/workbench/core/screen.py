"""Terminal emulator adapter: a narrow wrapper over libghostty-vt (pyghostty).

Everything the rest of workbench knows about terminal emulation goes through
`TerminalScreen`, so the engine can be swapped without touching callers. Screen content
leaves this module as rows of styled runs (see docs/architecture.md "Screen frames").

Reading strategy (measured, see benchmarks/emulator_throughput.py): a render state gives
per-row dirty flags; the dirty rows are then rendered by the library's VT formatter in one
call per span of rows, and the short SGR-annotated text is split into runs in Python, so
the Python cost grows with the number of style changes, not the number of cells. Reading
cells one by one through cffi is ~10x slower; it stays only as a fallback. Decoded rows
are cached, so `lines()` and `frame()` cost nothing when nothing changed.

Thread-safe: every call holds the screen's `lock` (re-entrant), so a feeder thread can
parse while the event loop reads; hold `lock` across several calls for a consistent view.

The native binding is `screen_native`; rows and SGR are `sgr`.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from pyghostty import ffi, lib

from workbench.core import screen_native as native
from workbench.core import screen_swap
from workbench.core.scrollback_cold import CHUNK_ROWS, ColdHistory
from workbench.core.sgr import DEFAULT_COLOR, DEFAULT_STYLE, VISIBLE_ON_BLANK, Row, parse_vt, row_text, row_to_ansi
from workbench.errors import UsageError, WorkbenchError

_ERASE_SAVED_LINES = b"\x1b[3J"
_KEEP_OUT_BYTES = 64 * 1024
MAX_COLS = 1000
MAX_ROWS = 500


@dataclass(frozen=True)
class Cursor:
    x: int
    y: int
    visible: bool


@dataclass(frozen=True)
class ScreenEvent:
    """Something the program signalled: kind is "title", "bell", "notify" or "cwd"."""

    kind: str
    value: str


def _check_size(cols: object, rows: object) -> tuple[int, int]:
    for name, value, limit in (("cols", cols, MAX_COLS), ("rows", rows, MAX_ROWS)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
            raise UsageError(
                f"terminal {name} must be a whole number from 1 to {limit}, got {value!r}"
            )
    return cols, rows  # type: ignore[return-value]


F = TypeVar("F", bound=Callable[..., Any])


def _locked(fn: F) -> F:
    """Run the method under the screen's lock (libghostty's terminal is not thread-safe)."""

    @functools.wraps(fn)
    def wrapper(self: TerminalScreen, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return fn(self, *args, **kwargs)

    return cast(F, wrapper)


# --- the adapter -------------------------------------------------------------------------


class TerminalScreen:
    """One emulated terminal: feed it PTY bytes, read rows, cursor, modes and events."""

    def __init__(
        self,
        cols: int = 80,
        rows: int = 24,
        *,
        scrollback_lines: int = 10_000,
        scrollback_bytes: int = 8_000_000,
    ) -> None:
        cols, rows = _check_size(cols, rows)
        self.lock = threading.RLock()
        for name, value in (
            ("scrollback_lines", scrollback_lines),
            ("scrollback_bytes", scrollback_bytes),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UsageError(f"{name} must be a whole number >= 0, got {value!r}")

        term = ffi.new("GhosttyTerminal*")
        state = ffi.new("GhosttyRenderState*")
        rows_it = ffi.new("GhosttyRenderStateRowIterator*")
        ok = (
            lib.ghostty_terminal_new(ffi.NULL, term, cols, rows) == 0
            and lib.ghostty_render_state_new(ffi.NULL, state) == 0
            and lib.ghostty_render_state_row_iterator_new(ffi.NULL, rows_it) == 0
        )
        # The free functions accept NULL, so a partial failure is cleaned up too. A list:
        # `screen_swap` replaces the terminal in it.
        self._owned: list[Any] = [term[0], state[0], rows_it[0]]
        self._finalizer = weakref.finalize(self, native.free_native, self._owned)
        if not ok:
            self._finalizer()
            raise WorkbenchError("could not create the terminal emulator (out of memory)")
        self._term = term[0]
        self._state = state[0]
        self._rows_it_p = rows_it
        self._rows_it = rows_it[0]
        self._state_read = False
        self._closed = False

        self._sink = native.Sink(cols, rows)
        self._handle = ffi.new_handle(self._sink)  # must outlive the terminal's use of it
        self._limits = (scrollback_lines, scrollback_bytes)
        native.setup_terminal(self._term, self._handle, *self._limits)

        # Reusable out-parameters: allocating cdata per call costs more than the call.
        self._y = ffi.new("uint16_t*")
        self._view = ffi.new("GhosttyCellsView*")
        self._style = native.new_sized("GhosttyStyle")
        self._cell = ffi.new("GhosttyCell*")
        self._ref = native.new_sized("GhosttyGridRef")
        self._point = ffi.new("GhosttyPointS*")
        self._mode = ffi.new("GhosttyTerminalModeConfig*")
        self._bool = ffi.new("bool*")
        self._size_t = ffi.new("size_t*")
        self._screen_kind = ffi.new("GhosttyTerminalScreen*")
        self._cursor_keys = ffi.new(
            "GhosttyTerminalData[3]",
            [
                lib.GHOSTTY_TERMINAL_DATA_CURSOR_X,
                lib.GHOSTTY_TERMINAL_DATA_CURSOR_Y,
                lib.GHOSTTY_TERMINAL_DATA_CURSOR_VISIBLE,
            ],
        )
        self._cursor_out = (ffi.new("uint16_t*"), ffi.new("uint16_t*"), ffi.new("bool*"))
        self._cursor_vals = ffi.new("void*[3]", [ffi.cast("void*", p) for p in self._cursor_out])
        self._formatter = ffi.new("GhosttyFormatter*")
        self._selection = native.new_sized("GhosttySelection")
        self._fmt_opts = native.new_sized("GhosttyFormatterTerminalOptions")
        self._fmt_opts.extra.size = ffi.sizeof("GhosttyFormatterTerminalExtra")
        self._fmt_opts.extra.screen.size = ffi.sizeof("GhosttyFormatterScreenExtra")
        self._fmt_opts.emit = lib.GHOSTTY_FORMATTER_FORMAT_VT
        self._fmt_opts.selection = self._selection
        # Grown on demand up to _KEEP_OUT_BYTES; a bigger one (a long history read) is used
        # once and dropped: every session keeps this buffer.
        self._out = ffi.new("uint8_t[]", screen_swap.OUT_START_BYTES)

        self._cols = cols
        self._nrows = rows
        self._cold = ColdHistory(scrollback_lines)
        self._rows: list[Row] = [[] for _ in range(rows)]
        self._pending: set[int] = set(range(rows))

    # -- plumbing

    def _live(self) -> None:
        if self._closed:
            raise WorkbenchError("this terminal screen is closed", hint="create a new one")

    def _get(self, key: int, out: Any) -> Any:
        self._live()
        if lib.ghostty_terminal_get(self._term, key, out) != 0:
            raise WorkbenchError(f"terminal emulator could not report value {key}")
        return out[0]

    def _grid_ref(self, tag: int, x: int, y: int) -> bool:
        point = self._point
        point.tag = tag
        point.value.x, point.value.y = x, y
        return bool(native.GRID_REF(self._term, point[0], self._ref) == 0)

    def _sync(self) -> None:
        """Bring the row cache up to date with the rows the emulator marked dirty."""
        self._live()
        state, rows_it, y = self._state, self._rows_it, self._y
        self._state_read = True
        lib.ghostty_render_state_update(state, self._term)
        lib.ghostty_render_state_get(
            state, lib.GHOSTTY_RENDER_STATE_DATA_ROW_ITERATOR, self._rows_it_p
        )
        next_dirty = lib.ghostty_render_state_row_iterator_next_dirty
        row_get = lib.ghostty_render_state_row_get
        cells_raw = lib.GHOSTTY_RENDER_STATE_ROW_DATA_CELLS_RAW
        view, nrows = self._view, self._nrows
        dirty: list[int] = []
        # Borrowed views of each dirty row's packed cells; valid until the next update.
        views: list[tuple[Any, int] | None] = []
        while next_dirty(rows_it, y):
            if y[0] < nrows:
                dirty.append(y[0])
                ok = row_get(rows_it, cells_raw, view) == 0
                views.append((view.ptr, view.len) if ok else None)
        lib.ghostty_render_state_clean(state)
        if not dirty:
            return
        tag = lib.GHOSTTY_POINT_TAG_ACTIVE
        first = dirty[0]
        rows = self._format(tag, first, dirty[-1])
        cache, pending = self._rows, self._pending
        for row_y, cells_view in zip(dirty, views, strict=True):
            row = rows[row_y - first] if rows is not None else None
            cells = ffi.unpack(*cells_view) if cells_view is not None else None
            if row is None or cells is None or native.needs_cells(row, cells):
                row = self._cell_row(tag, row_y, cells)
            # Dirty flags are conservative (the cursor leaving a row marks it): send real changes.
            if row != cache[row_y]:
                cache[row_y] = row
                pending.add(row_y)

    def _format(self, tag: int, first: int, last: int) -> list[Row] | None:
        """Rows first..last (inclusive) through the VT formatter; None if that failed."""
        sel = self._selection
        if not self._grid_ref(tag, 0, first):
            return None
        sel.start = self._ref[0]
        if not self._grid_ref(tag, self._cols - 1, last):
            return None
        sel.end = self._ref[0]
        fmt = self._formatter
        if lib.ghostty_formatter_terminal_new(ffi.NULL, fmt, self._term, self._fmt_opts[0]) != 0:
            return None
        try:
            n = self._size_t
            out = self._out
            res = lib.ghostty_formatter_format_buf(fmt[0], out, len(out), n)
            if res == lib.GHOSTTY_OUT_OF_SPACE and n[0] > len(out):
                out = ffi.new("uint8_t[]", int(n[0]) + 4096)
                if len(out) <= _KEEP_OUT_BYTES:
                    self._out = out
                res = lib.ghostty_formatter_format_buf(fmt[0], out, len(out), n)
            if res != 0:
                return None
            text = ffi.buffer(out, n[0])[:].decode("utf-8", "replace")
        finally:
            lib.ghostty_formatter_free(fmt[0])
        return parse_vt(text, last - first + 1)

    def _cell_row(self, tag: int, y: int, cells: list[int] | None = None) -> Row:
        """One row decoded from its packed cells (read one by one unless given)."""
        if not self._grid_ref(tag, 0, y):
            return []
        ref, cell = self._ref, self._cell
        if cells is None:
            # A ref names a cell of one page row; moving x along that row stays valid.
            cells = []
            for x in range(self._cols):
                ref.x = x
                cells.append(int(cell[0]) if lib.ghostty_grid_ref_cell(ref, cell) == 0 else 0)

        def style_at(x: int) -> tuple[int, int, int]:
            ref.x = x
            if lib.ghostty_grid_ref_style(ref, self._style) == 0:
                return native.style_tuple(self._style)
            return DEFAULT_STYLE

        def grapheme_at(x: int) -> str:
            ref.x = x
            n = self._size_t
            buf = ffi.new("uint32_t[]", 32)
            if lib.ghostty_grid_ref_graphemes(ref, buf, 32, n) != 0:
                return ""
            return "".join(chr(c) for c in ffi.unpack(buf, min(int(n[0]), 32)))

        return native.decode_row(cells, style_at, grapheme_at)

    # -- input

    @_locked
    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Parse program output. Any bytes are accepted; nothing here raises for bad input."""
        if self._closed or not data:
            return
        if isinstance(data, bytes):
            lib.ghostty_terminal_vt_write(self._term, data, len(data))
        else:
            buf = ffi.from_buffer("uint8_t[]", data)
            lib.ghostty_terminal_vt_write(self._term, buf, len(buf))

    @_locked
    def take_replies(self) -> bytes:
        """Bytes the terminal answers the program with (DSR, DA, ...); write them to the PTY."""
        out = bytes(self._sink.replies)
        self._sink.replies.clear()
        return out

    @_locked
    def take_events(self) -> list[ScreenEvent]:
        """What the program signalled since the last call (at most `screen_native.MAX_EVENTS`)."""
        out = [ScreenEvent(kind, value) for kind, value in self._sink.events]
        self._sink.events.clear()
        return out

    @_locked
    def resize(self, cols: int, rows: int) -> None:
        """Change the grid size; the primary screen reflows soft-wrapped lines."""
        cols, rows = _check_size(cols, rows)
        self._live()
        if (cols, rows) == (self._cols, self._nrows):
            return
        if lib.ghostty_terminal_resize(self._term, cols, rows, 8, 16) != 0:
            raise WorkbenchError(f"terminal emulator could not resize to {cols}x{rows}")
        self._cols, self._nrows = cols, rows
        self._sink.cols, self._sink.rows = cols, rows
        self._rows = [[] for _ in range(rows)]
        self._pending = set(range(rows))
        # The cache was just thrown away: make the next read take every row.
        self._mark_all_dirty()

    def _mark_all_dirty(self) -> None:
        full = ffi.new("GhosttyRenderStateDirty*", lib.GHOSTTY_RENDER_STATE_DIRTY_FULL)
        lib.ghostty_render_state_set(self._state, lib.GHOSTTY_RENDER_STATE_OPTION_DIRTY, full)

    # -- state

    @property
    def size(self) -> tuple[int, int]:
        """(cols, rows)."""
        return self._cols, self._nrows

    @property
    @_locked
    def cursor(self) -> Cursor:
        self._live()
        lib.ghostty_terminal_get_multi(
            self._term, 3, self._cursor_keys, self._cursor_vals, ffi.NULL
        )
        x, y, visible = self._cursor_out
        return Cursor(int(x[0]), int(y[0]), bool(visible[0]))

    @property
    @_locked
    def title(self) -> str:
        self._live()
        return native.terminal_string(self._term, lib.GHOSTTY_TERMINAL_DATA_TITLE)

    @property
    @_locked
    def cwd(self) -> str:
        """Working directory last reported by the program (OSC 7), or ""."""
        self._live()
        return native.cwd_from_osc(native.terminal_string(self._term, lib.GHOSTTY_TERMINAL_DATA_PWD))

    @property
    @_locked
    def alt_screen(self) -> bool:
        kind = self._get(lib.GHOSTTY_TERMINAL_DATA_ACTIVE_SCREEN, self._screen_kind)
        return bool(kind == lib.GHOSTTY_TERMINAL_SCREEN_ALTERNATE)

    @_locked
    def mode(self, number: int, *, ansi: bool = False) -> bool:
        """Whether DEC private mode `number` (or ANSI mode with ansi=True) is set."""
        self._live()
        self._mode.mode = native.mode_key(number, ansi)
        if lib.ghostty_terminal_get(self._term, lib.GHOSTTY_TERMINAL_DATA_MODE, self._mode):
            raise UsageError(f"unknown terminal mode {number}")
        return bool(self._mode.value)

    @property
    def bracketed_paste(self) -> bool:
        return self.mode(2004)

    @property
    def app_cursor_keys(self) -> bool:
        return self.mode(1)

    @property
    @_locked
    def mouse_tracking(self) -> bool:
        return bool(self._get(lib.GHOSTTY_TERMINAL_DATA_MOUSE_TRACKING, self._bool))

    @property
    def closed(self) -> bool:
        return self._closed

    # -- content

    @_locked
    def lines(self) -> list[str]:
        """Visible rows as plain text; leading spaces kept, trailing trimmed."""
        self._sync()
        return [row_text(row).rstrip() for row in self._rows]

    @_locked
    def ansi_lines(self) -> list[str]:
        """Visible rows with SGR styles, each ending with a reset."""
        self._sync()
        return [row_to_ansi(row) for row in self._rows]

    @_locked
    def frame(self) -> list[Row]:
        """Every visible row as runs. Counts as having sent everything: clears dirty rows."""
        self._sync()
        self._pending.clear()
        return list(self._rows)

    @_locked
    def dirty_rows(self) -> dict[int, Row]:
        """Rows changed since the last `dirty_rows` or `frame` call, by row index."""
        self._sync()
        out = {y: self._rows[y] for y in sorted(self._pending)}
        self._pending.clear()
        return out

    @_locked
    def cell_rows(self) -> list[Row]:
        """Visible rows decoded cell by cell: the slow read path `frame` falls back to.

        Does not touch the row cache or dirty rows; for cross-checking the fast path.
        """
        self._live()
        return [self._cell_row(lib.GHOSTTY_POINT_TAG_ACTIVE, y) for y in range(self._nrows)]

    @_locked
    def scrollback_len(self) -> int:
        """Rows of history above the screen (0 on the alternate screen)."""
        hot = self._hot_len()
        if hot == 0 and self.alt_screen:
            return 0
        return self._cold_visible(hot) + hot

    def _hot_len(self) -> int:
        return int(self._get(lib.GHOSTTY_TERMINAL_DATA_SCROLLBACK_ROWS, self._size_t))

    def _cold_visible(self, hot: int) -> int:
        """Cold rows shown: together with the emulator's, at most the scrollback limit."""
        return min(len(self._cold), max(0, self._cold.limit - hot))

    @_locked
    def scrollback(self, start: int, count: int) -> list[Row]:
        """History rows [start, start+count), clipped to what exists; row 0 is the oldest."""
        for name, value in (("start", start), ("count", count)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UsageError(f"scrollback {name} must be a whole number >= 0, got {value!r}")
        hot = self._hot_len()
        if hot == 0 and self.alt_screen:
            return []
        cold = self._cold_visible(hot)
        end = min(start + count, cold + hot)
        if start >= end:
            return []
        out: list[Row] = []
        if start < cold:
            skip = len(self._cold) - cold
            out = self._cold.rows(skip + start, min(end, cold) - start)
        if end > cold:
            out += self._hot_rows(max(start, cold) - cold, end - cold)
        return out

    def _hot_rows(self, start: int, end: int) -> list[Row]:
        """The emulator's own history rows [start, end)."""
        tag = lib.GHOSTTY_POINT_TAG_HISTORY
        rows = self._format(tag, start, end - 1)
        if rows is None:
            return [self._cell_row(tag, y) for y in range(start, end)]
        # History has no bulk cell view: re-read only the rows the formatter may have got wrong.
        out: list[Row] = []
        for y, row in zip(range(start, end), rows, strict=True):
            suspect = not row or any(
                bg != DEFAULT_COLOR or flags & VISIBLE_ON_BLANK for _, _, bg, flags in row
            )
            out.append(self._cell_row(tag, y) if suspect else row)
        return out

    @_locked
    def compact_history(self, min_rows: int = 1) -> int:
        """Move the emulator's history into the compressed cold store when it holds at least
        `min_rows`; the rows moved.

        For a screen whose output has paused: the rows read the same afterwards, at a few
        bytes each instead of ~1 KB. Not on the alternate screen (it has no history). Then
        the terminal is rebuilt from its snapshot, to free the pages it grew (`screen_swap`).
        """
        if self._closed or self.alt_screen or not screen_swap.at_ground(self._term):
            # Mid-sequence, ED 3 would cut the program's sequence or character short.
            return 0
        hot = self._hot_len()
        if hot < max(1, min_rows):
            return 0
        # A batch at a time: all of a 10,000-row history read at once was megabytes of
        # short-lived row objects, and the allocator kept the arenas they filled. Rows older
        # than the limit would be dropped at once, so they are not read.
        for start in range(max(0, hot - self._cold.limit), hot, CHUNK_ROWS):
            self._cold.extend(self._hot_rows(start, min(start + CHUNK_ROWS, hot)))
        # ED 3 erases the saved lines only: the screen, cursor and modes stay as they are.
        lib.ghostty_terminal_vt_write(self._term, _ERASE_SAVED_LINES, len(_ERASE_SAVED_LINES))
        screen_swap.rebuild(self)
        return hot

    @_locked
    def release_render_state(self) -> bool:
        """For a quiet screen: free what the last read held (`screen_swap.release_render_state`)."""
        return not self._closed and screen_swap.release_render_state(self)

    @_locked
    def cold_history_bytes(self) -> int:
        return self._cold.nbytes()

    @_locked
    def close(self) -> None:
        """Free the native terminal. Later `feed` calls are ignored; reads raise."""
        if not self._closed:
            self._closed = True
            self._finalizer()

    def __enter__(self) -> TerminalScreen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SAMPLE = (b"\x1b]0;title\x07\x1b[1;31mred\x1b[0m plain \xe2\x9c\x93\r\n" * 40
           + b"\x1b[?1049h\x1b[2J\x1b[Halt\x1b[?1049l\x1b[?2004h\x1b[?1h\x1b[6n")


def warm() -> None:
    """Exercise one screen so cffi parses the C types it uses now: on first use, in the
    first session's start, that parse held the daemon's loop for ~130 ms. Run it in a
    thread (the parse gives way to the loop at every switch interval)."""
    with TerminalScreen(80, 24, scrollback_lines=100) as scr:
        scr.feed(_SAMPLE)
        scr.take_replies()
        scr.take_events()
        scr.dirty_rows()
        scr.frame()
        scr.ansi_lines()
        _ = (scr.cursor, scr.title, scr.alt_screen, scr.bracketed_paste, scr.app_cursor_keys,
             scr.mouse_tracking, scr.scrollback_len())
        scr.scrollback(0, 10)
        scr.compact_history(min_rows=1)
        scr.resize(81, 25)
