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

Not thread-safe: one owner (the daemon's session runtime) must serialise calls.

Over 600 lines because it holds the native binding, the SGR parser and the adapter; the
split along those seams is issue 13, item 4.
"""

from __future__ import annotations

import json
import re
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from pyghostty import ffi, lib

from workbench.errors import UsageError, WorkbenchError

Run = tuple[str, int, int, int]
"""(text, fg, bg, flags): colours -1 default, 0..255 palette, TRUECOLOR | 0xRRGGBB."""
Row = list[Run]

DEFAULT_COLOR = -1
TRUECOLOR = 0x1000000

BOLD = 1 << 0
FAINT = 1 << 1
ITALIC = 1 << 2
UNDERLINE = 1 << 3
BLINK = 1 << 4
INVERSE = 1 << 5
INVISIBLE = 1 << 6
STRIKETHROUGH = 1 << 7

MAX_COLS = 1000
MAX_ROWS = 500
# A program that floods bells or DSR queries while nobody drains them must not grow
# memory without bound; real terminals drop such excess too.
MAX_EVENTS = 1000
MAX_REPLY_BYTES = 1 << 20

_DEFAULT_STYLE = (DEFAULT_COLOR, DEFAULT_COLOR, 0)
# A blank cell with these flags is still visible, so it is not trimmed from a row's end.
_VISIBLE_ON_BLANK = INVERSE | UNDERLINE | STRIKETHROUGH


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


# --- packed cell layout ------------------------------------------------------------------


@dataclass(frozen=True)
class _CellLayout:
    tag_mask: int
    cp_shift: int
    cp_mask: int
    style_shift: int
    style_mask: int
    wide_shift: int
    wide_mask: int
    # Content tags and wide values (GhosttyCellContentTag / GhosttyCellWide).
    tag_grapheme: int
    tag_bg_palette: int
    wide_spacer_tail: int
    wide_spacer_head: int


def _load_cell_layout() -> _CellLayout:
    """Bit positions of GhosttyCell, from the library's own manifest (they are not ABI)."""
    manifest = json.loads(ffi.string(lib.ghostty_type_json()))
    bits = manifest["types"]["GhosttyCell"]["bits"]
    content = bits["content"]
    cp = content["arms"]["CODEPOINT"]["bits"]["codepoint"]

    def field(name: str) -> tuple[int, int]:
        return bits[name]["lsb"], (1 << bits[name]["width"]) - 1

    tag_shift, tag_mask = field("content_tag")
    if tag_shift != 0:
        raise WorkbenchError("unsupported libghostty-vt cell layout (content tag not at bit 0)")
    style_shift, style_mask = field("style_id")
    wide_shift, wide_mask = field("wide")
    return _CellLayout(
        tag_mask=tag_mask,
        cp_shift=content["lsb"] + cp["lsb"],
        cp_mask=(1 << cp["width"]) - 1,
        style_shift=style_shift,
        style_mask=style_mask,
        wide_shift=wide_shift,
        wide_mask=wide_mask,
        tag_grapheme=lib.GHOSTTY_CELL_CONTENT_CODEPOINT_GRAPHEME,
        tag_bg_palette=lib.GHOSTTY_CELL_CONTENT_BG_COLOR_PALETTE,
        wide_spacer_tail=lib.GHOSTTY_CELL_WIDE_SPACER_TAIL,
        wide_spacer_head=lib.GHOSTTY_CELL_WIDE_SPACER_HEAD,
    )


_L = _load_cell_layout()
# Any of these bits set means the cell needs more than "plain codepoint, default style".
_SPECIAL = _L.tag_mask | (_L.style_mask << _L.style_shift) | (_L.wide_mask << _L.wide_shift)


def _color(c: Any) -> int:
    tag = c.tag
    if tag == lib.GHOSTTY_STYLE_COLOR_PALETTE:
        return int(c.value.palette)
    if tag == lib.GHOSTTY_STYLE_COLOR_RGB:
        rgb = c.value.rgb
        return TRUECOLOR | (rgb.r << 16) | (rgb.g << 8) | rgb.b
    return DEFAULT_COLOR


def _style_tuple(st: Any) -> tuple[int, int, int]:
    flags = (
        (BOLD if st.bold else 0)
        | (FAINT if st.faint else 0)
        | (ITALIC if st.italic else 0)
        | (UNDERLINE if st.underline else 0)
        | (BLINK if st.blink else 0)
        | (INVERSE if st.inverse else 0)
        | (INVISIBLE if st.invisible else 0)
        | (STRIKETHROUGH if st.strikethrough else 0)
    )
    return _color(st.fg_color), _color(st.bg_color), flags


def _trim_end(runs: Row) -> Row:
    """Drop trailing blanks that look like empty screen, so clients can pad rows themselves."""
    while runs:
        text, fg, bg, flags = runs[-1]
        if bg != DEFAULT_COLOR or flags & _VISIBLE_ON_BLANK:
            break
        stripped = text.rstrip(" ")
        if stripped:
            if len(stripped) != len(text):
                runs[-1] = (stripped, fg, bg, flags)
            break
        runs.pop()
    return runs


def _decode_row(
    raw: list[int],
    style_at: Callable[[int], tuple[int, int, int]],
    grapheme_at: Callable[[int], str],
) -> Row:
    """Packed cells of one row -> runs of equal style, wide spacers dropped, end trimmed."""
    cp_shift, cp_mask = _L.cp_shift, _L.cp_mask
    if not any(v & _SPECIAL for v in raw):
        # Plain row: the common case for shells and logs.
        text = "".join([chr(v >> cp_shift & cp_mask) for v in raw]).replace("\0", " ")
        text = text.rstrip(" ")
        return [(text, DEFAULT_COLOR, DEFAULT_COLOR, 0)] if text else []

    tag_mask, style_shift, style_mask = _L.tag_mask, _L.style_shift, _L.style_mask
    wide_shift, wide_mask = _L.wide_shift, _L.wide_mask
    tail, head = _L.wide_spacer_tail, _L.wide_spacer_head
    tag_grapheme, tag_bg_palette = _L.tag_grapheme, _L.tag_bg_palette
    styles: dict[int, tuple[int, int, int]] = {0: _DEFAULT_STYLE}
    runs: Row = []
    chars: list[str] = []
    cur = _DEFAULT_STYLE
    for x, v in enumerate(raw):
        wide = v >> wide_shift & wide_mask
        if wide == tail:
            continue
        if wide == head:  # where a wide char did not fit: blank, as other terminals show it
            v = 0
        sid = v >> style_shift & style_mask
        st = styles.get(sid)
        if st is None:
            st = styles[sid] = style_at(x)
        tag = v & tag_mask
        if tag == 0:
            cp = v >> cp_shift & cp_mask
            ch = chr(cp) if cp else " "
        elif tag == tag_grapheme:
            ch = grapheme_at(x) or " "
        else:
            # A blank cell that carries only a background colour (erase with colour set).
            content = v >> cp_shift
            if tag == tag_bg_palette:
                bg = content & 0xFF
            else:
                bg = (
                    TRUECOLOR
                    | ((content & 0xFF) << 16)
                    | (content & 0xFF00)
                    | (content >> 16 & 0xFF)
                )
            st = (st[0], bg, st[2])
            ch = " "
        if st != cur:
            if chars:
                runs.append(("".join(chars), *cur))
                chars = []
            cur = st
        chars.append(ch)
    if chars:
        runs.append(("".join(chars), *cur))
    return _trim_end(runs)


# --- formatter output (text + SGR) -> runs -------------------------------------------------

_FLAG_ON = {
    1: BOLD,
    2: FAINT,
    3: ITALIC,
    4: UNDERLINE,
    5: BLINK,
    6: BLINK,
    7: INVERSE,
    8: INVISIBLE,
    9: STRIKETHROUGH,
    21: UNDERLINE,
}
_FLAG_OFF = {
    22: BOLD | FAINT,
    23: ITALIC,
    24: UNDERLINE,
    25: BLINK,
    27: INVERSE,
    28: INVISIBLE,
    29: STRIKETHROUGH,
}
_SGR_CLUSTER = re.compile(r"((?:\x1b\[[0-9;:]*m)+)")
_SGR_ONE = re.compile(r"\x1b\[([0-9;:]*)m")
# Anything else the formatter might emit (hyperlinks, cursor moves) is not cell content.
_OTHER_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|.)")
_sgr_cache: dict[tuple[str, tuple[int, int, int]], tuple[int, int, int]] = {}


