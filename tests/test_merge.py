"""core.merge and the worktree-edit helper on real session repositories.

Sessions live in private repositories (core/session_repo.py); their work reaches the
user's repository only as an imported snapshot, which `merge_snapshot` lands on main.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import git, make_repo
from tests.session_git_fixtures import LocalSession
from workbench.core import merge as merge_mod
from workbench.core import review as rv
from workbench.core.merge import Strategy, base_branch_of, merge_snapshot
from workbench.errors import GitError, NotFound, UsageError

LINES = "".join(f"line {i}\n" for i in range(1, 41))


def session(tmp_path: Path, files: dict[str, str] | None = None) -> LocalSession:
    return LocalSession.make(tmp_path, files or {"a.txt": LINES, "README.md": "# demo\n"})


def edit(path: Path, replace: dict[int, str]) -> None:
    lines = path.read_text().splitlines(keepends=True)
    for no, text in replace.items():
        lines[no - 1] = text
    path.write_text("".join(lines))


def files_of(root: Path) -> dict[str, bytes | str]:
    """Every file under root (symlinks by target), the .git directory excluded."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) == root and d == ".git")]
        for name in filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = os.readlink(p) if p.is_symlink() else p.read_bytes()
    return out


def state(ls: LocalSession) -> tuple[object, ...]:
    """Everything a failed merge must leave as it was."""
    return (
        files_of(ls.repo),
        (ls.repo / ".git" / "index").read_bytes(),
        git(ls.repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"),
        git(ls.repo, "rev-parse", "HEAD"),
        files_of(ls.wt),
        git(ls.wt, "status", "--porcelain"),
    )


def merge(ls: LocalSession, strategy: str, message: str = "work") -> merge_mod.MergeResult:
    snap = ls.snapshot()
    return merge_snapshot(ls.repo, ls.base, snap.tip, snap.head, "main", strategy, message)  # type: ignore[arg-type]


def move_main(ls: LocalSession, name: str = "other.txt") -> str:
    (ls.repo / name).write_text("o\n")
    git(ls.repo, "add", name)
    git(ls.repo, "commit", "-qm", "moved on")
    return git(ls.repo, "rev-parse", "HEAD").strip()


# --------------------------------------------------------------------------- reject / revert


def reject(ls: LocalSession, hunk: str) -> None:
    ls.review(rv.reject, rv.ReviewState(ls.session.id), hunk, "")


def test_reject_one_hunk_of_several(tmp_path: Path) -> None:
    ls = session(tmp_path)
    edit(ls.wt / "a.txt", {5: "five\n", 20: "twenty\n", 35: "thirty-five\n"})
    index = ls.wt / ".git" / "index"
    before = index.read_bytes()
    hunks = ls.diff().files[0].hunks
    reject(ls, hunks[1].id)
    text = (ls.wt / "a.txt").read_text()
    assert "five\n" in text and "thirty-five\n" in text
    assert "line 20\n" in text and "twenty" not in text
    after = ls.diff().files[0]
    assert [h.id for h in after.hunks] == [hunks[0].id, hunks[2].id]
    assert (after.added, after.removed) == (2, 2)
    assert index.read_bytes() == before


def test_reject_keeps_crlf_and_no_newline(tmp_path: Path) -> None:
    ls = session(tmp_path, {"w.txt": "a\r\nb\r\n" + "x\r\n" * 10 + "c\r\nend"})
    (ls.wt / "w.txt").write_bytes(b"A\r\nb\r\n" + b"x\r\n" * 10 + b"c\r\nEND")
    hunks = ls.diff().files[0].hunks
    assert len(hunks) == 2
    reject(ls, hunks[1].id)
    assert (ls.wt / "w.txt").read_bytes() == b"A\r\nb\r\n" + b"x\r\n" * 10 + b"c\r\nend"


def test_reject_added_files_only_hunk_deletes_it(tmp_path: Path) -> None:
    ls = session(tmp_path)
    (ls.wt / "pkg").mkdir()
    (ls.wt / "pkg" / "new.py").write_text("print(1)\n")
    [f] = ls.diff().files
    reject(ls, f.hunks[0].id)
    assert not (ls.wt / "pkg").exists()
    assert ls.diff().files == []


def test_reject_in_renamed_file_keeps_the_rename(tmp_path: Path) -> None:
    ls = session(tmp_path)
    git(ls.wt, "mv", "a.txt", "b.txt")
    edit(ls.wt / "b.txt", {3: "three\n", 30: "thirty\n"})
    f = ls.diff().files[0]
    assert f.status == "renamed"
    reject(ls, f.hunks[0].id)
    after = ls.diff().files[0]
    assert (after.status, after.old_path, len(after.hunks)) == ("renamed", "a.txt", 1)
    assert "line 3\n" in (ls.wt / "b.txt").read_text()
    assert "thirty\n" in (ls.wt / "b.txt").read_text()


def test_reject_stale_or_unknown_hunk(tmp_path: Path) -> None:
    ls = session(tmp_path)
    edit(ls.wt / "a.txt", {5: "five\n"})
    stale = ls.diff().files[0].hunks[0].id
    edit(ls.wt / "a.txt", {5: "FIVE\n"})
    with pytest.raises(NotFound, match="no longer exists; refresh the diff"):
        reject(ls, stale)
    assert "FIVE" in (ls.wt / "a.txt").read_text()


def test_revert_file_modified_added_deleted_renamed(tmp_path: Path) -> None:
    ls = session(tmp_path, {"a.txt": LINES, "b.txt": "b\n", "c.txt": LINES.upper()})
    wt = ls.wt
    edit(wt / "a.txt", {1: "one\n"})
    (wt / "b.txt").unlink()
    (wt / "d").mkdir()
    (wt / "d" / "new.txt").write_text("n\n")
    git(wt, "mv", "c.txt", "d/c.txt")
    st = rv.ReviewState(ls.session.id)
    for path in ["a.txt", "b.txt", "d/new.txt", "c.txt"]:  # a rename by its old name
        ls.review(rv.revert_file, st, path, "")
    assert ls.diff().files == []
    assert (wt / "a.txt").read_text() == LINES and (wt / "b.txt").read_text() == "b\n"
    assert not (wt / "d").exists()
    with pytest.raises(NotFound, match="no changes"):
        ls.review(rv.revert_file, st, "a.txt", "")
    with pytest.raises(UsageError, match="relative"):
        ls.review(rv.revert_file, st, "/etc/passwd", "")


def test_revert_symlink_and_typechange(tmp_path: Path) -> None:
    ls = session(tmp_path, {"f.txt": "f\n", "t.txt": "t\n"})
    (ls.wt / "f.txt").unlink()
    (ls.wt / "f.txt").symlink_to("t.txt")
    f = ls.diff().files[0]
    assert f.status == "typechange"
    reject(ls, f.hunks[0].id)
    assert not (ls.wt / "f.txt").is_symlink() and (ls.wt / "f.txt").read_text() == "f\n"


# --------------------------------------------------------------------------- merge


def test_base_branch_of(tmp_path: Path) -> None:
    ls = session(tmp_path)
    assert base_branch_of(ls.repo) == "main"
    git(ls.repo, "checkout", "-q", "--detach", ls.base)
    assert base_branch_of(ls.repo) is None
    with pytest.raises(NotFound):
        base_branch_of(tmp_path / "nope")


def test_merge_ff_commits_pending_changes(tmp_path: Path) -> None:
    ls = session(tmp_path)
    edit(ls.wt / "a.txt", {1: "one\n"})
    (ls.wt / "new.txt").write_text("n\n")
    res = merge(ls, "ff", "session work")
    assert res.strategy == "ff" and res.files_changed == 2
    assert git(ls.repo, "rev-parse", "HEAD").strip() == res.commit
    assert git(ls.repo, "rev-parse", "HEAD~1").strip() == ls.base
    assert git(ls.repo, "log", "-1", "--format=%s").strip() == "session work"
    assert (ls.repo / "new.txt").read_text() == "n\n"
    assert git(ls.repo, "status", "--porcelain") == ""


def test_merge_ff_keeps_the_sessions_own_commits(tmp_path: Path) -> None:
    ls = session(tmp_path)
    edit(ls.wt / "a.txt", {1: "one\n"})
    git(ls.wt, "commit", "-qam", "agent commit")
    agent = git(ls.wt, "rev-parse", "HEAD").strip()
    res = merge(ls, "ff")
    assert res.commit == agent == git(ls.repo, "rev-parse", "main").strip()


def test_merge_ff_refuses_when_base_moved(tmp_path: Path) -> None:
    ls = session(tmp_path)
    move_main(ls)
    edit(ls.wt / "a.txt", {1: "one\n"})
    snap = ls.snapshot()
    before = state(ls)
    with pytest.raises(GitError, match="--rebase or --squash"):
        merge_snapshot(ls.repo, ls.base, snap.tip, snap.head, "main", "ff", "work")
    assert state(ls) == before


def test_merge_squash_makes_one_commit(tmp_path: Path) -> None:
    ls = session(tmp_path)
    edit(ls.wt / "a.txt", {1: "one\n"})
    git(ls.wt, "commit", "-qam", "first")
    edit(ls.wt / "a.txt", {2: "two\n"})
    git(ls.wt, "commit", "-qam", "second")
    (ls.wt / "pending.txt").write_text("p\n")
    main_before = move_main(ls)
    res = merge(ls, "squash", "Squashed work\n\nBody.")
    assert git(ls.repo, "rev-parse", "HEAD").strip() == res.commit
    assert git(ls.repo, "rev-parse", "HEAD~1").strip() == main_before
    assert git(ls.repo, "log", "-1", "--format=%B").strip() == "Squashed work\n\nBody."
    assert res.files_changed == 2
    assert (ls.repo / "a.txt").read_text().startswith("one\ntwo\n")
    assert (ls.repo / "pending.txt").exists() and (ls.repo / "other.txt").exists()
    assert git(ls.repo, "status", "--porcelain") == ""


def test_merge_rebase_onto_moved_base(tmp_path: Path) -> None:
    ls = session(tmp_path)
    edit(ls.wt / "a.txt", {1: "one\n"})
    git(ls.wt, "commit", "-qam", "agent")
    main_before = move_main(ls)
    res = merge(ls, "rebase")
    assert git(ls.repo, "rev-parse", "HEAD").strip() == res.commit
    assert git(ls.repo, "rev-parse", "HEAD~1").strip() == main_before
    assert git(ls.repo, "log", "-1", "--format=%s").strip() == "agent"
    assert res.files_changed == 1
    assert not [w for w in git(ls.repo, "worktree", "list", "--porcelain").split("\n\n") if "wb-merge-" in w]


@pytest.mark.parametrize(
    ("strategy", "merge_tree"), [("squash", True), ("squash", False), ("rebase", True)]
)
def test_merge_conflict_restores_everything(
    tmp_path: Path, strategy: str, merge_tree: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(merge_mod, "_USE_MERGE_TREE", merge_tree)
    ls = session(tmp_path, {"a.txt": LINES, "b.txt": "b\n"})
    edit(ls.wt / "a.txt", {1: "agent one\n"})
    git(ls.wt, "commit", "-qam", "agent commit")
    edit(ls.wt / "a.txt", {10: "agent ten\n"})  # pending, uncommitted
    (ls.wt / "b.txt").write_text("staged\n")
    git(ls.wt, "add", "b.txt")
    (ls.wt / "untracked.txt").write_text("u\n")
    edit(ls.repo / "a.txt", {1: "main one\n"})
    git(ls.repo, "commit", "-qam", "main commit")
    (ls.repo / "mine.txt").write_text("user's untracked file\n")
    snap = ls.snapshot()
    before = state(ls)
    with pytest.raises(GitError, match=r"conflicts in: a\.txt; nothing changed"):
        merge_snapshot(ls.repo, ls.base, snap.tip, snap.head, "main", strategy, "work")  # type: ignore[arg-type]
    assert state(ls) == before


def test_merge_squash_fallback_without_merge_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(merge_mod, "_USE_MERGE_TREE", False)
    ls = session(tmp_path)
    edit(ls.wt / "a.txt", {1: "one\n"})
    move_main(ls)
    res = merge(ls, "squash", "squashed")
    assert git(ls.repo, "log", "-1", "--format=%s").strip() == "squashed"
    assert (ls.repo / "a.txt").read_text().startswith("one\n") and (ls.repo / "other.txt").exists()
    assert res.files_changed == 1


def test_merge_refuses_dirty_main_checkout(tmp_path: Path) -> None:
    ls = session(tmp_path)
    edit(ls.wt / "a.txt", {1: "one\n"})
    (ls.repo / "README.md").write_text("user edit\n")
    snap = ls.snapshot()
    before = state(ls)
    with pytest.raises(GitError, match=r"uncommitted changes \(README\.md\); nothing changed"):
        merge_snapshot(ls.repo, ls.base, snap.tip, snap.head, "main", "ff", "work")
    assert state(ls) == before


def test_merge_refuses_main_on_other_branch(tmp_path: Path) -> None:
    ls = session(tmp_path)
    edit(ls.wt / "a.txt", {1: "one\n"})
    git(ls.repo, "switch", "-q", "-c", "feature")
    snap = ls.snapshot()
    before = state(ls)
    with pytest.raises(GitError, match="is on branch feature, not main"):
        merge_snapshot(ls.repo, ls.base, snap.tip, snap.head, "main", "squash", "work")
    assert state(ls) == before


def test_merge_bad_arguments(tmp_path: Path) -> None:
    ls = session(tmp_path)
    snap = ls.snapshot()
    with pytest.raises(UsageError, match="strategy"):
        merge_snapshot(ls.repo, ls.base, snap.tip, snap.head, "main", "octopus", "m")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="start with '-'"):
        merge_snapshot(ls.repo, ls.base, snap.tip, snap.head, "--upload-pack=x", "ff", "m")
    with pytest.raises(UsageError, match="message"):
        merge_snapshot(ls.repo, ls.base, snap.tip, snap.head, "main", "ff", "  ")
    with pytest.raises(GitError, match="nothing to merge"):
        merge_snapshot(ls.repo, ls.base, snap.tip, snap.head, "main", "ff", "m")
    other = make_repo(tmp_path / "elsewhere")
    with pytest.raises(GitError):
        merge_snapshot(other, ls.base, snap.tip, snap.head, "main", "ff", "m")
    assert git(other, "log", "--format=%s").strip() == "initial"


@pytest.mark.parametrize("strategy", ["ff", "squash", "rebase"])
def test_failed_fast_forward_restores_everything(tmp_path: Path, strategy: Strategy) -> None:
    """The last step fails (an untracked file in the main checkout would be overwritten)."""
    ls = session(tmp_path)
    edit(ls.wt / "a.txt", {1: "one\n"})
    git(ls.wt, "commit", "-qam", "agent")
    (ls.wt / "clash.txt").write_text("from the agent\n")
    if strategy != "ff":
        move_main(ls)
    (ls.repo / "clash.txt").write_text("user's own untracked file\n")
    snap = ls.snapshot()
    before = state(ls)
    with pytest.raises(GitError, match=r"clash\.txt"):
        merge_snapshot(ls.repo, ls.base, snap.tip, snap.head, "main", strategy, "work")
    assert state(ls) == before


def test_squash_lands_the_reviewed_change_whatever_history_the_session_wrote(tmp_path: Path) -> None:
    """A session that rewrites its history onto an unrelated root cannot make a squash
    revert main's newer work: the change merged is base -> the snapshot's tree."""
    ls = session(tmp_path)
    main_before = move_main(ls)
    git(ls.wt, "checkout", "-q", "--orphan", "rewritten")
    edit(ls.wt / "a.txt", {1: "one\n"})
    git(ls.wt, "add", "-A")
    git(ls.wt, "commit", "-qm", "fabricated root")
    snap = ls.snapshot()
    for strategy in ("ff", "rebase"):
        with pytest.raises(GitError, match="--squash"):
            merge_snapshot(ls.repo, ls.base, snap.tip, snap.head, "main", strategy, "m")  # type: ignore[arg-type]
    assert git(ls.repo, "rev-parse", "main").strip() == main_before
    res = merge_snapshot(ls.repo, ls.base, snap.tip, snap.head, "main", "squash", "squashed")
    assert git(ls.repo, "rev-parse", "HEAD~1").strip() == main_before
    assert (ls.repo / "other.txt").exists() and (ls.repo / "a.txt").read_text().startswith("one\n")
    assert res.files_changed == 1
