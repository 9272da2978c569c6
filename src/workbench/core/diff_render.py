"""Text views of a diff: the `git diff --stat` summary and word-level changes within a line.

`word_diff` marks the changed words of a removed line against its added counterpart; the
diff view (ui/diff_doc.py) highlights them.
"""

from __future__ import annotations

import difflib
import re

from workbench.core import review_noise
from workbench.core.diff_hunk import display_text
from workbench.core.diff_model import Diff, FileDiff
from workbench.core.git_paths import quote_path


def diff_stat_text(diff: Diff, width: int = 80) -> str:
    """A `git diff --stat` style summary."""
    notes = "".join(f" ({note})\n" for note in diff.notes)
    if diff.ignored_count:
        notes += f" {review_noise.summary(diff.ignored_count, [display_text(w) for w in diff.ignored_where])}\n"
    if not diff.files:
        return notes + (" 0 files changed\n" if not diff.more_files else f" {diff.more_files} files changed\n")
    names = [_stat_name(f) for f in diff.files]
    counts = ["Bin" if f.binary else str(f.added + f.removed) for f in diff.files]
    name_w = min(max(len(s) for s in names), max(20, width // 2))
    count_w = max(len(c) for c in counts)
    bar_w = max(10, width - name_w - count_w - 5)
    biggest = max((f.added + f.removed for f in diff.files), default=0)
    rows = []
    for f, name, count in zip(diff.files, names, counts, strict=True):
        if len(name) > name_w:
            name = "..." + name[-(name_w - 3) :]
        total = f.added + f.removed
        plus, minus = f.added, f.removed
        if biggest > bar_w and total:
            plus = round(f.added * bar_w / biggest)
            minus = round(f.removed * bar_w / biggest)
            if f.added and not plus:
                plus = 1
            if f.removed and not minus:
                minus = 1
        bar = "" if f.binary else "+" * plus + "-" * minus
        rows.append(f" {name.ljust(name_w)} | {count.rjust(count_w)} {bar}".rstrip() + "\n")
    if diff.more_files:
        rows.append(f" ... and {diff.more_files} more file{'s' if diff.more_files != 1 else ''}\n")
    rows.append(notes)
    nfiles, added, removed = diff.stat()
    summary = f" {nfiles} file{'s' if nfiles != 1 else ''} changed"
    if added or not removed:
        summary += f", {added} insertion{'s' if added != 1 else ''}(+)"
    if removed or not added:
        summary += f", {removed} deletion{'s' if removed != 1 else ''}(-)"
    return "".join(rows) + summary + "\n"


def _stat_name(f: FileDiff) -> str:
    path = display_text(f.path)
    if f.old_path is None or f.old_path == f.path:
        return quote_path(path)
    old = display_text(f.old_path)
    # Compact "dir/{old => new}/rest" like git when the names share leading/trailing dirs.
    o_parts, n_parts = old.split("/"), path.split("/")
    pre = 0
    while pre < min(len(o_parts), len(n_parts)) - 1 and o_parts[pre] == n_parts[pre]:
        pre += 1
    post = 0
    while (
        post < min(len(o_parts), len(n_parts)) - pre - 1
        and o_parts[-1 - post] == n_parts[-1 - post]
    ):
        post += 1
    if pre == 0 and post == 0:
        return f"{old} => {path}"
    mid_o = "/".join(o_parts[pre : len(o_parts) - post])
    mid_n = "/".join(n_parts[pre : len(n_parts) - post])
    head = "/".join(o_parts[:pre]) + ("/" if pre else "")
    tail = ("/" if post else "") + "/".join(o_parts[len(o_parts) - post :])
    return f"{head}{{{mid_o} => {mid_n}}}{tail}"


_TOKEN_RE = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)
_WORD_DIFF_MAX = 4000


def word_diff(old: str, new: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Changed character spans [start, end) in `old` and in `new`, by word tokens."""
    if old == new:
        return [], []
    if len(old) + len(new) > _WORD_DIFF_MAX:  # too long to be worth a token match
        return ([(0, len(old))] if old else []), ([(0, len(new))] if new else [])
    a = [m.span() for m in _TOKEN_RE.finditer(old)]
    b = [m.span() for m in _TOKEN_RE.finditer(new)]
    sm = difflib.SequenceMatcher(
        None, [old[s:e] for s, e in a], [new[s:e] for s, e in b], autojunk=False
    )
    spans_a: list[tuple[int, int]] = []
    spans_b: list[tuple[int, int]] = []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        if i2 > i1:
            _add_span(spans_a, a[i1][0], a[i2 - 1][1])
        if j2 > j1:
            _add_span(spans_b, b[j1][0], b[j2 - 1][1])
    return spans_a, spans_b


def _add_span(spans: list[tuple[int, int]], start: int, end: int) -> None:
    if spans and spans[-1][1] == start:
        spans[-1] = (spans[-1][0], end)
    else:
        spans.append((start, end))
