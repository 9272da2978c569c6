"""core.merge: reject / revert / commit / merge / discard on real repos and worktrees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import git, make_repo
from workbench.core import merge as merge_mod
from workbench.core.diff import compute_diff
from workbench.core.merge import (
    base_branch_of,
    commit_worktree,
    discard_session,
    merge_session,
    reject_hunk,
    revert_file,
)
from workbench.errors import GitError, NotFound, UsageError

LINES = "".join(f"line {i}\n" for i in range(1, 41))


def session(tmp_path: Path, files: dict[str, str] | None = None) -> tuple[Path, Path, str]:
    repo = make_repo(tmp_path / "repo", files or {"a.txt": LINES, "README.md": "# demo\n"})
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "wb/x", str(wt), "HEAD")
    return repo, wt, git(repo, "rev-parse", "HEAD").strip()


def edit(path: Path, replace: dict[int, str]) -> None:
    lines = path.read_text().splitlines(keepends=True)
    for no, text in replace.items():
        lines[no - 1] = text
    path.write_text("".join(lines))


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every file under root (symlinks by target), .git directory contents excluded."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) == root and d == ".git")]
        for name in filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            out[rel] = os.readlink(p) if p.is_symlink() else p.read_bytes()
    return out


def state(repo: Path, wt: Path) -> tuple[object, ...]:
    """Everything a failed merge must leave as it was."""
    return (
        snapshot(repo),
        (repo / ".git" / "index").read_bytes(),
        git(repo, "rev-parse", "HEAD", "refs/heads/main", "refs/heads/wb/x"),
        snapshot(wt),
        (repo / ".git" / "worktrees" / "wt" / "index").read_bytes(),
        git(wt, "status", "--porcelain"),
    )


# --------------------------------------------------------------------------- reject / revert


def test_reject_one_hunk_of_several(tmp_path: Path) -> None:
    repo, wt, base = session(tmp_path)
    edit(wt / "a.txt", {5: "five\n", 20: "twenty\n", 35: "thirty-five\n"})
    index = repo / ".git" / "worktrees" / "wt" / "index"
    before = index.read_bytes()
    hunks = compute_diff(wt, base).files[0].hunks
    after = reject_hunk(wt, base, hunks[1].id)
    text = (wt / "a.txt").read_text()
    assert "five\n" in text and "thirty-five\n" in text
    assert "line 20\n" in text and "twenty" not in text
    assert [h.id for h in after.hunks] == [hunks[0].id, hunks[2].id]
    assert (after.added, after.removed) == (2, 2)
    assert index.read_bytes() == before


def test_reject_keeps_crlf_and_no_newline(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path, {"w.txt": "a\r\nb\r\n" + "x\r\n" * 10 + "c\r\nend"})
    (wt / "w.txt").write_bytes(b"A\r\nb\r\n" + b"x\r\n" * 10 + b"c\r\nEND")
    hunks = compute_diff(wt, base).files[0].hunks
    assert len(hunks) == 2
    reject_hunk(wt, base, hunks[1].id)
    assert (wt / "w.txt").read_bytes() == b"A\r\nb\r\n" + b"x\r\n" * 10 + b"c\r\nend"


def test_reject_added_files_only_hunk_deletes_it(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path)
    (wt / "pkg").mkdir()
    (wt / "pkg" / "new.py").write_text("print(1)\n")
    [f] = compute_diff(wt, base).files
    after = reject_hunk(wt, base, f.hunks[0].id)
    assert not (wt / "pkg").exists()
    assert after.hunks == [] and (after.added, after.removed) == (0, 0)
    assert compute_diff(wt, base).files == []


def test_reject_in_renamed_file_keeps_the_rename(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path)
    git(wt, "mv", "a.txt", "b.txt")
    edit(wt / "b.txt", {3: "three\n", 30: "thirty\n"})
    f = compute_diff(wt, base).files[0]
    assert f.status == "renamed"
    after = reject_hunk(wt, base, f.hunks[0].id)
    assert (after.status, after.old_path, len(after.hunks)) == ("renamed", "a.txt", 1)
    assert "line 3\n" in (wt / "b.txt").read_text()
    assert "thirty\n" in (wt / "b.txt").read_text()


def test_reject_stale_or_unknown_hunk(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path)
    edit(wt / "a.txt", {5: "five\n"})
    stale = compute_diff(wt, base).files[0].hunks[0].id
    edit(wt / "a.txt", {5: "FIVE\n"})
    with pytest.raises(NotFound, match="no longer exists; refresh the diff"):
        reject_hunk(wt, base, stale)
    assert "FIVE" in (wt / "a.txt").read_text()


def test_revert_file_modified_added_deleted_renamed(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path, {"a.txt": LINES, "b.txt": "b\n", "c.txt": LINES.upper()})
    edit(wt / "a.txt", {1: "one\n"})
    (wt / "b.txt").unlink()
    (wt / "d").mkdir()
    (wt / "d" / "new.txt").write_text("n\n")
    git(wt, "mv", "c.txt", "d/c.txt")
    for path in ["a.txt", "b.txt", "d/new.txt", "c.txt"]:  # a rename by its old name
        revert_file(wt, base, path)
    assert compute_diff(wt, base).files == []
    assert (wt / "a.txt").read_text() == LINES and (wt / "b.txt").read_text() == "b\n"
    assert not (wt / "d").exists()
    with pytest.raises(NotFound, match="no changes"):
        revert_file(wt, base, "a.txt")
    with pytest.raises(UsageError, match="relative"):
        revert_file(wt, base, "/etc/passwd")


def test_revert_symlink_and_typechange(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path, {"f.txt": "f\n", "t.txt": "t\n"})
    (wt / "f.txt").unlink()
    (wt / "f.txt").symlink_to("t.txt")
    f = compute_diff(wt, base).files[0]
    assert f.status == "typechange"
    reject_hunk(wt, base, f.hunks[0].id)
    assert not (wt / "f.txt").is_symlink() and (wt / "f.txt").read_text() == "f\n"


# --------------------------------------------------------------------------- commit / discard


def test_commit_worktree_skips_hooks(tmp_path: Path) -> None:
    repo, wt, _ = session(tmp_path)
    marker = tmp_path / "hook-ran"
    for hooks in (repo / ".git" / "hooks", tmp_path / "hooks"):
        hooks.mkdir(exist_ok=True)
        for name in ("pre-commit", "commit-msg", "post-commit"):
            hook = hooks / name
            hook.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
            hook.chmod(0o755)
    assert commit_worktree(wt, "nothing") is None
    (wt / "new.txt").write_text("n\n")
    sha = commit_worktree(wt, "add new")
    assert sha == git(wt, "rev-parse", "HEAD").strip()
    assert git(wt, "log", "-1", "--format=%s").strip() == "add new"
    git(repo, "config", "core.hooksPath", str(tmp_path / "hooks"))
    (wt / "new.txt").write_text("m\n")
    assert commit_worktree(wt, "again") is not None
    assert not marker.exists()
    assert git(wt, "status", "--porcelain") == ""
    with pytest.raises(UsageError, match="message"):
        commit_worktree(wt, "  ")


def test_discard_keeps_ignored_files(tmp_path: Path) -> None:
    _, wt, base = session(tmp_path, {"a.txt": LINES, ".gitignore": ".env\n"})
    (wt / ".env").write_text("KEY=1\n")
    edit(wt / "a.txt", {1: "one\n"})
    git(wt, "commit", "-qam", "agent work")
    (wt / "junk").mkdir()
    (wt / "junk" / "x.txt").write_text("x\n")
    discard_session(wt, base)
    assert git(wt, "rev-parse", "HEAD").strip() == base
    assert git(wt, "status", "--porcelain", "--untracked-files=all") == ""
    assert (wt / ".env").read_text() == "KEY=1\n"
    assert not (wt / "junk").exists()


def test_base_branch_of(tmp_path: Path) -> None:
    repo, _, base = session(tmp_path)
    assert base_branch_of(repo) == "main"
    git(repo, "checkout", "-q", "--detach", base)
    assert base_branch_of(repo) is None
    with pytest.raises(NotFound):
        base_branch_of(tmp_path / "nope")


# --------------------------------------------------------------------------- merge


def test_merge_ff_commits_pending_changes(tmp_path: Path) -> None:
    repo, wt, base = session(tmp_path)
    edit(wt / "a.txt", {1: "one\n"})
    (wt / "new.txt").write_text("n\n")
    res = merge_session(repo, wt, "wb/x", "main", "ff", "session work")
    assert res.strategy == "ff" and res.files_changed == 2
    assert (
        git(repo, "rev-parse", "HEAD").strip() == res.commit == git(wt, "rev-parse", "HEAD").strip()
    )
    assert git(repo, "rev-parse", "HEAD~1").strip() == base
    assert (repo / "new.txt").read_text() == "n\n"
    assert git(repo, "status", "--porcelain") == ""


def test_merge_ff_refuses_when_base_moved(tmp_path: Path) -> None:
    repo, wt, _ = session(tmp_path)
    (repo / "other.txt").write_text("o\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-qm", "moved on")
    edit(wt / "a.txt", {1: "one\n"})
    before = state(repo, wt)
    with pytest.raises(GitError, match="--rebase or --squash"):
        merge_session(repo, wt, "wb/x", "main", "ff", "work")
    assert state(repo, wt) == before


def test_merge_squash_makes_one_commit(tmp_path: Path) -> None:
    repo, wt, _ = session(tmp_path)
    edit(wt / "a.txt", {1: "one\n"})
    git(wt, "commit", "-qam", "first")
    edit(wt / "a.txt", {2: "two\n"})
    git(wt, "commit", "-qam", "second")
    (wt / "pending.txt").write_text("p\n")
    (repo / "other.txt").write_text("o\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-qm", "moved on")
    main_before = git(repo, "rev-parse", "HEAD").strip()
    res = merge_session(repo, wt, "wb/x", "main", "squash", "Squashed work\n\nBody.")
    assert git(repo, "rev-parse", "HEAD").strip() == res.commit
    assert git(repo, "rev-parse", "HEAD~1").strip() == main_before
    assert git(repo, "log", "-1", "--format=%B").strip() == "Squashed work\n\nBody."
    assert res.files_changed == 2
    assert (repo / "a.txt").read_text().startswith("one\ntwo\n")
    assert (repo / "pending.txt").exists() and (repo / "other.txt").exists()
    assert git(repo, "status", "--porcelain") == ""


def test_merge_rebase_onto_moved_base(tmp_path: Path) -> None:
    repo, wt, _ = session(tmp_path)
    edit(wt / "a.txt", {1: "one\n"})
    git(wt, "commit", "-qam", "agent")
    (repo / "other.txt").write_text("o\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-qm", "moved on")
    main_before = git(repo, "rev-parse", "HEAD").strip()
    res = merge_session(repo, wt, "wb/x", "main", "rebase", "work")
    assert git(repo, "rev-parse", "HEAD").strip() == res.commit
    assert git(wt, "rev-parse", "HEAD").strip() == res.commit
    assert git(repo, "rev-parse", "HEAD~1").strip() == main_before
    assert git(repo, "log", "-1", "--format=%s").strip() == "agent"
    assert res.files_changed == 1
    assert (wt / "other.txt").exists()


@pytest.mark.parametrize(
    ("strategy", "merge_tree"), [("squash", True), ("squash", False), ("rebase", True)]
)
def test_merge_conflict_restores_everything(
    tmp_path: Path, strategy: str, merge_tree: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(merge_mod, "_USE_MERGE_TREE", merge_tree)
    repo, wt, _ = session(tmp_path, {"a.txt": LINES, "b.txt": "b\n"})
    edit(wt / "a.txt", {1: "agent one\n"})
    git(wt, "commit", "-qam", "agent commit")
    edit(wt / "a.txt", {10: "agent ten\n"})  # pending, uncommitted
    (wt / "b.txt").write_text("staged\n")
    git(wt, "add", "b.txt")
    (wt / "untracked.txt").write_text("u\n")
    edit(repo / "a.txt", {1: "main one\n"})
    git(repo, "commit", "-qam", "main commit")
    (repo / "mine.txt").write_text("user's untracked file\n")
    before = state(repo, wt)
    with pytest.raises(GitError, match=r"conflicts in: a\.txt; nothing changed"):
        merge_session(repo, wt, "wb/x", "main", strategy, "work")  # type: ignore[arg-type]
    assert state(repo, wt) == before


def test_merge_squash_fallback_without_merge_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(merge_mod, "_USE_MERGE_TREE", False)
    repo, wt, _ = session(tmp_path)
    edit(wt / "a.txt", {1: "one\n"})
    (repo / "other.txt").write_text("o\n")
    git(repo, "add", "other.txt")
    git(repo, "commit", "-qm", "moved on")
    res = merge_session(repo, wt, "wb/x", "main", "squash", "squashed")
    assert git(repo, "log", "-1", "--format=%s").strip() == "squashed"
    assert (repo / "a.txt").read_text().startswith("one\n") and (repo / "other.txt").exists()
    assert res.files_changed == 1
    assert git(wt, "status", "--porcelain") == ""


def test_merge_refuses_dirty_main_checkout(tmp_path: Path) -> None:
    repo, wt, _ = session(tmp_path)
    edit(wt / "a.txt", {1: "one\n"})
    (repo / "README.md").write_text("user edit\n")
    before = state(repo, wt)
    with pytest.raises(GitError, match=r"uncommitted changes \(README\.md\); nothing changed"):
        merge_session(repo, wt, "wb/x", "main", "ff", "work")
    assert state(repo, wt) == before


def test_merge_refuses_main_on_other_branch(tmp_path: Path) -> None:
    repo, wt, _ = session(tmp_path)
    edit(wt / "a.txt", {1: "one\n"})
    git(repo, "switch", "-q", "-c", "feature")
    before = state(repo, wt)
    with pytest.raises(GitError, match="is on branch feature, not main"):
        merge_session(repo, wt, "wb/x", "main", "squash", "work")
    assert state(repo, wt) == before


def test_merge_bad_arguments(tmp_path: Path) -> None:
    repo, wt, _ = session(tmp_path)
    with pytest.raises(UsageError, match="strategy"):
        merge_session(repo, wt, "wb/x", "main", "octopus", "m")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="start with '-'"):
        merge_session(repo, wt, "--upload-pack=x", "main", "ff", "m")
    with pytest.raises(GitError, match="not the session branch other"):
        merge_session(repo, wt, "other", "main", "ff", "m")
    with pytest.raises(GitError, match="nothing to merge"):
        merge_session(repo, wt, "wb/x", "main", "ff", "m")
    other = make_repo(tmp_path / "elsewhere")
    with pytest.raises(GitError, match="does not belong"):
        merge_session(other, wt, "wb/x", "main", "ff", "m")


@pytest.mark.parametrize("strategy", ["ff", "squash", "rebase"])
def test_failed_fast_forward_restores_everything(tmp_path: Path, strategy: str) -> None:
    """The last step fails (an untracked file in the main checkout would be overwritten)."""
    repo, wt, _ = session(tmp_path)
    edit(wt / "a.txt", {1: "one\n"})
    git(wt, "commit", "-qam", "agent")
    (wt / "clash.txt").write_text("from the agent\n")
    if strategy != "ff":
        (repo / "other.txt").write_text("o\n")
        git(repo, "add", "other.txt")
        git(repo, "commit", "-qm", "moved on")
    (repo / "clash.txt").write_text("user's own untracked file\n")
    before = state(repo, wt)
    with pytest.raises(GitError, match=r"clash\.txt"):
        merge_session(repo, wt, "wb/x", "main", strategy, "work")  # type: ignore[arg-type]
    assert state(repo, wt) == before
