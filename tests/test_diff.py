"""The worktree diff (core/worktree_diff.py and the parser, model and renderers) against real repos."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import git, make_repo
from workbench.core.diff_model import Diff, FileDiff
from workbench.core.diff_parse import parse_unified
from workbench.core.diff_render import diff_stat_text, word_diff
from workbench.core.worktree_diff import compute_diff
from workbench.errors import GitError, NotFound, UsageError

LINES = "".join(f"line {i}\n" for i in range(1, 41))


def session(tmp_path: Path, files: dict[str, str] | None = None) -> tuple[Path, Path, str]:
    repo = make_repo(tmp_path / "repo", files or {"a.txt": LINES, "README.md": "# demo\n"})
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "wb/x", str(wt), "HEAD")
    return repo, wt, git(repo, "rev-parse", "HEAD").strip()


def edit(path: Path, replace: dict[int, str]) -> None:
    """Replace 1-based line numbers of a file."""
    lines = path.read_text().splitlines(keepends=True)
    for no, text in replace.items():
        lines[no - 1] = text
    path.write_text("".join(lines))


def by_path(diff: Diff) -> dict[str, FileDiff]:
    return {f.path: f for f in diff.files}


def test_modified_file_hunks_and_line_numbers(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path)
    edit(wt / "a.txt", {5: "five\n", 30: "thirty\n"})
    d = compute_diff(wt, base)
    assert d.base == base
    [f] = d.files
    assert (f.path, f.status, f.old_path, f.binary) == ("a.txt", "modified", None, False)
    assert (f.added, f.removed) == (2, 2)
    assert len(f.hunks) == 2
    h = f.hunks[0]
    assert (h.old_start, h.old_lines, h.new_start, h.new_lines) == (2, 7, 2, 7)
    assert h.header == "@@ -2,7 +2,7 @@ line 1"  # git adds the nearest "function" line
    changed = [(ln.kind, ln.text, ln.old_no, ln.new_no) for ln in h.lines if ln.kind != " "]
    assert changed == [("-", "line 5", 5, None), ("+", "five", None, 5)]
    assert h.lines[0].old_no == 2 and h.lines[0].new_no == 2
    assert d.stat() == (1, 2, 2)


def test_untracked_added_deleted_and_ignored(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path, {"a.txt": LINES, "gone.txt": "bye\n", ".gitignore": ".env\n"})
    (wt / "new" / "deep").mkdir(parents=True)
    (wt / "new" / "deep" / "n.py").write_text("x = 1\ny = 2\n")
    (wt / ".env").write_text("SECRET=1\n")
    (wt / "gone.txt").unlink()
    files = by_path(compute_diff(wt, base))
    assert set(files) == {"new/deep/n.py", "gone.txt"}
    new, gone = files["new/deep/n.py"], files["gone.txt"]
    assert (new.status, new.added, new.removed, new.new_mode) == ("added", 2, 0, "100644")
    assert [ln.text for ln in new.hunks[0].lines] == ["x = 1", "y = 2"]
    assert (gone.status, gone.added, gone.removed) == ("deleted", 0, 1)
    assert gone.hunks[0].lines[0].old_no == 1 and gone.hunks[0].lines[0].new_no is None


def test_renames_with_and_without_edits(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path, {"a.txt": LINES, "b.txt": LINES.replace("line", "row")})
    git(wt, "mv", "a.txt", "moved.txt")
    (wt / "b.txt").rename(wt / "sub-b.txt")  # untracked rename, index not told
    edit(wt / "sub-b.txt", {1: "first\n"})
    files = by_path(compute_diff(wt, base))
    plain, edited = files["moved.txt"], files["sub-b.txt"]
    assert (plain.status, plain.old_path, plain.hunks, plain.similarity) == (
        "renamed", "a.txt", [], 100,
    )  # fmt: skip
    assert (edited.status, edited.old_path, edited.added, edited.removed) == (
        "renamed", "b.txt", 1, 1,
    )  # fmt: skip
    assert "b.txt => sub-b.txt" in diff_stat_text(compute_diff(wt, base))


def test_binary_files_are_named_not_dumped(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "img.bin").write_bytes(bytes(range(256)) * 4)
    make_repo(repo, {"README.md": "x\n"})
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "wb/x", str(wt), "HEAD")
    (wt / "img.bin").write_bytes(b"\0\1\2" * 500)
    (wt / "new.bin").write_bytes(b"\0PNG" + os.urandom(64))
    d = compute_diff(wt, "HEAD")
    files = by_path(d)
    assert files["img.bin"].binary and files["img.bin"].status == "modified"
    assert files["new.bin"].binary and files["new.bin"].status == "added"
    assert all(f.hunks == [] and f.added == 0 for f in d.files)
    text = d.unified()
    assert "Binary files a/img.bin and b/img.bin differ" in text
    assert "\0" not in text
    assert "img.bin | Bin" in diff_stat_text(d)


def test_crlf_kept_out_of_text_but_in_patches(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path, {"win.txt": "a\r\nb\r\nc\r\n"})
    (wt / "win.txt").write_bytes(b"a\r\nB\r\nc\r\n")
    d = compute_diff(wt, base)
    lines = d.files[0].hunks[0].lines
    assert [(ln.kind, ln.text, ln.cr) for ln in lines] == [
        (" ", "a", True), ("-", "b", True), ("+", "B", True), (" ", "c", True),
    ]  # fmt: skip
    assert "-b\r\n+B\r\n" in d.unified()
    assert json.loads(json.dumps(d.to_json()))["files"][0]["hunks"][0]["lines"][1] == [
        "-", "b", 2, None, {"no_newline": False, "cr": True},
    ]  # fmt: skip


def test_no_newline_at_end_of_file(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path, {"n.txt": "one\ntwo"})
    (wt / "n.txt").write_text("one\ntwo\n")
    [f] = compute_diff(wt, base).files
    minus, plus = (ln for ln in f.hunks[0].lines if ln.kind != " ")
    assert (minus.text, minus.no_newline) == ("two", True)
    assert (plus.text, plus.no_newline) == ("two", False)
    assert "-two\n\\ No newline at end of file\n+two\n" in f.render()


def test_unicode_and_special_paths(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path)
    names = ["dir/ünï cödé.txt", "tab\there.txt", 'quote"d.txt', "日本語/ファイル.md", "sp ace"]
    for name in names:
        (wt / name).parent.mkdir(exist_ok=True)
        (wt / name).write_text(f"{name}\n")
    d = compute_diff(wt, base)
    assert sorted(f.path for f in d.files) == sorted(names)
    for f in d.files:
        assert [ln.text for ln in f.hunks[0].lines] == [f.path]
    assert '"b/tab\\there.txt"' in d.unified()
    assert "日本語/ファイル.md" in d.unified()


def test_unified_applies_back_to_base(tmp_path: Path) -> None:
    """The re-rendered patch recreates the worktree from base with `git apply`."""
    repo, wt, base = session(
        tmp_path,
        {"a.txt": LINES, "b.txt": LINES.upper(), "win.txt": "x\r\ny\r\n", "end.txt": "no eol",
         "tool.sh": "echo hi\n", "old.txt": "old\n"},
    )  # fmt: skip
    edit(wt / "a.txt", {1: "ONE\n", 20: "twenty\n", 40: "forty"})
    git(wt, "mv", "b.txt", "ü b.txt")
    edit(wt / "ü b.txt", {3: "three\n"})
    (wt / "win.txt").write_bytes(b"x\r\nY\r\n")
    (wt / "end.txt").write_text("no eol\nnow\n")
    (wt / "tool.sh").chmod(0o755)
    (wt / "old.txt").unlink()
    (wt / "empty").write_text("")
    (wt / "link").symlink_to("a.txt")
    patch = compute_diff(wt, base).unified()
    other = tmp_path / "other"
    git(repo, "worktree", "add", "-q", "--detach", str(other), base)
    subprocess.run(["git", "apply", "-"], cwd=other, input=patch.encode(), check=True)
    for name in ["a.txt", "ü b.txt", "win.txt", "end.txt", "empty"]:
        assert (other / name).read_bytes() == (wt / name).read_bytes(), name
    assert not (other / "old.txt").exists() and not (other / "b.txt").exists()
    assert os.access(other / "tool.sh", os.X_OK)
    assert os.readlink(other / "link") == "a.txt"


def test_mode_change_empty_file_and_symlinks(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path, {"run.sh": "echo\n", "target.txt": "t\n", "was_file": "x\n"})
    (wt / "run.sh").chmod(0o755)
    (wt / "empty.txt").write_text("")
    (wt / "ln").symlink_to("target.txt")
    (wt / "was_file").unlink()
    (wt / "was_file").symlink_to("target.txt")
    files = by_path(compute_diff(wt, base))
    assert files["run.sh"].mode_change == ("100644", "100755")
    assert files["run.sh"].hunks == [] and files["run.sh"].status == "modified"
    assert (files["empty.txt"].status, files["empty.txt"].hunks) == ("added", [])
    ln = files["ln"]
    assert (ln.status, ln.new_mode, ln.is_symlink) == ("added", "120000", True)
    assert ln.hunks[0].lines[0].text == "target.txt" and ln.hunks[0].lines[0].no_newline
    tc = files["was_file"]
    assert (tc.status, tc.mode_change) == ("typechange", ("100644", "120000"))
    assert (tc.added, tc.removed) == (1, 1) and len(tc.hunks) == 2


def test_real_index_is_not_touched(tmp_path: Path) -> None:
    repo, wt, base = session(tmp_path)
    edit(wt / "a.txt", {2: "two\n"})
    (wt / "untracked.txt").write_text("u\n")
    index = repo / ".git" / "worktrees" / "wt" / "index"
    before = index.read_bytes()
    status = git(wt, "status", "--porcelain")
    d = compute_diff(wt, base)
    assert {f.path for f in d.files} == {"a.txt", "untracked.txt"}
    assert index.read_bytes() == before
    assert git(wt, "status", "--porcelain") == status
    assert "?? untracked.txt" in status


def test_commits_on_the_branch_still_diff_against_base(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path)
    edit(wt / "a.txt", {2: "two\n"})
    git(wt, "commit", "-qam", "agent commit")
    edit(wt / "a.txt", {30: "thirty\n"})
    d = compute_diff(wt, base)
    assert d.stat() == (1, 2, 2) and len(d.files[0].hunks) == 2


def test_hunk_ids_stable_across_recomputation(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path)
    edit(wt / "a.txt", {5: "five\n", 20: "twenty\n", 35: "thirty-five\n"})
    first = [h.id for h in compute_diff(wt, base).files[0].hunks]
    assert len(set(first)) == 3
    assert [h.id for h in compute_diff(wt, base).files[0].hunks] == first
    # The agent changes the middle hunk again and inserts lines above everything.
    edit(wt / "a.txt", {20: "TWENTY\n"})
    text = (wt / "a.txt").read_text()
    (wt / "a.txt").write_text(text.replace("line 1\n", "line 1\n", 1))
    again = [h.id for h in compute_diff(wt, base).files[0].hunks]
    assert again[0] == first[0] and again[2] == first[2]
    assert again[1] != first[1]
    # Shifting every line number does not change ids: only the path and changed lines count.
    (wt / "a.txt").write_text("header\n" * 10 + (wt / "a.txt").read_text())
    shifted = [h.id for h in compute_diff(wt, base).files[0].hunks]
    assert shifted[1:] == again[1:]


def test_identical_hunks_in_one_file_get_distinct_ids(tmp_path: Path) -> None:
    body = "".join(f"{'x' if i % 10 == 0 else i}\n" for i in range(1, 61))
    _, wt, base = session(tmp_path, {"r.txt": body})
    (wt / "r.txt").write_text(body.replace("x\n", "y\n"))
    d = compute_diff(wt, base)
    ids = [h.id for h in d.files[0].hunks]
    assert len(ids) == 6 and len(set(ids)) == 6
    assert [h.id for h in compute_diff(wt, base).files[0].hunks] == ids
    f, h = d.find_hunk(ids[3])
    assert f.path == "r.txt" and h.new_start == d.files[0].hunks[3].new_start
    with pytest.raises(NotFound, match="refresh the diff"):
        d.find_hunk("0123456789ab")


def test_context_and_paths(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path, {"a.txt": LINES, "b.txt": LINES})
    edit(wt / "a.txt", {5: "five\n", 9: "nine\n"})
    edit(wt / "b.txt", {1: "one\n"})
    assert len(compute_diff(wt, base).files[0].hunks) == 1
    zero = compute_diff(wt, base, context=0, paths=["a.txt"])
    assert [f.path for f in zero.files] == ["a.txt"]
    assert [(h.old_start, h.old_lines) for h in zero.files[0].hunks] == [(5, 1), (9, 1)]
    assert all(ln.kind != " " for h in zero.files[0].hunks for ln in h.lines)
    with pytest.raises(UsageError, match="context"):
        compute_diff(wt, base, context=-1)
    with pytest.raises(UsageError, match="relative"):
        compute_diff(wt, base, paths=["../x"])


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path)
    with pytest.raises(UsageError, match="start with '-'"):
        compute_diff(wt, "--output=/tmp/x")
    with pytest.raises(NotFound, match="not a commit"):
        compute_diff(wt, "no-such-ref")
    with pytest.raises(NotFound, match="does not exist"):
        compute_diff(tmp_path / "missing", base)
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError, match="not a git checkout"):
        compute_diff(plain, base)


def test_git_file_pointing_inside_worktree_is_refused(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path)
    fake = wt / "fake-git"
    subprocess.run(["git", "init", "-q", "--bare", str(fake)], check=True)
    (wt / ".git").write_text(f"gitdir: {fake}\n")
    with pytest.raises(GitError, match="inside the worktree"):
        compute_diff(wt, base)


def test_to_json_shape(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path)
    edit(wt / "a.txt", {3: "three\n"})
    data = json.loads(json.dumps(compute_diff(wt, base).to_json()))
    assert data["base"] == base
    f = data["files"][0]
    assert {"path", "old_path", "status", "binary", "added", "removed", "hunks"} <= set(f)
    h = f["hunks"][0]
    assert {"id", "header", "old_start", "old_lines", "new_start", "new_lines", "lines"} <= set(h)
    assert ["-", "line 3", 3, None] in h["lines"] and ["+", "three", None, 3] in h["lines"]


def test_diff_stat_text() -> None:
    text = (
        "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,3 @@\n-a\n+b\n+c\n d\n"
        "diff --git a/docs/old.md b/docs/new.md\nsimilarity index 90%\n"
        "rename from docs/old.md\nrename to docs/new.md\n"
    )
    d = Diff("0" * 40, parse_unified(text))
    assert diff_stat_text(d) == (
        f" {'x.py':<23} | 3 ++-\n"
        " docs/{old.md => new.md} | 0\n"
        " 2 files changed, 2 insertions(+), 1 deletion(-)\n"
    )
    assert diff_stat_text(Diff("0" * 40, [])) == " 0 files changed\n"


def test_word_diff_marks_changed_words() -> None:
    old, new = "total = price * qty", "total = price * quantity + tax"
    a, b = word_diff(old, new)
    assert [old[s:e] for s, e in a] == ["qty"]
    assert [new[s:e] for s, e in b] == ["quantity + tax"]
    assert word_diff("same", "same") == ([], [])
    assert word_diff("", "new") == ([], [(0, 3)])


def test_parser_handles_plain_and_malformed_input() -> None:
    plain = "--- old.c\n+++ new.c\n@@ -1 +1 @@\n-a\n+b\n"
    [f] = parse_unified("preamble text\n" + plain)
    assert (f.path, f.status, f.added, f.removed) == ("new.c", "modified", 1, 1)
    with pytest.raises(UsageError, match="ends inside the hunk"):
        parse_unified("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n")
    with pytest.raises(UsageError, match="malformed hunk header"):
        parse_unified("diff --git a/x b/x\n@@ -x +1 @@\n")
    assert parse_unified("") == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([
    "diff --git a/x b/x", "diff --git \"a/q\\tz\" \"b/q\\tz\"", "--- a/x", "+++ b/x",
    "--- /dev/null", "+++ /dev/null", "@@ -1,2 +1,2 @@", "@@ -1 +1 @@", "@@ -0,0 +1 @@",
    " ctx", "-old", "+new", "\\ No newline at end of file", "", "new file mode 100644",
    "rename from a b", "rename to \"c\\303\"", "Binary files a/x and b/x differ",
    "GIT binary patch", "literal 3", "old mode 100644", "new mode 100755", "index 1..2 100644",
    "similarity index 50%", "deleted file mode 100644", "+\r", "garbage \x00",
]), max_size=25))  # fmt: skip
def test_parser_fuzz_only_raises_usage_errors(lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        files = parse_unified(text)
    except UsageError:
        return
    # Whatever parsed re-renders to something that parses to the same hunks.
    again = parse_unified(Diff("", files).unified())
    assert [[h.id for h in f.hunks] for f in again if f.hunks] == [
        [h.id for h in f.hunks] for f in files if f.hunks
    ]


def test_unaddable_nested_repo_does_not_hide_the_diff(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path)
    subprocess.run(["git", "init", "-q", str(wt / "empty-nested")], check=True)
    edit(wt / "a.txt", {2: "two\n"})
    assert [f.path for f in compute_diff(wt, base).files] == ["a.txt"]
