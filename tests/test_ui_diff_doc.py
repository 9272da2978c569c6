"""The diff viewer's headless part: highlighting, word marks, rows, anchors, collapsing."""

from __future__ import annotations

from typing import Any

from tests.ui_review_fakes import FakeReview, hunks_of
from workbench.ui.diff_doc import HUGE_HUNK_LINES, clean, layout, prepare


def one_file(path: str, old: list[str], new: list[str], **extra: Any) -> dict[str, Any]:
    hunks = [{k: v for k, v in h.items() if k != "_ops"} for h in hunks_of(path, old, new)]
    return {"files": [{"path": path, "status": "modified", "binary": False, "added": 1, "removed": 1,
                       "key": "k:" + path, "review_status": "unreviewed", "hunks": hunks, **extra}],
            "stat": {"files": 1, "added": 1, "removed": 1}, "base": "main", "review": {}}


def test_word_marks_only_on_the_changed_words_and_syntax_colours() -> None:
    doc = prepare(one_file("a.py", ["def f(x):\n", "    return x + 1\n"], ["def f(x):\n", "    return x + 2\n"]),
                  set())
    lines = doc.files[0].hunks[0].lines
    assert lines is not None
    removed = next(ln for ln in lines if ln.kind == "-")
    added = next(ln for ln in lines if ln.kind == "+")
    assert [t for t, _s, marked in removed.spans if marked] == ["1"]
    assert [t for t, _s, marked in added.spans if marked] == ["2"]
    assert removed.text == "    return x + 1"
    # `def` and `return` are keywords: coloured, unlike plain names
    context = lines[0]
    styles = {t: s for t, s, _m in context.spans}
    assert styles["def"].color is not None and styles["def"] != styles.get("f")


def test_a_line_rewritten_entirely_gets_no_word_marks() -> None:
    doc = prepare(one_file("a.txt", ["alpha beta\n"], ["something else entirely\n"]), set())
    lines = doc.files[0].hunks[0].lines
    assert lines is not None and not any(m for ln in lines for _t, _s, m in ln.spans)


def test_control_characters_never_reach_the_screen() -> None:
    assert clean("a\x1b[2Jb\tc\x07\x9b") == "a␛[2Jb    c␇\ufffd"


def test_unified_rows_anchor_removed_lines_to_the_next_line_still_there() -> None:
    old = [f"l{i}\n" for i in range(10)]
    new = old[:4] + old[5:]  # line 5 (l4) removed
    doc = prepare(one_file("t.txt", old, new), set())
    rows = layout(doc, split=False)
    kinds = [r.kind for r in rows]
    assert kinds[:2] == ["file", "hunk"]
    gone = next(r for r in rows if r.kind == "line" and r.left and r.left.kind == "-")
    assert gone.anchor == 5  # l5 is line 5 now
    assert rows[1].anchor == doc.files[0].hunks[0].new_start


def test_split_rows_pair_removals_with_additions() -> None:
    old = ["a\n", "b\n", "c\n", "d\n"]
    new = ["a\n", "B\n", "C\n", "extra\n", "d\n"]
    rows = layout(prepare(one_file("t.txt", old, new), set()), split=True)
    pairs = [(r.left.text if r.left else None, r.right.text if r.right else None) for r in rows if r.kind == "line"]
    assert pairs == [("a", "a"), ("b", "B"), ("c", "C"), (None, "extra"), ("d", "d")]


def test_comments_and_rejections_show_where_they_belong() -> None:
    result = one_file("t.txt", ["a\n", "b\n", "c\n"], ["a\n", "B\n", "c\n"])
    result["review"] = {"comments": [{"path": "t.txt", "line": 2, "end_line": 2, "text": "why?", "sent": False}],
                        "rejections": [{"path": "t.txt", "header": "@@ -9 +9 @@", "reason": "no", "sent": False}]}
    rows = layout(prepare(result, set()), split=False)
    texts = [(r.kind, r.text) for r in rows if r.kind in ("note", "comment")]
    assert texts == [("note", "✖ rejected @@ -9 +9 @@: no"), ("comment", "✎ line 2: why?")]
    after = rows[[r.kind for r in rows].index("comment") - 1]
    assert after.left is not None and after.left.new_no == 2  # right under its line


def test_binary_files_are_named_not_dumped_and_big_ones_fold() -> None:
    fake = FakeReview()
    result = fake.result("s")
    doc = prepare(result, set())
    rows = layout(doc, split=False)
    logo = next(i for i, f in enumerate(doc.files) if f.path == "logo.png")
    assert [r.text for r in rows if r.file == logo and r.kind == "note"] == ["binary file — not shown"]
    huge = one_file("h.txt", [], [f"r{i}\n" for i in range(HUGE_HUNK_LINES + 10)])
    doc = prepare(huge, set())
    assert doc.files[0].hunks[0].lines is None  # not highlighted until opened
    assert [r.kind for r in layout(doc, False)] == ["file", "hunk", "fold"]
    opened = prepare(huge, {doc.files[0].hunks[0].id})
    assert opened.files[0].hunks[0].lines is not None
    closed = prepare(huge, set(), closed={"k:h.txt"})
    assert closed.files[0].collapsed and [r.kind for r in layout(closed, False)] == ["file", "fold"]


def test_prepared_hunks_are_cached_by_id() -> None:
    result = one_file("a.py", ["x = 1\n"], ["x = 2\n"])
    cache: dict[Any, Any] = {}
    first = prepare(result, set(), cache)
    again = prepare(result, set(), cache)
    assert first.files[0].hunks[0].lines is again.files[0].hunks[0].lines


def test_preparing_a_large_diff_lays_out_every_line() -> None:
    """20 files x 100 changed lines of Python: highlighted and laid out off the event loop."""
    files = []
    for n in range(20):
        old = [f"def f{i}(x):  # {n}\n" for i in range(400)]
        new = [f"def f{i}(y):  # {n}\n" if i % 4 == 0 else old[i] for i in range(400)]
        files += one_file(f"m{n}.py", old, new)["files"]
    opened = {f["key"] for f in files} | {h["id"] for f in files for h in f["hunks"]}
    doc = prepare({"files": files}, opened)
    rows = layout(doc, split=False)
    assert len(rows) > 20 * 100  # its time is measured in benchmarks/, not asserted here


def test_files_left_out_of_the_diff_are_named_in_the_summary() -> None:
    from workbench.ui.widgets.diff_panel import summary_content

    result = one_file("a.py", ["x\n"], ["y\n"])
    result["notes"] = ["too large to review (not imported): big.bin (2.0 GB)", "\x1b[31mred\x1b[0m", 7]
    doc = prepare(result, set(), {})
    assert doc.notes == ["too large to review (not imported): big.bin (2.0 GB)", "red"]
    text = summary_content(doc, split=False).plain
    assert "⚠ too large to review (not imported): big.bin (2.0 GB) (+1 more)" in text
    only_notes = prepare({"files": [], "notes": ["could not be read inside the session (not imported): x"]}, set(), {})
    assert "could not be read inside the session" in summary_content(only_notes, split=False).plain
    assert "⚠" not in summary_content(prepare(one_file("a.py", ["x\n"], ["y\n"]), set(), {}), split=False).plain
