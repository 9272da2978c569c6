"""core/tree_diff.py in-process on real repos: one git pass for hunks and counts, the
fallbacks for big files and big texts, and a diff updated path by path giving exactly the
whole diff (or declining)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import git, make_repo
from workbench.core import tree_diff
from workbench.core.diff_model import Diff
from workbench.core.tree_diff import compute_tree_diff, update_tree_diff


def commit(repo: Path) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", "step")
    return git(repo, "rev-parse", "HEAD").strip()


def same(a: Diff, b: Diff) -> None:
    assert [(f.path, f.old_path, f.status, f.added, f.removed) for f in a.files] == \
        [(f.path, f.old_path, f.status, f.added, f.removed) for f in b.files]
    assert a.unified() == b.unified() and a.digest == b.digest and a.notes == b.notes


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    files = {f"d{i % 3}/f{i}.txt": "".join(f"line {j} of {i}\n" for j in range(30)) for i in range(12)}
    files["keep.txt"] = "keep\n"
    return make_repo(tmp_path / "repo", files)


def edit(repo: Path, path: str, old: str, new: str) -> None:
    p = repo / path
    p.write_text(p.read_text().replace(old, new))


def test_updating_a_diff_path_by_path_gives_the_whole_diff(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    steps = [
        lambda: edit(repo, "d0/f0.txt", "line 3 ", "LINE 3 "),                     # modified
        lambda: edit(repo, "d1/f1.txt", "line 9 ", "nine "),                      # another
        lambda: (repo / "new" / "a.txt").parent.mkdir() or (repo / "new" / "a.txt").write_text("a\n"),
        lambda: (repo / "new" / "a.txt").write_text("a\nb\n"),                    # an added file again
        lambda: edit(repo, "d0/f0.txt", "LINE 3 ", "line 3 "),                    # back as in base
        lambda: (repo / "d2" / "f2.txt").chmod(0o755),                            # mode only
        lambda: (repo / "bin.dat").write_bytes(b"\0\1\2"),                         # binary
        lambda: os.rename(repo / "d1" / "f4.txt", repo / "d1" / "moved.txt"),     # a rename: declined
        lambda: edit(repo, "d1/f7.txt", "line 1 ", "one "),                       # renames elsewhere, modified here
        lambda: (repo / "keep.txt").unlink(),                                      # a deletion: declined
    ]
    tip = base
    prev = compute_tree_diff(repo, base, tip)
    taken = 0
    for step in steps:
        step()
        new_tip = commit(repo)
        whole = compute_tree_diff(repo, base, new_tip)
        updated = update_tree_diff(repo, prev, tip, base, new_tip)
        if updated is not None:
            same(updated, whole)
            taken += 1
        prev, tip = whole, new_tip
    assert taken >= 7
    # Nothing changed between the tips (a commit of the same tree): the same diff.
    again = commit(repo)
    updated = update_tree_diff(repo, prev, tip, base, again)
    assert updated is not None and updated.unified() == prev.unified()


def test_a_new_file_that_could_pair_with_a_deleted_one_is_diffed_whole(repo: Path) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "d0" / "f3.txt").unlink()
    tip = commit(repo)
    prev = compute_tree_diff(repo, base, tip)
    (repo / "copy.txt").write_text("".join(f"line {j} of 3\n" for j in range(30)))
    new_tip = commit(repo)
    assert update_tree_diff(repo, prev, tip, base, new_tip) is None
    assert [f.status for f in compute_tree_diff(repo, base, new_tip).files] == ["renamed"]


def test_a_big_file_is_counted_and_the_rest_shown(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "big.txt").write_text("".join(f"{j}\n" for j in range(50)))
    edit(repo, "d0/f0.txt", "line 3 ", "LINE 3 ")
    tip = commit(repo)
    monkeypatch.setattr(tree_diff, "BIG_FILE_LINES", 20)
    d = compute_tree_diff(repo, base, tip)
    by = {f.path: f for f in d.files}
    assert (by["big.txt"].added, by["big.txt"].hunks) == (50, [])
    assert len(by["d0/f0.txt"].hunks) == 1 and by["d0/f0.txt"].added == 1
    assert d.notes == ["too large to show line by line: big.txt (+50 -0)"]
    monkeypatch.setattr(tree_diff, "MAX_DIFF_TEXT", 100)
    counted = compute_tree_diff(repo, base, tip)
    assert [(f.path, f.added, f.removed, f.hunks) for f in counted.files] == \
        [("big.txt", 50, 0, []), ("d0/f0.txt", 1, 1, [])]
    assert "the change is too large to show line by line; line counts only" in counted.notes


def test_a_capped_read_takes_what_comes_and_stops_at_the_cap(tmp_path: Path) -> None:
    import subprocess
    import tracemalloc

    def read(payload: bytes, cap: int) -> tuple[bytes, int]:
        src = tmp_path / "payload"
        src.write_bytes(payload)
        with subprocess.Popen(["cat", str(src)], stdout=subprocess.PIPE) as proc:
            assert proc.stdout is not None
            tracemalloc.start()
            try:
                data = tree_diff.read_capped(proc.stdout, cap)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            proc.kill()
        return data, peak

    # A small diff under a 16 MB cap: read(cap) allocated the whole cap before reading.
    data, peak = read(b"diff --git a/x b/x\n", 16 << 20)
    assert data == b"diff --git a/x b/x\n"
    assert peak < 1 << 20
    data, _ = read(b"y" * 300_000, 200_001)
    assert data == b"y" * 200_001


def test_a_kept_diff_sent_as_rows_keeps_its_hunks_as_one_text_each(repo: Path) -> None:
    import gc
    import tracemalloc

    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "new.txt").write_text("".join(f"added line number {j}\n" for j in range(2000)))
    d = compute_tree_diff(repo, base, commit(repo))
    hunks = [h for f in d.files for h in f.hunks]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rows = [h.rows() for h in hunks]
        assert sum(len(r) for r in rows) == 2000 and rows[0][0] == ["+", "added line number 0", None, 1]
        del rows
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # Sending a diff's rows left each hunk holding a string a line (2,000 small objects,
    # ~130 KB, kept as long as the diff): now nothing stays but what the call made.
    assert kept < 20_000
    assert [h.rows() for h in hunks] == [h.rows() for h in hunks]
