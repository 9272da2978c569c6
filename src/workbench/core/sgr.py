"""Styled runs of terminal rows, and SGR both ways.

A row leaves the emulator as runs of (text, fg, bg, flags) (docs/architecture.md, "Screen
frames"). `parse_vt` turns the VT formatter's text + SGR output into such rows;
`row_to_ansi` writes rows back as SGR for clients that want styled text.
"""

from __future__ import annotations

import re

# The wire's run type (text, fg, bg, flags): colours -1 default, 0..255 palette,
# TRUECOLOR | 0xRRGGBB. One definition, in the protocol; re-exported for the emulator's users.
from workbench.protocol.terminal import Row as Row
from workbench.protocol.terminal import Run as Run

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

DEFAULT_STYLE = (DEFAULT_COLOR, DEFAULT_COLOR, 0)
# A blank cell with these flags is still visible, so it is not trimmed from a row's end.
VISIBLE_ON_BLANK = INVERSE | UNDERLINE | STRIKETHROUGH


def trim_end(runs: Row) -> Row:
    """Drop trailing blanks that look like empty screen, so clients can pad rows themselves."""
    while runs:
        text, fg, bg, flags = runs[-1]
        if bg != DEFAULT_COLOR or flags & VISIBLE_ON_BLANK:
            break
        stripped = text.rstrip(" ")
        if stripped:
            if len(stripped) != len(text):
                runs[-1] = (stripped, fg, bg, flags)
            break
        runs.pop()
    return runs


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
            fg, bg, flags = DEFAULT_STYLE
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


def parse_vt(text: str, nrows: int) -> list[Row] | None:
    """Formatter VT output for `nrows` rows -> runs per row; None if it does not fit."""
    segments = text.split("\r\n")
    if len(segments) > nrows:
        return None
    style = DEFAULT_STYLE
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
        rows.append(trim_end(runs))
    # The formatter leaves out blank rows at the end of the span.
    rows.extend([] for _ in range(nrows - len(segments)))
    return rows


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
