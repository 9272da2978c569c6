"""Shorten command output for the model: keep the head and the tail, say what was dropped."""

from __future__ import annotations

_CODEC = ("utf-8", "surrogatepass")  # round-trips any str, even lone surrogates


def _note(omitted_bytes: int, omitted_lines: int) -> str:
    return f"[... {omitted_bytes} bytes / {omitted_lines} lines omitted ...]"


def _back_to_char_start(data: bytes, i: int) -> int:
    while 0 < i < len(data) and (data[i] & 0xC0) == 0x80:
        i -= 1
    return i


def _forward_to_char_start(data: bytes, i: int) -> int:
    while 0 < i < len(data) and (data[i] & 0xC0) == 0x80:
        i += 1
    return i


def truncate_output(text: str, max_bytes: int) -> str:
    """`text` if it fits in `max_bytes` of UTF-8, else its head and tail around a note.

    Cuts fall on line boundaries when one is near, and never inside a character. The result
    fits in `max_bytes` unless `max_bytes` is too small for the note itself.
    """
    data = text.encode(*_CODEC)
    if len(data) <= max(max_bytes, 0):
        return text
    total_lines = data.count(b"\n") + 1
    # Room for the longest note this text could need, plus a newline either side of it.
    reserve = len(_note(len(data), total_lines)) + 2
    budget = max(max_bytes - reserve, 0)
    head_budget = budget // 2
    tail_budget = budget - head_budget

    head_end = _back_to_char_start(data, head_budget)
    if head_end and data[head_end - 1] != 0x0A:
        nl = data.rfind(b"\n", 0, head_end)
        if nl >= 0 and nl + 1 >= head_end // 2:
            head_end = nl + 1

    tail_start = _forward_to_char_start(data, len(data) - tail_budget)
    if tail_start < len(data) and data[tail_start - 1] != 0x0A:
        nl = data.find(b"\n", tail_start)
        if nl >= 0 and nl + 1 - tail_start <= tail_budget // 2:
            tail_start = nl + 1

    middle = data[head_end:tail_start]
    omitted_lines = middle.count(b"\n") + (0 if middle.endswith(b"\n") else 1)
    head = data[:head_end].decode(*_CODEC)
    tail = data[tail_start:].decode(*_CODEC)
    before = "\n" if head and not head.endswith("\n") else ""
    after = "\n" if tail else ""
    return f"{head}{before}{_note(len(middle), omitted_lines)}{after}{tail}"
