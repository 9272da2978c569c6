"""A screen's history moved out of the emulator reads exactly as before, at a fraction of
the memory, and keeps the scrollback limit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.screen import TerminalScreen
from workbench.core.scrollback_cold import CHUNK_ROWS, ColdHistory


def _lines(n: int, start: int = 0) -> bytes:
    # Colour and plain runs, so rows have more than one run.
    return b"".join(b"\x1b[3%dm%d\x1b[0m line %d\r\n" % (i % 8, i, i) for i in range(start, start + n))


def test_compacted_history_reads_the_same_and_the_screen_is_untouched() -> None:
    s = TerminalScreen(120, 40)
    s.feed(_lines(3000) + b"\x1b]0;title\x07$ partial")
    history = s.scrollback(0, s.scrollback_len())
    frame, cursor, title = s.frame(), s.cursor, s.title
    moved = s.compact_history()
    assert moved == len(history) > 2900
    assert s.scrollback_len() == len(history)
    assert s.scrollback(0, len(history)) == history
    assert (s.frame(), s.cursor, s.title) == (frame, cursor, title)
    # ~1 KB a row in the emulator; a few bytes compressed.
    assert s.cold_history_bytes() < len(history) * 20


def test_output_after_compaction_continues_the_history() -> None:
    s = TerminalScreen(80, 24)
    s.feed(_lines(500))
    before = s.scrollback(0, s.scrollback_len())
    s.compact_history()
    s.feed(_lines(300, start=500))
    total = s.scrollback_len()
    assert total == len(before) + 300
    assert s.scrollback(0, len(before)) == before
    # A range across the cold/emulator boundary, and the newest row.
    across = s.scrollback(len(before) - 2, 4)
    assert [row[0][0] for row in across] == [str(i) for i in range(len(before) - 2, len(before) + 2)]
    assert s.scrollback(total - 1, 5)[0][0][0] == "776"  # 800 lines; the screen shows 23 and the empty prompt row


def test_the_scrollback_limit_holds_across_cold_and_emulator_rows() -> None:
    s = TerminalScreen(80, 24, scrollback_lines=1000)
    for k in range(4):
        s.feed(_lines(700, start=k * 700))
        s.compact_history()
    assert s.scrollback_len() == 1000
    assert s.scrollback(0, 1)[0][0][0] == str(2800 - 23 - 1000)
    s.feed(_lines(400, start=2800))  # 400 more in the emulator: cold shows 600
    assert s.scrollback_len() == 1000
    assert s.scrollback(999, 1)[0][0][0] == str(3200 - 23 - 1)


def test_no_compaction_on_the_alternate_screen_or_below_the_threshold() -> None:
    s = TerminalScreen(80, 24)
    s.feed(_lines(100))
    assert s.compact_history(min_rows=200) == 0
    assert s.cold_history_bytes() == 0
    s.feed(b"\x1b[?1049h")
    assert s.compact_history() == 0
    s.feed(b"\x1b[?1049l")
    assert s.compact_history() == s.scrollback_len() > 0


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(st.integers(min_value=0, max_value=3 * CHUNK_ROWS), min_size=1, max_size=6),
    limit=st.integers(min_value=1, max_value=4 * CHUNK_ROWS),
    start=st.integers(min_value=0, max_value=5 * CHUNK_ROWS),
    count=st.integers(min_value=0, max_value=5 * CHUNK_ROWS),
)
def test_cold_history_is_the_newest_rows_up_to_its_limit(
    batches: list[int], limit: int, start: int, count: int
) -> None:
    cold = ColdHistory(limit)
    model: list[list[tuple[str, int, int, int]]] = []
    n = 0
    for size in batches:
        rows = [[(f"r{n + i}", i % 7, -1, 0)] for i in range(size)]
        n += size
        cold.extend(rows)
        model = (model + rows)[-limit:]
    assert len(cold) == len(model)
    assert cold.rows(start, count) == model[start : start + count]


def test_compaction_reads_a_long_history_a_batch_at_a_time() -> None:
    import tracemalloc

    s, twin = TerminalScreen(120, 40), TerminalScreen(120, 40)
    data = _lines(12_000)
    s.feed(data)
    twin.feed(data)
    expected = twin.scrollback(0, twin.scrollback_len())
    tracemalloc.start()
    try:
        moved = s.compact_history()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert moved == len(expected) > 6000  # what the emulator's own byte limit kept
    assert s.scrollback_len() == len(expected)
    assert s.scrollback(0, len(expected)) == expected
    # Every row read as objects at once peaked at megabytes; a batch of CHUNK_ROWS is far less.
    assert peak < 1_000_000
