"""The native side of the terminal emulator: pyghostty (libghostty-vt) through cffi.

Packed-cell decoding (the cell layout comes from the library's own manifest), the
callbacks the library calls during `feed`, and small wrappers over its C API. The
adapter, `screen.TerminalScreen`, is the only user.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from pyghostty import ffi, lib

from workbench.core.sgr import (
    BLINK,
    BOLD,
    DEFAULT_COLOR,
    DEFAULT_STYLE,
    FAINT,
    INVERSE,
    INVISIBLE,
    ITALIC,
    STRIKETHROUGH,
    TRUECOLOR,
    UNDERLINE,
    VISIBLE_ON_BLANK,
    Row,
    trim_end,
)
from workbench.errors import WorkbenchError

# A program that floods bells or DSR queries while nobody drains them must not grow
# memory without bound; real terminals drop such excess too.
MAX_EVENTS = 1000
MAX_REPLY_BYTES = 1 << 20


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
        return TRUECOLOR | (int(rgb.r) << 16) | (int(rgb.g) << 8) | int(rgb.b)
    return DEFAULT_COLOR


def style_tuple(st: Any) -> tuple[int, int, int]:
    """A GhosttyStyle -> (fg, bg, flags) as in `sgr`."""
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


def decode_row(
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
    styles: dict[int, tuple[int, int, int]] = {0: DEFAULT_STYLE}
    runs: Row = []
    chars: list[str] = []
    cur = DEFAULT_STYLE
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
    return trim_end(runs)


def cwd_from_osc(raw: str) -> str:
    """OSC 7 carries a file:// URI; OSC 9/1337 variants carry a bare path."""
    if raw.startswith("file://"):
        return unquote(urlsplit(raw).path)
    return raw


# --- callbacks from the library (module level: one libffi closure each, not per screen) ----


class Sink:
    """What callbacks record during `feed`. Callbacks reach it through a cffi handle.

    Events are (kind, value) pairs; the adapter turns them into `ScreenEvent`s.
    """

    __slots__ = ("cols", "events", "replies", "rows")

    def __init__(self, cols: int, rows: int) -> None:
        self.replies = bytearray()
        self.events: deque[tuple[str, str]] = deque(maxlen=MAX_EVENTS)
        self.cols = cols
        self.rows = rows


def terminal_string(term: Any, key: int) -> str:
    """A string-valued terminal datum (title, pwd), "" when unset or unreadable."""
    s = ffi.new("GhosttyString*")
    if lib.ghostty_terminal_get(term, key, s) != 0 or not s.len:
        return ""
    return bytes(ffi.buffer(s.ptr, s.len)).decode("utf-8", "replace")


def _gstr(s: Any) -> str:
    return bytes(ffi.buffer(s.ptr, s.len)).decode("utf-8", "replace") if s.len else ""


def _sink(userdata: Any) -> Sink:
    sink: Sink = ffi.from_handle(userdata)
    return sink


def _on_write_pty(term: Any, userdata: Any, data: Any, length: int) -> None:
    sink = _sink(userdata)
    if len(sink.replies) + length <= MAX_REPLY_BYTES:
        sink.replies += ffi.buffer(data, length)


def _on_bell(term: Any, userdata: Any) -> None:
    _sink(userdata).events.append(("bell", ""))


def _on_title(term: Any, userdata: Any) -> None:
    title = terminal_string(term, lib.GHOSTTY_TERMINAL_DATA_TITLE)
    _sink(userdata).events.append(("title", title))


def _on_pwd(term: Any, userdata: Any) -> None:
    cwd = cwd_from_osc(terminal_string(term, lib.GHOSTTY_TERMINAL_DATA_PWD))
    _sink(userdata).events.append(("cwd", cwd))


def _on_notify(term: Any, userdata: Any, note: Any) -> None:
    body = _gstr(note.body) or _gstr(note.title)
    _sink(userdata).events.append(("notify", body))


def _on_size(term: Any, userdata: Any, out: Any) -> bool:
    sink = _sink(userdata)
    out.columns = sink.cols
    out.rows = sink.rows
    out.cell_width = 8
    out.cell_height = 16
    return True


