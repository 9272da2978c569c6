"""TerminalScreen: real byte streams, real PTYs, and property tests on the read path."""

from __future__ import annotations

import os
import select
import shutil
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ptyprocess import PtyProcess

from workbench.core.screen import Cursor, ScreenEvent, TerminalScreen
from workbench.core.screen_native import MAX_EVENTS
from workbench.core.sgr import (
    BLINK,
    BOLD,
    FAINT,
    INVERSE,
    INVISIBLE,
    ITALIC,
    STRIKETHROUGH,
    TRUECOLOR,
    UNDERLINE,
    Row,
    row_text,
    row_to_ansi,
)
from workbench.errors import UsageError, WorkbenchError

D = -1  # default colour


def screen(data: bytes = b"", cols: int = 20, rows: int = 5) -> TerminalScreen:
    s = TerminalScreen(cols, rows)
    s.feed(data)
    return s


# --- text, styles, wide characters ---------------------------------------------------------


def test_lines_keep_leading_spaces_and_trim_trailing() -> None:
    s = screen(b"   indented   \r\nnext")
    assert s.lines() == ["   indented", "next", "", "", ""]
    assert s.cursor == Cursor(4, 1, True)


def test_basic_256_and_truecolor_runs() -> None:
    s = screen(b"a\x1b[1;31mred\x1b[0m \x1b[38;5;200mX\x1b[48;2;1;2;3mY\x1b[0m\x1b[92;104mb")
    assert s.frame()[0] == [
        ("a", D, D, 0),
        ("red", 1, D, BOLD),
        (" ", D, D, 0),
        ("X", 200, D, 0),
        ("Y", 200, TRUECOLOR | 0x010203, 0),
        ("b", 10, 12, 0),
    ]


@pytest.mark.parametrize(
    ("sgr", "flag"),
    [
        ("1", BOLD),
        ("2", FAINT),
        ("3", ITALIC),
        ("4", UNDERLINE),
        ("4:3", UNDERLINE),
        ("5", BLINK),
        ("7", INVERSE),
        ("8", INVISIBLE),
        ("9", STRIKETHROUGH),
    ],
)
def test_each_attribute_flag(sgr: str, flag: int) -> None:
    s = screen(f"\x1b[{sgr}mx\x1b[0my".encode())
    assert s.frame()[0] == [("x", D, D, flag), ("y", D, D, 0)]


def test_adjacent_cells_with_same_style_merge_into_one_run() -> None:
    s = screen(b"\x1b[31ma\x1b[0m\x1b[31mb\x1b[1m\x1b[22mc\x1b[0m")
    assert s.frame()[0] == [("abc", 1, D, 0)]


def test_wide_characters_take_two_cells_and_appear_once() -> None:
    s = screen("ab中c😀d".encode())
    assert s.cursor.x == 2 + 2 + 1 + 2 + 1
    assert s.lines()[0] == "ab中c😀d"
    s.feed(b"\x1b[1;5HZ")  # column 5 (1-based) is the cell right after 中
    assert s.lines()[0] == "ab中Z😀d"


def test_wide_char_that_does_not_fit_wraps_whole() -> None:
    s = screen("123456789中".encode(), cols=10)
    assert s.lines()[:2] == ["123456789", "中"]


def test_combining_marks_stay_with_their_base() -> None:
    s = screen("e\u0301x".encode())
    assert s.lines()[0] == "e\u0301x"
    assert s.cursor.x == 2


def test_invalid_utf8_shows_replacement_characters() -> None:
    s = screen(b"a\xffb\xe4\xb8")
    s.feed(b"\xadz")  # a UTF-8 sequence split across feeds still decodes
    assert s.lines()[0] == "a\ufffdb中z"


def test_background_only_rows_and_gaps_keep_their_colours() -> None:
    s = screen(b"\x1b[44m\x1b[2J", cols=6, rows=2)
    assert s.frame() == [[("      ", D, 4, 0)]] * 2
    s.feed(b"\x1b[0m\x1b[2J\x1b[H\x1b[41mX\x1b[0m\x1b[5GY")
    assert s.frame()[0] == [("X", D, 1, 0), ("   Y", D, D, 0)]


