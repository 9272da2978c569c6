"""Compaction rebuilds a screen's terminal from its snapshot (to free the pages it grew),
and the screen reads, and goes on, exactly as before; when anything differs, or the parser is
mid-sequence, the old terminal stays."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from workbench.core import screen_swap
from workbench.core.screen import ScreenEvent, TerminalScreen

SETUP = (
    b"\x1b]0;the title\x07\x1b]7;file://host/tmp/a%20dir\x07"
    b"\x1b[?2004h\x1b[?1h\x1b[?1000h\x1b[?1006h\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\\r\n"
)
TAIL = (
    "wide 漢字 👍🏽 e\u0301 \x1b[44m\x1b[K\x1b[0m\r\n".encode()
    + b"\x1b[3;5H\x1b7\x1b[10;7H\x1b[1;4;38;2;1;2;3mpen \x1b(0lqk\x1b(B\x1b[?25l"
)


def _lines(n: int, start: int = 0, tag: int = 0) -> bytes:
    return b"".join(
        b"\x1b[3%dm%d\x1b[0m session %d line %d \x1b[7minverse\x1b[0m\r\n" % (i % 8, i, tag, i)
        for i in range(start, start + n)
    )


def _view(s: TerminalScreen) -> tuple[Any, ...]:
    """Everything the daemon reads of a screen."""
    return (
        s.frame(), s.ansi_lines(), s.lines(), s.cell_rows(), s.cursor, s.title, s.cwd,
        s.alt_screen, s.bracketed_paste, s.app_cursor_keys, s.mouse_tracking, s.mode(1006),
        s.size, s.scrollback_len(), s.scrollback(0, s.scrollback_len()),
    )


def test_compaction_swaps_the_terminal_and_every_screen_reads_the_same() -> None:
    screens = [TerminalScreen(120, 40) for _ in range(4)]
    twins = [TerminalScreen(120, 40) for _ in range(4)]  # the same bytes, never compacted
    for k, (s, twin) in enumerate(zip(screens, twins, strict=True)):
        data = SETUP + _lines(3000, tag=k) + TAIL
        s.feed(data)
        twin.feed(data)
    for s in screens:
        view, handle = _view(s), s._term
        assert s.dirty_rows() == {}
        assert s.compact_history(min_rows=200) > 2900
        assert s._term != handle  # a new native terminal
        assert s.dirty_rows() == {}  # no row reported changed: clients get no frame
        assert _view(s) == view
    # Output after the swap lands where it would have without it: in the pen, charset,
    # scroll position and modes the old terminal had.
    more = b"after \x1b(0q\x1b(B" + _lines(200, start=3000) + b"\x1b8saved"
    for s, twin in zip(screens, twins, strict=True):
        s.feed(more)
        twin.feed(more)
        assert _view(s) == _view(twin)
        assert s.lines()[2][4:9] == "saved"  # DECRC: back to the cursor saved before the swap
        s.close()  # frees the new terminal (the old one is gone already)
        twin.close()


def test_the_rebuilt_terminal_keeps_callbacks_limits_and_resizes() -> None:
    s = TerminalScreen(80, 24, scrollback_lines=500)
    s.feed(_lines(400))
    handle = s._term
    s.compact_history()
    assert s._term != handle
    s.feed(b"\x1b]2;new title\x07\x07\x1b]7;file:///srv\x07\x1b[6n")
    assert s.take_events() == [
        ScreenEvent("title", "new title"), ScreenEvent("bell", ""), ScreenEvent("cwd", "/srv")
    ]
    assert s.take_replies() == b"\x1b[24;1R"
    s.feed(_lines(2000, start=400))
    assert s.scrollback_len() == 500  # the limit holds in the new terminal
    s.resize(100, 30)
    s.feed(b"\x1b[18t")  # the size report comes from the size callback
    assert s.take_replies() == b"\x1b[8;30;100t"
    assert s.size == (100, 30) and len(s.lines()) == 30


def test_a_rebuilt_terminal_that_reads_differently_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    real = screen_swap.observe
    calls: list[int] = []

    def differs_after(scr: TerminalScreen) -> tuple[object, ...]:
        calls.append(1)
        seen = real(scr)
        return (*seen, len(calls))  # the second look (at the new terminal) differs

    monkeypatch.setattr(screen_swap, "observe", differs_after)
    s = TerminalScreen(120, 40)
    s.feed(_lines(1000) + TAIL)
    view, handle = _view(s), s._term
    assert s.compact_history() > 900
    assert len(calls) == 2
    assert s._term == handle  # kept
    assert _view(s) == view
    s.feed(b"\r\nstill here")
    assert s.lines()[10].startswith("still here")


@pytest.mark.parametrize("partial", [b"\x1b[3", b"\xe2\x9c", b"\x1b]0;ti"])
def test_no_compaction_or_swap_while_the_parser_is_mid_sequence(partial: bytes) -> None:
    s = TerminalScreen(80, 24)
    s.feed(_lines(500) + partial)
    handle, hist = s._term, s.scrollback_len()
    assert s.compact_history() == 0  # ED 3 would break the sequence; the swap would drop it
    assert s._term == handle and s.scrollback_len() == hist
    s.feed({b"\x1b[3": b"1mred", b"\xe2\x9c": b"\x93", b"\x1b]0;ti": b"tle\x07"}[partial])
    assert s.compact_history() == hist and s._term != handle
    if partial == b"\x1b[3":
        assert s.frame()[-1][0][:2] == ("red", 1)
    elif partial == b"\xe2\x9c":
        assert s.lines()[-1] == "\u2713"
    else:
        assert s.title == "title"


def test_swaps_under_the_feed_lock_while_a_thread_feeds() -> None:
    # Byte limit off: the emulator alone would drop rows the cold store keeps.
    s, twin = (TerminalScreen(100, 30, scrollback_bytes=1 << 30) for _ in range(2))
    chunks = [_lines(50, start=i * 50) for i in range(200)]
    first = s._term
    stop = threading.Event()
    swaps = 0

    def feeder() -> None:
        for c in chunks:
            s.feed(c)
        stop.set()

    t = threading.Thread(target=feeder)
    t.start()
    while not stop.is_set():
        before = s._term
        s.compact_history(min_rows=1)
        swaps += s._term != before
    t.join()
    for c in chunks:
        twin.feed(c)
    assert swaps > 0 and s._term != first
    assert (s.frame(), s.cursor) == (twin.frame(), twin.cursor)
    assert s.scrollback(0, s.scrollback_len()) == twin.scrollback(0, twin.scrollback_len())


def test_a_released_render_state_is_freed_and_the_screen_reads_and_goes_on_the_same() -> None:
    s, twin = TerminalScreen(120, 40), TerminalScreen(120, 40)
    data = SETUP + _lines(300) + TAIL
    s.feed(data)
    twin.feed(data)
    assert s.release_render_state() is False  # never read: nothing to free
    view = _view(s)
    assert s.dirty_rows() == {}
    state = s._state
    assert s.release_render_state() is True
    assert s._state != state and s._owned[1] == s._state
    assert s.release_render_state() is False  # not read since
    assert s.dirty_rows() == {}  # the refill reports no row changed: clients get no frame
    assert _view(s) == view
    # What comes after is reported row by row, as on the screen never released.
    s.release_render_state()
    more = b"\x1b[5;1Hchanged \x1b[1mrow\x1b[0m" + _lines(3, start=300)
    s.feed(more)
    twin.dirty_rows()
    twin.feed(more)
    assert s.dirty_rows() == twin.dirty_rows() != {}
    assert _view(s) == _view(twin)
    s.close()
    assert s.release_render_state() is False


def test_a_released_screen_gives_back_the_output_buffer_long_reads_grew() -> None:
    s = TerminalScreen(120, 40)
    s.feed(_lines(2000))
    rows = s.scrollback(0, 400)  # styled rows through the formatter: its buffer grows (<= 64 KB kept)
    assert len(rows) == 400 and len(s._out) > screen_swap.OUT_START_BYTES
    s.frame()
    assert s.release_render_state() is True
    assert len(s._out) == screen_swap.OUT_START_BYTES
    assert s.scrollback(0, 400) == rows
    s.close()


def test_releasing_read_render_states_gives_their_memory_back() -> None:
    from workbench.daemon import process_upkeep

    if process_upkeep.heap_bytes() is None:
        pytest.skip("needs glibc's mallinfo2 (glibc 2.33+) to read the heap")

    def in_use() -> float:
        counts = process_upkeep.heap_bytes()
        assert counts is not None
        return counts[0] / 1e6

    screens = [TerminalScreen(120, 40) for _ in range(20)]
    for s in screens:
        s.feed(_lines(100))
    before = in_use()
    for s in screens:
        s.lines()
    read = in_use()
    for s in screens:
        assert s.release_render_state()
    released = in_use()
    # Each read screen held its cells' copy (a few hundred KB); released, they are gone.
    assert read - before > 2.0
    assert released - before < (read - before) / 4
    for s in screens:
        s.close()


def test_the_daemons_quiet_sweep_releases_a_read_screens_render_state(tmp_path: Any) -> None:
    from workbench.daemon.hub import Hub
    from workbench.daemon.pty_runtime import COMPACT_AFTER_QUIET_S, PtyRuntime

    rt = PtyRuntime("s1", Hub(), ["true"], cwd=tmp_path, env={}, cols=120, rows=40,
                    scrollback_lines=1000, on_exit=lambda r: None)  # never started
    try:
        rt.screen.feed(_lines(50))
        rt.screen.lines()
        state = rt.screen._state
        now = rt.last_output + COMPACT_AFTER_QUIET_S / 2
        rt.compact_if_quiet(now)  # output too recent: a stream may go on, nothing is touched
        assert rt.screen._state == state
        rt.compact_if_quiet(rt.last_output + COMPACT_AFTER_QUIET_S + 1)
        assert rt.screen._state != state and not rt.screen._state_read
    finally:
        rt.screen.close()
