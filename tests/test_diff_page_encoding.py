"""A `diff` page encoded hunk by hunk (`review_replies.encoded_page`, `protocol.encode_list`):
the same bytes as encoding the whole reply as objects, without all of a big hunk's rows and
their JSON pieces alive at once (a burst of small objects whose memory the daemon kept)."""

from __future__ import annotations

import gc
import json
import tracemalloc
from pathlib import Path

import pytest

from tests.conftest import git, make_repo
from workbench.core import review as rv
from workbench.core.diff_model import Diff
from workbench.core.diff_parse import parse_unified
from workbench.core.tree_diff import compute_tree_diff
from workbench.daemon.protocol import RawJSON, dumps, encode_list, encode_value
from workbench.daemon.review_replies import encoded_page, page_body

# Unicode, a lone surrogate, CR endings, missing newlines, a NUL, and text shaped like the
# encoder's marker for a RawJSON.
TRICKY = (
    "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,3 @@\n a\r\n-b\r\n\\ No newline at end of file\n"
    "+\u00e9\udcff\n\\ No newline at end of file\n+\x00deadbeef\n"
    "diff --git a/g b/g\n--- a/g\n+++ b/g\n@@ -1,2 +1,2 @@ section\n-\"\\u0000\" ]}\n+x\n y\n"
    "@@ -20,2 +20,3 @@\n q\n+r\n s\n"
)


def _repo_diff(tmp_path: Path, lines: int) -> Diff:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n", "b.txt": "".join(f"b{j}\n" for j in range(300))})
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "new.txt").write_text("".join(f"added line number {j}\n" for j in range(lines)))
    (repo / "b.txt").write_text("".join(f"b{j}\n" if j % 50 else f"B{j}\n" for j in range(300)))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "change")
    return compute_tree_diff(repo, base, git(repo, "rev-parse", "HEAD").strip())


@pytest.mark.parametrize("budget", [2_500_000, 400, 40])
@pytest.mark.parametrize("offset", [0, 1])
def test_a_page_encoded_hunk_by_hunk_is_the_same_bytes(tmp_path: Path, budget: int, offset: int) -> None:
    st = rv.ReviewState("s1")
    for diff in (Diff("base", parse_unified(TRICKY)), _repo_diff(tmp_path, 600)):
        st.reviewed = {diff.files[0].hunks[0].id: 1.0}
        plain = encode_value(page_body(diff, st, stat_only=False, unified=False, offset=offset,
                                       budget_bytes=budget))
        fast = encoded_page(diff, st, stat_only=False, unified=False, offset=offset, budget_bytes=budget)
        assert fast == plain
        assert fast.decode() == dumps(json.loads(fast))
    # Small budgets leave hunks out (their lines are not made), and say so.
    page = json.loads(encoded_page(diff, st, stat_only=False, unified=False, offset=0, budget_bytes=40))
    big = next(f for f in page["files"] if f["hunk_count"] > 1)
    assert big["omitted"] and big["hunks"][0]["lines"] and big["hunks"][1]["lines"] is None


def test_built_lines_encode_the_same_as_raw_text() -> None:
    lazy = Diff("base", parse_unified(TRICKY))
    built = Diff("base", parse_unified(TRICKY))
    for f in built.files:
        for h in f.hunks:
            assert h.lines  # DiffLine objects from now on
    st = rv.ReviewState("s1")
    kw = {"stat_only": False, "unified": False, "offset": 0}
    assert encoded_page(built, st, **kw) == encoded_page(lazy, st, **kw)


def test_encode_list_and_raw_json_splice_as_json_would() -> None:
    items = [[i, "x" * (i % 7), None, {"k": i}] for i in range(1000)]
    for batch in (1, 3, 256, 5000):
        assert encode_list(iter(items), batch).text == dumps(items)
    assert encode_list([]).text == "[]"
    value = {"a": RawJSON("[1,2]"), "b": ["\x00", {"c": RawJSON("{}")}], "d": "\x00" + "0" * 24}
    assert json.loads(encode_value(value)) == {"a": [1, 2], "b": ["\x00", {"c": {}}], "d": "\x00" + "0" * 24}
    with pytest.raises(TypeError):
        encode_value({"x": object()})


def test_a_big_hunks_page_never_holds_all_its_rows_at_once(tmp_path: Path) -> None:
    diff = _repo_diff(tmp_path, 2000)
    st = rv.ReviewState("s1")
    kw = {"stat_only": False, "unified": False, "offset": 0}
    page = encoded_page(diff, st, **kw)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        again = encoded_page(diff, st, **kw)
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert again == page and len(page) > 80_000
    # All 2,000 rows as lists, then ~8 JSON pieces a row held by the encoder: 1.03 MB at the
    # peak for this 82 KB page. Now a batch of rows at a time: 0.36 MB, most of it the
    # page's own few copies (large blocks, which the allocator hands back).
    assert peak < 5 * len(page), f"peak {peak} bytes for a {len(page)}-byte page"