def test_ansi_lines_reproduce_the_screen() -> None:
    data = (
        "plain \x1b[1;3;4;31mbold\x1b[0m \x1b[38;5;123;48;5;17mpal\x1b[0m\r\n"
        "\x1b[38;2;250;128;1mtrue\x1b[7m inv \x1b[0m中文 \x1b[9;2mgone\x1b[0m\r\n"
        "\x1b[95;100mbright\x1b[0m\r\n"
    ).encode()
    s = screen(data, cols=30)
    ansi = s.ansi_lines()
    assert all(line.endswith("\x1b[0m") for line in ansi)
    copy = screen("\r\n".join(ansi).encode(), cols=30)
    assert copy.frame() == s.frame()


def test_row_helpers() -> None:
    row: Row = [("a", D, D, 0), ("中", 1, D, BOLD), ("c", TRUECOLOR | 0xFF0000, 3, INVERSE)]
    assert row_text(row) == "a中c"
    assert row_to_ansi(row) == "a\x1b[0;1;31m中\x1b[0;7;38;2;255;0;0;43mc\x1b[0m"
    assert row_to_ansi([]) == "\x1b[0m"


# --- screens, scrollback, resize -----------------------------------------------------------


def test_alternate_screen_shows_app_and_restores_shell() -> None:
    s = screen(b"$ ls\r\nfile\r\n$ ")
    s.feed(b"\x1b[?1049h\x1b[H\x1b[2J\x1b[7m status \x1b[0m\x1b[3;2Hbody")
    assert s.alt_screen
    assert s.lines()[:3] == [" status", "", " body"]
    s.feed(b"\x1b[?1049l")
    assert not s.alt_screen
    assert s.lines()[:3] == ["$ ls", "file", "$"]
    assert s.cursor == Cursor(2, 2, True)


def test_vim_style_redraw_with_scroll_region() -> None:
    s = screen(cols=12, rows=5)
    s.feed(b"\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J")
    for i in range(4):
        s.feed(f"\x1b[{i + 1};1Hline {i}\x1b[K".encode())
    s.feed(b"\x1b[5;1H\x1b[1m-- INSERT --\x1b[0m")
    s.feed(b"\x1b[1;4r\x1b[4;1H\n\x1b[4;1Hline 4\x1b[K\x1b[r")  # scroll the text area only
    assert s.lines() == ["line 1", "line 2", "line 3", "line 4", "-- INSERT --"]
    assert s.frame()[4] == [("-- INSERT --", D, D, BOLD)]
    assert s.cursor.visible is False


def test_scrollback_keeps_history_with_styles() -> None:
    s = screen(cols=10, rows=5)
    for i in range(100):
        s.feed(f"line{i} \x1b[32mok\x1b[0m\r\n".encode())
    assert s.scrollback_len() == 96
    assert s.lines() == ["line96 ok", "line97 ok", "line98 ok", "line99 ok", ""]
    first = s.scrollback(0, 2)
    assert first == [[("line0 ", D, D, 0), ("ok", 2, D, 0)], [("line1 ", D, D, 0), ("ok", 2, D, 0)]]
    assert [row_text(r) for r in s.scrollback(94, 10)] == ["line94 ok", "line95 ok"]
    assert s.scrollback(500, 3) == []
    with pytest.raises(UsageError, match="start"):
        s.scrollback(-1, 3)


def test_scrollback_can_be_disabled() -> None:
    s = TerminalScreen(10, 3, scrollback_bytes=0)
    for i in range(50):
        s.feed(f"{i}\r\n".encode())
    assert s.scrollback_len() == 0
    assert s.lines() == ["48", "49", ""]


def test_resize_reflows_wrapped_lines() -> None:
    s = screen(b"0123456789abcdefghijKLMNO", cols=10, rows=4)
    assert s.lines()[:3] == ["0123456789", "abcdefghij", "KLMNO"]
    s.resize(30, 4)
    assert s.size == (30, 4)
    assert s.lines()[0] == "0123456789abcdefghijKLMNO"
    s.feed(b"\x1b[18t")
    assert s.take_replies() == b"\x1b[8;4;30t"