def _num(text: str) -> int:
    return int(text) if text.isdigit() else 0


def _ext_color(args: list[str]) -> tuple[int | None, int]:
    """`5;n` or `2;r;g;b` (the part after 38/48/58) -> (colour or None, items used)."""
    if not args:
        return None, 0
    kind = _num(args[0])
    if kind == 5 and len(args) >= 2:
        return min(_num(args[1]), 255), 2
    if kind == 2 and len(args) >= 4:
        r, g, b = (min(_num(v), 255) for v in args[1:4])
        return TRUECOLOR | (r << 16) | (g << 8) | b, 4
    return None, 1


def _apply_sgr(params: str, style: tuple[int, int, int]) -> tuple[int, int, int]:
    fg, bg, flags = style
    items = params.split(";")
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if ":" in item:  # ITU T.416 sub-parameters: 4:3, 38:2::r:g:b, 58:5:n
            sub = item.split(":")
            head = _num(sub[0])
            if head == 4:
                flags = flags | UNDERLINE if _num(sub[1]) else flags & ~UNDERLINE
            elif head in (38, 48):
                args = sub[1:]
                if len(args) == 5 and _num(args[0]) == 2:
                    del args[1]  # drop the colour-space id
                color, _ = _ext_color(args)
                if color is not None:
                    fg, bg = (color, bg) if head == 38 else (fg, color)
            continue
        code = _num(item)
        if code == 0:
            fg, bg, flags = _DEFAULT_STYLE
        elif code in _FLAG_ON:
            flags |= _FLAG_ON[code]
        elif code in _FLAG_OFF:
            flags &= ~_FLAG_OFF[code]
        elif 30 <= code <= 37:
            fg = code - 30
        elif 40 <= code <= 47:
            bg = code - 40
        elif 90 <= code <= 97:
            fg = code - 82
        elif 100 <= code <= 107:
            bg = code - 92
        elif code == 39:
            fg = DEFAULT_COLOR
        elif code == 49:
            bg = DEFAULT_COLOR
        elif code in (38, 48, 58):
            color, used = _ext_color(items[i:])
            i += used
            if color is not None and code != 58:  # 58 = underline colour: not sent
                fg, bg = (color, bg) if code == 38 else (fg, color)
    return fg, bg, flags