# (terminal option, libffi closure). Built with ffi.callback(signature)(function) rather
# than as decorators, which cffi leaves untyped; this tuple keeps the closures alive.
CALLBACKS: tuple[tuple[int, Any], ...] = tuple(
    (option, ffi.callback(signature)(function))
    for option, signature, function in (
        (lib.GHOSTTY_TERMINAL_OPT_WRITE_PTY, "GhosttyTerminalWritePtyFn", _on_write_pty),
        (lib.GHOSTTY_TERMINAL_OPT_BELL, "GhosttyTerminalBellFn", _on_bell),
        (lib.GHOSTTY_TERMINAL_OPT_TITLE_CHANGED, "GhosttyTerminalTitleChangedFn", _on_title),
        (lib.GHOSTTY_TERMINAL_OPT_PWD_CHANGED, "GhosttyTerminalPwdChangedFn", _on_pwd),
        (lib.GHOSTTY_TERMINAL_OPT_DESKTOP_NOTIFICATION, "GhosttyTerminalDesktopNotificationFn", _on_notify),
        (lib.GHOSTTY_TERMINAL_OPT_SIZE, "GhosttyTerminalSizeFn", _on_size),
    )
)


# Bits that make a cell more than "never written": text, style, colour, width.
_NONEMPTY = _SPECIAL | (_L.cp_mask << _L.cp_shift)


def needs_cells(row: Row, cells: list[int]) -> bool:
    """Whether the formatter's version of this row may differ from the cells.

    The formatter prints a row of only coloured blanks as empty, and prints never-written
    cells between styled text as spaces in the preceding style. Both matter only when the
    row has colour or an attribute visible on a blank.
    """
    if not row:
        return any(v & _SPECIAL for v in cells)
    if not any(bg != DEFAULT_COLOR or flags & VISIBLE_ON_BLANK for _, _, bg, flags in row):
        return False
    end = len(cells)
    while end and not cells[end - 1] & _NONEMPTY:
        end -= 1
    return not all(v & _NONEMPTY for v in cells[:end])


def setup_terminal(term: Any, userdata: Any, scrollback_lines: int, scrollback_bytes: int) -> None:
    """Give a screen's terminal its limits, user data and callbacks.

    The one place for this: a new terminal and one rebuilt from a snapshot (`screen_swap`)
    must be set up alike, and a snapshot carries no callbacks.
    """
    options: tuple[tuple[int, Any], ...] = (
        (lib.GHOSTTY_TERMINAL_OPT_SCROLLBACK_MAX_LINES, ffi.new("size_t*", scrollback_lines)),
        (lib.GHOSTTY_TERMINAL_OPT_SCROLLBACK_MAX_BYTES, ffi.new("size_t*", scrollback_bytes)),
        (lib.GHOSTTY_TERMINAL_OPT_USERDATA, userdata),
        *CALLBACKS,
    )
    for option, value in options:
        if lib.ghostty_terminal_set(term, option, value) != 0:
            raise WorkbenchError(f"terminal emulator rejected option {option}")


def free_native(owned: list[Any]) -> None:
    """Free [terminal, render state, row iterator]; each free function accepts NULL.

    A list, so a screen whose terminal is swapped (`screen_swap`) frees the current one.
    """
    term, state, rows_it = owned
    lib.ghostty_render_state_row_iterator_free(rows_it)
    lib.ghostty_render_state_free(state)
    lib.ghostty_terminal_free(term)


def mode_key(number: int, ansi: bool = False) -> int:
    # ghostty_mode_new() is a static inline in the C header, so pack it here.
    return (number & 0x7FFF) | (int(ansi) << 15)


GRID_REF = ffi.cast(
    "GhosttyResult(*)(GhosttyTerminal, GhosttyPointS, GhosttyGridRef*)",
    ffi.addressof(lib, "ghostty_terminal_grid_ref"),
)


def new_sized(ctype: str) -> Any:
    """A new `ctype` with its `size` field set, as the library's versioned structs expect."""
    p = ffi.new(ctype + "*")
    p.size = ffi.sizeof(ctype)
    return p