@pytest.mark.parametrize("size", [(0, 5), (1001, 5), (80, 0), (80, 501), ("80", 24), (True, 5)])
def test_bad_sizes_are_refused_with_a_clear_error(size: tuple[object, object]) -> None:
    with pytest.raises(UsageError, match=r"terminal (cols|rows) must be a whole number"):
        TerminalScreen(*size)  # type: ignore[arg-type]
    s = screen()
    with pytest.raises(UsageError):
        s.resize(*size)  # type: ignore[arg-type]
    assert s.size == (20, 5)


# --- replies, events, modes ----------------------------------------------------------------


def test_cursor_position_and_device_reports_are_replied_once() -> None:
    s = screen(b"\x1b[3;5H\x1b[6n")
    assert s.take_replies() == b"\x1b[3;5R"
    assert s.take_replies() == b""
    s.feed(b"\x1b[c\x1b[5n")
    replies = s.take_replies()
    assert replies.startswith(b"\x1b[?") and replies.endswith(b"c\x1b[0n")


def test_titles_bell_notifications_and_cwd_become_events() -> None:
    s = screen(
        b"\x1b]0;first\x07\x1b]2;w\xc3\xb6rld\x1b\\\x07"
        b"\x1b]9;build done\x07\x1b]777;notify;Agent;needs input\x07"
        b"\x1b]7;file://host/tmp/my%20dir\x07\x1b]9;4;1;50\x07"
    )
    assert s.take_events() == [
        ScreenEvent("title", "first"),
        ScreenEvent("title", "wörld"),
        ScreenEvent("bell", ""),
        ScreenEvent("notify", "build done"),
        ScreenEvent("notify", "needs input"),
        ScreenEvent("cwd", "/tmp/my dir"),
    ]
    assert s.take_events() == []
    assert s.title == "wörld"
    assert s.cwd == "/tmp/my dir"


def test_event_queue_is_bounded() -> None:
    s = screen(b"\x07" * (MAX_EVENTS + 50))
    assert len(s.take_events()) == MAX_EVENTS


def test_modes() -> None:
    s = screen()
    assert (s.bracketed_paste, s.app_cursor_keys, s.mouse_tracking) == (False, False, False)
    s.feed(b"\x1b[?2004h\x1b[?1h\x1b[?1000h")
    assert (s.bracketed_paste, s.app_cursor_keys, s.mouse_tracking) == (True, True, True)
    s.feed(b"\x1b[?2004l\x1b[?1l\x1b[?1000l")
    assert (s.bracketed_paste, s.app_cursor_keys, s.mouse_tracking) == (False, False, False)


# --- dirty tracking ------------------------------------------------------------------------


def test_dirty_rows_report_each_change_once() -> None:
    s = screen(b"one\r\ntwo\r\nthree")
    assert [row_text(r) for r in s.frame()] == ["one", "two", "three", "", ""]
    assert s.dirty_rows() == {}
    s.feed(b"\x1b[2;1HTWO")
    assert s.dirty_rows() == {1: [("TWO", D, D, 0)]}
    assert s.dirty_rows() == {}
    s.lines()  # reading text must not swallow changes meant for the frame stream
    s.feed(b"\x1b[5;1Hfive")
    s.lines()
    assert list(s.dirty_rows()) == [4]
    s.resize(20, 6)
    assert sorted(s.dirty_rows()) == list(range(6))


def test_closed_screen_ignores_feed_and_refuses_reads() -> None:
    s = screen(b"x")
    s.close()
    s.close()
    s.feed(b"more")
    assert s.closed
    with pytest.raises(WorkbenchError, match="closed"):
        s.lines()


def test_constructor_validates_scrollback_limits() -> None:
    with pytest.raises(UsageError, match="scrollback_lines"):
        TerminalScreen(scrollback_lines=-1)


# --- properties ----------------------------------------------------------------------------