_KEEP = -2  # probe value: "this SGR leaves the colour alone"
_SgrOp = tuple[int | None, int | None, int, int]  # (fg, bg, flags on, flags off)
_sgr_ops: dict[str, _SgrOp] = {}


def _sgr_op(params: str) -> _SgrOp:
    """One SGR sequence as an operation, so a new colour is parsed once, not per state."""
    op = _sgr_ops.get(params)
    if op is None:
        fg, bg, on = _apply_sgr(params, (_KEEP, _KEEP, 0))
        kept = _apply_sgr(params, (_KEEP, _KEEP, 0xFF))[2]
        op = (None if fg == _KEEP else fg, None if bg == _KEEP else bg, on, ~kept & 0xFF)
        if len(_sgr_ops) > 4096:
            _sgr_ops.clear()
        _sgr_ops[params] = op
    return op


def _apply_cluster(cluster: str, style: tuple[int, int, int]) -> tuple[int, int, int]:
    key = (cluster, style)
    out = _sgr_cache.get(key)
    if out is None:
        fg, bg, flags = style
        for params in _SGR_ONE.findall(cluster):
            op_fg, op_bg, on, off = _sgr_op(params)
            if op_fg is not None:
                fg = op_fg
            if op_bg is not None:
                bg = op_bg
            flags = (flags & ~off) | on
        out = (fg, bg, flags)
        if len(_sgr_cache) > 4096:
            _sgr_cache.clear()
        _sgr_cache[key] = out
    return out