_TOKENS = [
    b"\x1b[31m",
    b"\x1b[0m",
    b"\x1b[1;4;7m",
    b"\x1b[38;5;123m",
    b"\x1b[48;2;10;20;30m",
    "中".encode(),
    "😀".encode(),
    "e\u0301".encode(),
    b"\r\n",
    b"\t",
    b"\x1b[K",
    b"\x1b[2J",
    b"\x1b[3;4H",
    b"abc",
    b"\x1b[?1049h",
    b"\x1b[?1049l",
    b"\x1b[9m",
    b"\x1b[44m\x1b[K",
    b"\x1b[1P",
    b"\x1b[2@",
    b"\x1b[L",
    b"\x1b(0lqk\x1b(B",
    b"\x1b[7m  \x1b[0m",
    b"\x1b[42m",
    b"\x1b[10G",
    b"\x1b[S",
    b"\x1bM",
    b"\x1b[?7l",
    b"\x1b[?7h",
    b" ",
    b"xyz" * 5,
]
_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(data=st.binary(max_size=3000), cols=st.integers(1, 40), rows=st.integers(1, 10))
def test_garbage_never_raises_and_screen_stays_consistent(
    data: bytes, cols: int, rows: int
) -> None:
    s = TerminalScreen(cols, rows)
    s.feed(data)
    lines = s.lines()
    assert len(lines) == rows
    cur = s.cursor
    assert 0 <= cur.x < cols and 0 <= cur.y < rows
    assert len(s.frame()) == rows
    s.take_replies()
    s.take_events()
    s.close()