def _parse_vt(text: str, nrows: int) -> list[Row] | None:
    """Formatter VT output for `nrows` rows -> runs per row; None if it does not fit."""
    segments = text.split("\r\n")
    if len(segments) > nrows:
        return None
    style = _DEFAULT_STYLE
    rows: list[Row] = []
    for seg in segments:
        runs: Row = []
        if "\x1b" not in seg:
            if seg:
                runs.append((seg, *style))
        else:
            for i, part in enumerate(_SGR_CLUSTER.split(seg)):
                if i & 1:
                    style = _apply_cluster(part, style)
                    continue
                if "\x1b" in part:
                    part = _OTHER_ESCAPE.sub("", part)
                if not part:
                    continue
                if runs and runs[-1][1:] == style:
                    runs[-1] = (runs[-1][0] + part, *style)
                else:
                    runs.append((part, *style))
        rows.append(_trim_end(runs))
    # The formatter leaves out blank rows at the end of the span.
    rows.extend([] for _ in range(nrows - len(segments)))
    return rows


# --- pure helpers ------------------------------------------------------------------------


def row_text(row: Row) -> str:
    """The row's characters without styles (a wide character appears once)."""
    return "".join(run[0] for run in row)


def _sgr_color(color: int, base: int, bright: int, ext: int) -> str:
    if color < 0:
        return ""
    if color & TRUECOLOR:
        return f";{ext};2;{color >> 16 & 0xFF};{color >> 8 & 0xFF};{color & 0xFF}"
    if color < 8:
        return f";{base + color}"
    if color < 16:
        return f";{bright + color - 8}"
    return f";{ext};5;{color}"


_FLAG_SGR = (
    (BOLD, ";1"),
    (FAINT, ";2"),
    (ITALIC, ";3"),
    (UNDERLINE, ";4"),
    (BLINK, ";5"),
    (INVERSE, ";7"),
    (INVISIBLE, ";8"),
    (STRIKETHROUGH, ";9"),
)


def _sgr(fg: int, bg: int, flags: int) -> str:
    parts = "".join(code for bit, code in _FLAG_SGR if flags & bit)
    return f"\x1b[0{parts}{_sgr_color(fg, 30, 90, 38)}{_sgr_color(bg, 40, 100, 48)}m"


def row_to_ansi(row: Row) -> str:
    """The row as text with SGR sequences, ending with a reset."""
    out: list[str] = []
    styled = False
    for text, fg, bg, flags in row:
        if fg == DEFAULT_COLOR and bg == DEFAULT_COLOR and not flags:
            if styled:
                out.append("\x1b[0m")
                styled = False
        else:
            out.append(_sgr(fg, bg, flags))
            styled = True
        out.append(text)
    out.append("\x1b[0m")
    return "".join(out)