@_SETTINGS
@given(
    tokens=st.lists(st.sampled_from(_TOKENS), max_size=60),
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
def test_chunk_boundaries_do_not_change_the_result(tokens: list[bytes], cuts: list[int]) -> None:
    # Known libghostty-vt 0.1.3 behaviour: reading the grid (formatter or render state)
    # between a base character and its combining mark drops the mark. See
    # test_combining_mark_after_a_read_is_kept; exclude that one split here.
    data = b"".join(tokens)
    if any(b"\xcc" in data[max(c - 1, 0) : c + 1] or b"\xcd" in data[max(c - 1, 0) : c + 1]
           for c in cuts if c < len(data)):
        return
    data = b"".join(tokens)
    whole = screen(data, cols=15, rows=6)
    split = screen(cols=15, rows=6)
    prev = 0
    for cut in sorted(c for c in cuts if c < len(data)):
        split.feed(data[prev:cut])
        split.dirty_rows()  # reading in between must not change what comes later
        prev = cut
    split.feed(data[prev:])
    assert split.frame() == whole.frame()
    assert split.cursor == whole.cursor


def _cells(row: Row) -> list[tuple[str, int, int, int]]:
    """Per character, with styles that cannot show on a blank normalised away."""
    out = []
    for text, fg, bg, flags in row:
        for ch in text:
            if ch == " " and not flags & (INVERSE | UNDERLINE | STRIKETHROUGH):
                out.append((ch, D, bg, 0))
            else:
                out.append((ch, fg, bg, flags))
    while out and out[-1] == (" ", D, D, 0):
        out.pop()
    return out


@_SETTINGS
@given(tokens=st.lists(st.sampled_from(_TOKENS), max_size=80), cols=st.integers(1, 30))
def test_fast_read_path_matches_cell_by_cell_decoding(tokens: list[bytes], cols: int) -> None:
    s = screen(b"".join(tokens), cols=cols, rows=6)
    fast = s.frame()
    slow = s.cell_rows()
    assert [_cells(r) for r in fast] == [_cells(r) for r in slow]


# --- real programs under a real PTY ---------------------------------------------------------


def _pump(proc: PtyProcess, s: TerminalScreen, until: Callable[[], bool], what: str) -> None:
    """Feed PTY output into the screen (answering its queries) until `until()` holds."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.fd], [], [], 0.05)
        if ready:
            try:
                data = os.read(proc.fd, 65536)
            except OSError:
                data = b""
            s.feed(data)
            if replies := s.take_replies():
                os.write(proc.fd, replies)
        if until():
            return
    raise AssertionError(f"timed out waiting for {what}; screen:\n" + "\n".join(s.lines()))


def _spawn(argv: list[str], cwd: Path, cols: int = 80, rows: int = 24) -> PtyProcess:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ["HOME"],
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "LESSHISTFILE": "-",
    }
    return PtyProcess.spawn(argv, cwd=str(cwd), env=env, dimensions=(rows, cols))


CURSES_APP = textwrap.dedent(
    """
    import curses, locale, sys
    locale.setlocale(locale.LC_ALL, "")
    sys.stdout.write("before curses\\r\\n"); sys.stdout.flush()

    def main(w):
        curses.start_color(); curses.use_default_colors()
        curses.init_pair(1, curses.COLOR_RED, -1)
        curses.init_pair(2, 208, 17)
        w.addstr(0, 0, " top bar ", curses.A_REVERSE)
        w.addstr(2, 4, "red text", curses.color_pair(1) | curses.A_BOLD)
        w.addstr(3, 4, "orange on navy", curses.color_pair(2))
        w.addstr(5, 0, "wide: 中文 ok")
        w.addstr(23, 0, "READY")
        w.refresh()
        while w.getch() != ord("q"):
            pass

    curses.wrapper(main)
    """
)


def test_real_curses_program_under_a_pty(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(CURSES_APP)
    s = TerminalScreen(80, 24)
    proc = _spawn([sys.executable, str(app)], tmp_path)
    try:
        _pump(proc, s, lambda: s.lines()[23] == "READY", "the curses app to draw")
        lines = s.lines()
        assert s.alt_screen
        assert lines[0] == " top bar"
        assert s.frame()[0][0] == (" top bar ", D, D, INVERSE)
        assert lines[2] == "    red text"
        assert ("red text", 1, D, BOLD) in s.frame()[2]
        assert ("orange on navy", 208, 17, 0) in s.frame()[3]
        assert lines[5] == "wide: 中文 ok"
        proc.write(b"q")
        _pump(proc, s, lambda: not s.alt_screen, "the app to leave the alternate screen")
        assert s.lines()[0] == "before curses"
    finally:
        proc.close(force=True)


@pytest.mark.skipif(shutil.which("less") is None, reason="less is not installed")
def test_real_less_pages_a_file(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("".join(f"row {i:03d}\n" for i in range(200)))
    s = TerminalScreen(40, 10)
    proc = _spawn(["less", "f.txt"], tmp_path, cols=40, rows=10)
    try:
        _pump(proc, s, lambda: s.lines()[8] == "row 008", "less to show the first page")
        assert s.lines()[:9] == [f"row {i:03d}" for i in range(9)]
        proc.write(b" ")  # next page
        _pump(proc, s, lambda: s.lines()[0] == "row 009", "less to page down")
        proc.write(b"q")
        _pump(proc, s, lambda: not proc.isalive(), "less to exit")
        assert not s.alt_screen
    finally:
        proc.close(force=True)


@pytest.mark.skipif(shutil.which("vim") is None, reason="vim is not installed")
def test_real_vim_edits_a_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("alpha\nbeta\n")
    s = TerminalScreen(40, 8)
    proc = _spawn(["vim", "-u", "NONE", "-i", "NONE", "-N", "notes.txt"], tmp_path, 40, 8)
    try:
        _pump(proc, s, lambda: s.lines()[:3] == ["alpha", "beta", "~"], "vim to draw the file")
        assert s.alt_screen
        proc.write(b"ggOinserted\x1b")
        _pump(proc, s, lambda: s.lines()[:3] == ["inserted", "alpha", "beta"], "the edit")
        proc.write(b":q!\r")
        _pump(proc, s, lambda: not proc.isalive(), "vim to exit")
        assert not s.alt_screen
    finally:
        proc.close(force=True)


@pytest.mark.xfail(
    strict=True,
    reason="libghostty-vt 0.1.3 drops a combining mark fed after the grid was read "
    "(reported upstream-worthy; rare: needs a read exactly between base and mark)",
)
def test_combining_mark_after_a_read_is_kept() -> None:
    s = TerminalScreen(15, 6)
    s.feed(b"e")
    s.lines()
    s.feed(b"\xcc\x81")
    assert s.lines()[0] == "e\u0301"