def _check_size(cols: object, rows: object) -> tuple[int, int]:
    for name, value, limit in (("cols", cols, MAX_COLS), ("rows", rows, MAX_ROWS)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
            raise UsageError(
                f"terminal {name} must be a whole number from 1 to {limit}, got {value!r}"
            )
    return cols, rows  # type: ignore[return-value]


def _cwd_from_osc(raw: str) -> str:
    """OSC 7 carries a file:// URI; OSC 9/1337 variants carry a bare path."""
    if raw.startswith("file://"):
        return unquote(urlsplit(raw).path)
    return raw


# --- callbacks from the library (module level: one libffi closure each, not per screen) ----


class _Sink:
    """What callbacks record during `feed`. Callbacks reach it through a cffi handle."""

    __slots__ = ("cols", "events", "replies", "rows")

    def __init__(self, cols: int, rows: int) -> None:
        self.replies = bytearray()
        self.events: deque[ScreenEvent] = deque(maxlen=MAX_EVENTS)
        self.cols = cols
        self.rows = rows


def _string(term: Any, key: int) -> str:
    s = ffi.new("GhosttyString*")
    if lib.ghostty_terminal_get(term, key, s) != 0 or not s.len:
        return ""
    return bytes(ffi.buffer(s.ptr, s.len)).decode("utf-8", "replace")


def _gstr(s: Any) -> str:
    return bytes(ffi.buffer(s.ptr, s.len)).decode("utf-8", "replace") if s.len else ""


@ffi.callback("GhosttyTerminalWritePtyFn")
def _on_write_pty(term: Any, userdata: Any, data: Any, length: int) -> None:
    sink: _Sink = ffi.from_handle(userdata)
    if len(sink.replies) + length <= MAX_REPLY_BYTES:
        sink.replies += ffi.buffer(data, length)


@ffi.callback("GhosttyTerminalBellFn")
def _on_bell(term: Any, userdata: Any) -> None:
    ffi.from_handle(userdata).events.append(ScreenEvent("bell", ""))


@ffi.callback("GhosttyTerminalTitleChangedFn")
def _on_title(term: Any, userdata: Any) -> None:
    title = _string(term, lib.GHOSTTY_TERMINAL_DATA_TITLE)
    ffi.from_handle(userdata).events.append(ScreenEvent("title", title))


@ffi.callback("GhosttyTerminalPwdChangedFn")
def _on_pwd(term: Any, userdata: Any) -> None:
    cwd = _cwd_from_osc(_string(term, lib.GHOSTTY_TERMINAL_DATA_PWD))
    ffi.from_handle(userdata).events.append(ScreenEvent("cwd", cwd))


@ffi.callback("GhosttyTerminalDesktopNotificationFn")
def _on_notify(term: Any, userdata: Any, note: Any) -> None:
    body = _gstr(note.body) or _gstr(note.title)
    ffi.from_handle(userdata).events.append(ScreenEvent("notify", body))


@ffi.callback("GhosttyTerminalSizeFn")
def _on_size(term: Any, userdata: Any, out: Any) -> bool:
    sink: _Sink = ffi.from_handle(userdata)
    out.columns = sink.cols
    out.rows = sink.rows
    out.cell_width = 8
    out.cell_height = 16
    return True


_CALLBACKS = (
    (lib.GHOSTTY_TERMINAL_OPT_WRITE_PTY, _on_write_pty),
    (lib.GHOSTTY_TERMINAL_OPT_BELL, _on_bell),
    (lib.GHOSTTY_TERMINAL_OPT_TITLE_CHANGED, _on_title),
    (lib.GHOSTTY_TERMINAL_OPT_PWD_CHANGED, _on_pwd),
    (lib.GHOSTTY_TERMINAL_OPT_DESKTOP_NOTIFICATION, _on_notify),
    (lib.GHOSTTY_TERMINAL_OPT_SIZE, _on_size),
)


# Bits that make a cell more than "never written": text, style, colour, width.
_NONEMPTY = _SPECIAL | (_L.cp_mask << _L.cp_shift)


def _needs_cells(row: Row, cells: list[int]) -> bool:
    """Whether the formatter's version of this row may differ from the cells.

    The formatter prints a row of only coloured blanks as empty, and prints never-written
    cells between styled text as spaces in the preceding style. Both matter only when the
    row has colour or an attribute visible on a blank.
    """
    if not row:
        return any(v & _SPECIAL for v in cells)
    if not any(bg != DEFAULT_COLOR or flags & _VISIBLE_ON_BLANK for _, _, bg, flags in row):
        return False
    end = len(cells)
    while end and not cells[end - 1] & _NONEMPTY:
        end -= 1
    return not all(v & _NONEMPTY for v in cells[:end])


def _free_native(term: Any, state: Any, rows_it: Any) -> None:
    lib.ghostty_render_state_row_iterator_free(rows_it)
    lib.ghostty_render_state_free(state)
    lib.ghostty_terminal_free(term)


def _mode_key(number: int, ansi: bool = False) -> int:
    # ghostty_mode_new() is a static inline in the C header, so pack it here.
    return (number & 0x7FFF) | (int(ansi) << 15)


_GRID_REF = ffi.cast(
    "GhosttyResult(*)(GhosttyTerminal, GhosttyPointS, GhosttyGridRef*)",
    ffi.addressof(lib, "ghostty_terminal_grid_ref"),
)


def _new_sized(ctype: str) -> Any:
    p = ffi.new(ctype + "*")
    p.size = ffi.sizeof(ctype)
    return p


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
        # The free functions accept NULL, so a partial failure is cleaned up too.
        self._finalizer = weakref.finalize(self, _free_native, term[0], state[0], rows_it[0])
        if not ok:
            self._finalizer()
            raise WorkbenchError("could not create the terminal emulator (out of memory)")
        self._term = term[0]
        self._state = state[0]
        self._rows_it_p = rows_it
        self._rows_it = rows_it[0]
        self._closed = False

        self._sink = _Sink(cols, rows)
        self._handle = ffi.new_handle(self._sink)  # must outlive the terminal's use of it
        self._set(
            lib.GHOSTTY_TERMINAL_OPT_SCROLLBACK_MAX_LINES, ffi.new("size_t*", scrollback_lines)
        )
        self._set(
            lib.GHOSTTY_TERMINAL_OPT_SCROLLBACK_MAX_BYTES, ffi.new("size_t*", scrollback_bytes)
        )
        self._set(lib.GHOSTTY_TERMINAL_OPT_USERDATA, self._handle)
        for option, callback in _CALLBACKS:
            self._set(option, callback)

        # Reusable out-parameters: allocating cdata per call costs more than the call.
        self._y = ffi.new("uint16_t*")
        self._view = ffi.new("GhosttyCellsView*")
        self._style = _new_sized("GhosttyStyle")
        self._cell = ffi.new("GhosttyCell*")
        self._ref = _new_sized("GhosttyGridRef")
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
        self._selection = _new_sized("GhosttySelection")
        self._fmt_opts = _new_sized("GhosttyFormatterTerminalOptions")
        self._fmt_opts.extra.size = ffi.sizeof("GhosttyFormatterTerminalExtra")
        self._fmt_opts.extra.screen.size = ffi.sizeof("GhosttyFormatterScreenExtra")
        self._fmt_opts.emit = lib.GHOSTTY_FORMATTER_FORMAT_VT
        self._fmt_opts.selection = self._selection
        self._out = ffi.new("uint8_t[]", 64 * 1024)

        self._cols = cols
        self._nrows = rows
        self._rows: list[Row] = [[] for _ in range(rows)]
        self._pending: set[int] = set(range(rows))

    # -- plumbing

    def _set(self, option: int, value: Any) -> None:
        if lib.ghostty_terminal_set(self._term, option, value) != 0:
            raise WorkbenchError(f"terminal emulator rejected option {option}")

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
        return bool(_GRID_REF(self._term, point[0], self._ref) == 0)

    def _sync(self) -> None:
        """Bring the row cache up to date with the rows the emulator marked dirty."""
        self._live()
        state, rows_it, y = self._state, self._rows_it, self._y
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
            if row is None or cells is None or _needs_cells(row, cells):
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
            res = lib.ghostty_formatter_format_buf(fmt[0], self._out, len(self._out), n)
            if res == lib.GHOSTTY_OUT_OF_SPACE and n[0] > len(self._out):
                self._out = ffi.new("uint8_t[]", int(n[0]) + 4096)
                res = lib.ghostty_formatter_format_buf(fmt[0], self._out, len(self._out), n)
            if res != 0:
                return None
            text = ffi.buffer(self._out, n[0])[:].decode("utf-8", "replace")
        finally:
            lib.ghostty_formatter_free(fmt[0])
        return _parse_vt(text, last - first + 1)

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
                return _style_tuple(self._style)
            return _DEFAULT_STYLE

        def grapheme_at(x: int) -> str:
            ref.x = x
            n = self._size_t
            buf = ffi.new("uint32_t[]", 32)
            if lib.ghostty_grid_ref_graphemes(ref, buf, 32, n) != 0:
                return ""
            return "".join(chr(c) for c in ffi.unpack(buf, min(int(n[0]), 32)))

        return _decode_row(cells, style_at, grapheme_at)

    # -- input

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Parse program output. Any bytes are accepted; nothing here raises for bad input."""
        if self._closed or not data:
            return
        if isinstance(data, bytes):
            lib.ghostty_terminal_vt_write(self._term, data, len(data))
        else:
            buf = ffi.from_buffer("uint8_t[]", data)
            lib.ghostty_terminal_vt_write(self._term, buf, len(buf))

    def take_replies(self) -> bytes:
        """Bytes the terminal answers the program with (DSR, DA, ...); write them to the PTY."""
        out = bytes(self._sink.replies)
        self._sink.replies.clear()
        return out

    def take_events(self) -> list[ScreenEvent]:
        out = list(self._sink.events)
        self._sink.events.clear()
        return out

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
        full = ffi.new("GhosttyRenderStateDirty*", lib.GHOSTTY_RENDER_STATE_DIRTY_FULL)
        lib.ghostty_render_state_set(self._state, lib.GHOSTTY_RENDER_STATE_OPTION_DIRTY, full)

    # -- state

    @property
    def size(self) -> tuple[int, int]:
        """(cols, rows)."""
        return self._cols, self._nrows

    @property
    def cursor(self) -> Cursor:
        self._live()
        lib.ghostty_terminal_get_multi(
            self._term, 3, self._cursor_keys, self._cursor_vals, ffi.NULL
        )
        x, y, visible = self._cursor_out
        return Cursor(int(x[0]), int(y[0]), bool(visible[0]))

    @property
    def title(self) -> str:
        self._live()
        return _string(self._term, lib.GHOSTTY_TERMINAL_DATA_TITLE)

    @property
    def cwd(self) -> str:
        """Working directory last reported by the program (OSC 7), or ""."""
        self._live()
        return _cwd_from_osc(_string(self._term, lib.GHOSTTY_TERMINAL_DATA_PWD))

    @property
    def alt_screen(self) -> bool:
        kind = self._get(lib.GHOSTTY_TERMINAL_DATA_ACTIVE_SCREEN, self._screen_kind)
        return bool(kind == lib.GHOSTTY_TERMINAL_SCREEN_ALTERNATE)

    def mode(self, number: int, *, ansi: bool = False) -> bool:
        """Whether DEC private mode `number` (or ANSI mode with ansi=True) is set."""
        self._live()
        self._mode.mode = _mode_key(number, ansi)
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
    def mouse_tracking(self) -> bool:
        return bool(self._get(lib.GHOSTTY_TERMINAL_DATA_MOUSE_TRACKING, self._bool))

    @property
    def closed(self) -> bool:
        return self._closed

    # -- content

    def lines(self) -> list[str]:
        """Visible rows as plain text; leading spaces kept, trailing trimmed."""
        self._sync()
        return [row_text(row).rstrip() for row in self._rows]

    def ansi_lines(self) -> list[str]:
        """Visible rows with SGR styles, each ending with a reset."""
        self._sync()
        return [row_to_ansi(row) for row in self._rows]

    def frame(self) -> list[Row]:
        """Every visible row as runs. Counts as having sent everything: clears dirty rows."""
        self._sync()
        self._pending.clear()
        return list(self._rows)

    def dirty_rows(self) -> dict[int, Row]:
        """Rows changed since the last `dirty_rows` or `frame` call, by row index."""
        self._sync()
        out = {y: self._rows[y] for y in sorted(self._pending)}
        self._pending.clear()
        return out

    def scrollback_len(self) -> int:
        """Rows of history above the screen (0 on the alternate screen)."""
        return int(self._get(lib.GHOSTTY_TERMINAL_DATA_SCROLLBACK_ROWS, self._size_t))

    def scrollback(self, start: int, count: int) -> list[Row]:
        """History rows [start, start+count), clipped to what exists; row 0 is the oldest."""
        for name, value in (("start", start), ("count", count)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UsageError(f"scrollback {name} must be a whole number >= 0, got {value!r}")
        end = min(start + count, self.scrollback_len())
        if start >= end:
            return []
        tag = lib.GHOSTTY_POINT_TAG_HISTORY
        rows = self._format(tag, start, end - 1)
        if rows is None:
            return [self._cell_row(tag, y) for y in range(start, end)]
        # History has no bulk cell view: re-read only the rows the formatter may have got wrong.
        out: list[Row] = []
        for y, row in zip(range(start, end), rows, strict=True):
            suspect = not row or any(
                bg != DEFAULT_COLOR or flags & _VISIBLE_ON_BLANK for _, _, bg, flags in row
            )
            out.append(self._cell_row(tag, y) if suspect else row)
        return out

    def close(self) -> None:
        """Free the native terminal. Later `feed` calls are ignored; reads raise."""
        if not self._closed:
            self._closed = True
            self._finalizer()

    def __enter__(self) -> TerminalScreen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
