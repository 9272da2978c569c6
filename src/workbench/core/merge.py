"""Review actions on a session's worktree: reject a hunk, revert a file, commit, merge, discard.

Everything runs from the daemon, outside any sandbox, with hooks and fsmonitor disabled
(see `diff.SAFE_GIT`). A merge either completes or leaves the main checkout, the
worktree files, its index and the session branch exactly as they were.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from workbench.core.diff import (
    ADD_OPTS,
    Diff,
    FileDiff,
    Hunk,
    check_path,
    check_ref,
    compute_diff,
    git_out,
    quote_header_path,
    quote_path,
    resolve_commit,
    run_git,
    stderr_text,
    worktree_root,
)
from workbench.errors import GitError, NotFound, UsageError

Strategy = Literal["ff", "squash", "rebase"]
STRATEGIES: tuple[Strategy, ...] = ("ff", "squash", "rebase")

# `git merge-tree --write-tree` (git >= 2.38) merges without touching any checkout; older
# git falls back to a merge inside the session worktree that is aborted afterwards.
_USE_MERGE_TREE = True


@dataclass(frozen=True)
class MergeResult:
    commit: str
    strategy: Strategy
    files_changed: int


# --------------------------------------------------------------------------- hunks and files


def reject_hunk(
    worktree: Path, base: str, hunk_id: str, *, context: int = 3, diff: Diff | None = None
) -> FileDiff:
    """Reverse one hunk in the worktree files (never the index); the file's other hunks stay.

    `context` must be the one the hunk was shown with, since it decides how hunks group.
    `diff` may be a just-computed diff of the worktree (with that context) to look it up in.
    Returns the file's diff afterwards; no hunks and zero counts if it now matches base.
    """
    top = worktree_root(worktree)
    if diff is None:
        diff = compute_diff(top, base, context=context)
    f, h = diff.find_hunk(hunk_id)
    if f.status in ("added", "deleted", "typechange") or f.binary or f.is_symlink:
        # The only hunk of a created or deleted file is the whole file.
        _revert(top, diff.base, f)
    else:
        path = f.path
        patch = hunk_patch(f, h)
        args = ["apply", "-R", "--whitespace=nowarn", "--recount"]
        if context == 0:
            args.append("--unidiff-zero")
        proc = run_git(top, args, input=patch.encode("utf-8", "surrogateescape"), check=False)
        if proc.returncode != 0:
            raise GitError(
                f"could not reverse hunk {hunk_id} in {path}: {stderr_text(proc)}",
                hint="the file changed while rejecting; refresh the diff",
            )
    paths = [f.path] + ([f.old_path] if f.old_path else [])
    after = compute_diff(top, diff.base, context=context, paths=paths)
    for g in after.files:
        if g.path == f.path:
            return g
    return FileDiff(f.path, None, "modified", False, 0, 0, [])


def hunk_patch(f: FileDiff, h: Hunk) -> str:
    """A `git apply`-able patch of one hunk of a modified file."""
    path = f.path
    return (
        f"diff --git {quote_path('a/' + path)} {quote_path('b/' + path)}\n"
        f"--- {quote_header_path('a/' + path)}\n+++ {quote_header_path('b/' + path)}\n"
        + h.render()
    )


def apply_hunk(worktree: Path, patch: str, *, context: int = 3) -> None:
    """Apply a `hunk_patch` forward to the worktree files (undoing a rejection)."""
    top = worktree_root(worktree)
    args = ["apply", "--whitespace=nowarn", "--recount"]
    if context == 0:
        args.append("--unidiff-zero")
    proc = run_git(top, args, input=patch.encode("utf-8", "surrogateescape"), check=False)
    if proc.returncode != 0:
        raise GitError(
            f"could not re-apply the hunk: {stderr_text(proc)}",
            hint="the file changed since the rejection; edit it by hand",
        )


def revert_file(worktree: Path, base: str, path: str) -> None:
    """Put `path` back as it is in base: an added file is deleted, a deleted one restored.

    `path` may be either side of a rename; both sides are reverted.
    """
    check_path(path)
    top = worktree_root(worktree)
    diff: Diff = compute_diff(top, base)
    _revert(top, diff.base, diff.file(path))


def _revert(top: Path, base_sha: str, f: FileDiff) -> None:
    for path in dict.fromkeys([f.path] + ([f.old_path] if f.old_path else [])):
        in_base = (
            run_git(top, ["cat-file", "-e", f"{base_sha}:{path}"], check=False).returncode == 0
        )
        target = top / path
        if in_base:
            # A type change (link <-> file) must start from an empty path.
            relink = f.status == "typechange" or f.is_symlink
            if relink and (target.is_symlink() or target.is_file()):
                target.unlink()
            run_git(
                top,
                ["restore", "--source", base_sha, "--worktree", "--", path],
                env={"GIT_LITERAL_PATHSPECS": "1"},
            )
        elif target.is_symlink() or target.exists():
            if not target.parent.resolve().is_relative_to(top):
                raise GitError(f"refusing to delete {path}: it lies outside the worktree")
            target.unlink()
            _prune_empty_dirs(top, target.parent)


def _prune_empty_dirs(top: Path, d: Path) -> None:
    while d != top and d.is_relative_to(top):
        try:
            d.rmdir()
        except OSError:
            return
        d = d.parent


# --------------------------------------------------------------------------- commit / discard


def commit_worktree(worktree: Path, message: str) -> str | None:
    """Commit everything pending (untracked included, ignored not) on the worktree's branch.

    Returns the new commit, or None when there was nothing to commit.
    """
    if not message or not message.strip():
        raise UsageError("a commit message is required")
    top = worktree_root(worktree)
    run_git(top, [*ADD_OPTS, "add", "--all", "--", "."])
    if run_git(top, ["diff", "--cached", "--quiet"], check=False).returncode == 0:
        return None
    proc = run_git(top, ["commit", "--no-verify", "--quiet", "-m", message], check=False)
    if proc.returncode != 0:
        err = stderr_text(proc)
        hint = "set git config user.name and user.email" if "identity" in err else None
        raise GitError(f"could not commit in {top}: {err}", hint=hint)
    return git_out(top, "rev-parse", "HEAD")


def discard_session(worktree: Path, base: str) -> None:
    """Reset the worktree and its branch to base; ignored files (.env, builds) are kept."""
    top = worktree_root(worktree)
    sha = resolve_commit(top, base)
    run_git(top, ["reset", "--quiet", "--hard", sha])
    run_git(top, ["clean", "-f", "-d", "--quiet"])


def base_branch_of(repo: Path) -> str | None:
    """The branch checked out at `repo`, or None when HEAD is detached."""
    repo = Path(repo)
    if not repo.is_dir():
        raise NotFound(f"repository {repo} does not exist")
    proc = run_git(repo, ["symbolic-ref", "--quiet", "--short", "HEAD"], check=False)
    if proc.returncode == 0:
        return proc.stdout.decode("utf-8", "surrogateescape").strip()
    if proc.returncode == 1:
        return None
    raise GitError(f"{repo} is not a git repository: {stderr_text(proc)}")


# --------------------------------------------------------------------------- merge


def merge_session(
    repo: Path,
    worktree: Path,
    branch: str,
    base_branch: str,
    strategy: Strategy,
    message: str,
) -> MergeResult:
    """Land the session branch on `base_branch`, checked out in the main checkout `repo`.

    Pending worktree changes are committed first (with `message`). ff: fast-forward only;
    squash: one commit with `message`; rebase: the branch is rebased onto base in the
    worktree, then fast-forwarded. Any failure puts everything back and raises GitError.
    """
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown merge strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if not message or not message.strip():
        raise UsageError("a merge message is required")
    _check_branch(branch, "session branch")
    _check_branch(base_branch, "base branch")
    main = _toplevel(repo)
    wt = worktree_root(worktree)
    if main == wt:
        raise UsageError(f"{wt} is the main checkout, not a session worktree; nothing to merge")
    if _common_dir(main) != _common_dir(wt):
        raise GitError(f"worktree {wt} does not belong to the repository at {main}")
    on = _current_branch(wt)
    if on != branch:
        raise GitError(f"worktree {wt} is on {_branch_desc(on)}, not the session branch {branch}")
    on = _current_branch(main)
    if on != base_branch:
        raise GitError(
            f"the main checkout {main} is on {_branch_desc(on)}, not {base_branch}; "
            "nothing changed",
            hint=f"run `git -C {main} switch {base_branch}` and merge again",
        )
    dirty = _dirty_files(main)
    if dirty:
        shown = ", ".join(dirty[:10]) + (f" and {len(dirty) - 10} more" if len(dirty) > 10 else "")
        raise GitError(
            f"the main checkout {main} has uncommitted changes ({shown}); nothing changed",
            hint="commit or stash them, then merge again",
        )

    saved = _WorktreeState.save(wt)
    try:
        saved.pending = commit_worktree(wt, message) is not None
        tip = git_out(wt, "rev-parse", "HEAD")
        saved.tip = tip
        base_tip = git_out(main, "rev-parse", "--verify", f"refs/heads/{base_branch}")
        if _is_ancestor(main, tip, base_tip):
            raise GitError(
                f"nothing to merge: {branch} has no changes that are not in {base_branch}"
            )
        if strategy == "ff":
            if not _is_ancestor(main, base_tip, tip):
                raise GitError(
                    f"{base_branch} has moved on since the session started; "
                    "a fast-forward is not possible",
                    hint="merge with --rebase or --squash",
                )
            new = tip
        elif strategy == "squash":
            tree = _merged_tree(main, wt, base_tip, tip)
            if tree == git_out(main, "rev-parse", f"{base_tip}^{{tree}}"):
                raise GitError(f"nothing to merge: {base_branch} already has {branch}'s changes")
            new = git_out(main, "commit-tree", tree, "-p", base_tip, "-m", message)
        else:
            if not _is_ancestor(wt, base_tip, tip):
                _rebase(wt, base_tip)
            new = git_out(wt, "rev-parse", "HEAD")
        proc = run_git(main, ["merge", "--ff-only", "--quiet", new], check=False)
        if proc.returncode != 0:
            raise GitError(f"could not fast-forward {base_branch} in {main}: {stderr_text(proc)}")
    except BaseException:
        saved.restore(wt)
        raise
    changed = run_git(main, ["diff", "--name-only", "-z", base_tip, new, "--"]).stdout
    return MergeResult(new, strategy, len([p for p in changed.split(b"\0") if p]))


@dataclass
class _WorktreeState:
    """What a failed merge must put back: the branch tip and the worktree's index bytes."""

    head: str
    index_path: Path
    index: bytes | None
    tip: str | None = None
    pending: bool = False

    @classmethod
    def save(cls, wt: Path) -> _WorktreeState:
        index_path = Path(git_out(wt, "rev-parse", "--path-format=absolute", "--git-path", "index"))
        index = index_path.read_bytes() if index_path.is_file() else None
        return cls(git_out(wt, "rev-parse", "HEAD"), index_path, index)

    def restore(self, wt: Path) -> None:
        for state in ("rebase-merge", "rebase-apply"):
            if Path(
                git_out(wt, "rev-parse", "--path-format=absolute", "--git-path", state)
            ).exists():
                run_git(wt, ["rebase", "--abort"], check=False)
        if self.tip is not None and git_out(wt, "rev-parse", "HEAD") != self.tip:
            run_git(wt, ["reset", "--quiet", "--hard", self.tip])
        if self.pending:
            # The commit held exactly the worktree's files; dropping it with --soft leaves
            # them untouched, and the saved index restores what the agent had staged.
            run_git(wt, ["reset", "--quiet", "--soft", self.head])
        # `git add -A` rewrote the index even if nothing was committed.
        self._write_index()

    def _write_index(self) -> None:
        if self.index is None:
            self.index_path.unlink(missing_ok=True)
            return
        fd, tmp = tempfile.mkstemp(dir=self.index_path.parent, prefix="index.wb-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(self.index)
        os.replace(tmp, self.index_path)


def _merged_tree(main: Path, wt: Path, base_tip: str, tip: str) -> str:
    global _USE_MERGE_TREE
    if _USE_MERGE_TREE:
        proc = run_git(
            main,
            ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", base_tip, tip],
            check=False,
        )
        if proc.returncode == 0:
            return proc.stdout.split(b"\0", 1)[0].decode().strip()
        if proc.returncode == 1:
            names = [n.decode("utf-8", "replace") for n in proc.stdout.split(b"\0")[1:] if n]
            raise _conflict(list(dict.fromkeys(names)), "squash")
        if b"write-tree" not in proc.stderr and b"usage" not in proc.stderr:
            raise GitError(f"git merge-tree failed: {stderr_text(proc)}")
        _USE_MERGE_TREE = False
    # Old git: a 3-way merge gives the same tree in either direction, so merge base into
    # the (clean, just committed) session branch, take the tree, and abort.
    proc = run_git(
        wt,
        ["merge", "--no-commit", "--no-ff", "--no-edit", "--quiet", base_tip],
        env={"GIT_MERGE_AUTOEDIT": "no"},
        check=False,
    )
    try:
        if proc.returncode != 0:
            raise _conflict(_unmerged(wt), "squash", stderr_text(proc))
        return git_out(wt, "write-tree")
    finally:
        run_git(wt, ["merge", "--abort"], check=False)
        run_git(wt, ["reset", "--quiet", "--hard", "HEAD"], check=False)


def _rebase(wt: Path, onto: str) -> None:
    proc = run_git(
        wt,
        [
            "-c", "rebase.autoStash=false",
            "-c", "rebase.autoSquash=false",
            "-c", "rebase.updateRefs=false",
            "rebase", "--quiet", onto,
        ],
        check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        names = _unmerged(wt)
        run_git(wt, ["rebase", "--abort"], check=False)
        raise _conflict(names, "rebase", stderr_text(proc))


def _unmerged(wt: Path) -> list[str]:
    out = run_git(wt, ["diff", "--name-only", "--diff-filter=U", "-z"], check=False).stdout
    return list(dict.fromkeys(n.decode("utf-8", "replace") for n in out.split(b"\0") if n))


def _conflict(names: list[str], what: str, detail: str = "") -> GitError:
    if names:
        return GitError(
            f"{what} stopped on conflicts in: {', '.join(names)}; nothing changed",
            hint="ask the agent to rebase onto the base branch and resolve them, or merge by hand",
        )
    return GitError(f"{what} failed: {detail or 'unknown error'}; nothing changed")


# --------------------------------------------------------------------------- small git queries


def _check_branch(name: str, what: str) -> None:
    check_ref(name, what)
    if name.startswith("refs/") or " " in name or ".." in name or name.endswith((".lock", "/")):
        raise UsageError(f"invalid {what} {name!r}: give a plain branch name")


def _toplevel(repo: Path) -> Path:
    repo = Path(repo)
    if not repo.is_dir():
        raise NotFound(f"repository {repo} does not exist")
    proc = run_git(repo, ["rev-parse", "--show-toplevel"], check=False)
    if proc.returncode != 0:
        raise GitError(f"{repo} is not a git checkout: {stderr_text(proc)}")
    return Path(proc.stdout.decode("utf-8", "surrogateescape").strip()).resolve()


def _common_dir(top: Path) -> Path:
    return Path(git_out(top, "rev-parse", "--path-format=absolute", "--git-common-dir")).resolve()


def _current_branch(top: Path) -> str | None:
    proc = run_git(top, ["symbolic-ref", "--quiet", "HEAD"], check=False)
    ref = proc.stdout.decode("utf-8", "surrogateescape").strip()
    return ref.removeprefix("refs/heads/") if proc.returncode == 0 else None


def _branch_desc(name: str | None) -> str:
    return f"branch {name}" if name else "a detached HEAD"


def _dirty_files(top: Path) -> list[str]:
    out = run_git(top, ["status", "--porcelain=v1", "-z", "--untracked-files=no"]).stdout
    names: list[str] = []
    entries = out.split(b"\0")
    i = 0
    while i < len(entries):
        entry = entries[i]
        i += 1
        if len(entry) < 4:
            continue
        names.append(entry[3:].decode("utf-8", "replace"))
        if entry[:1] in (b"R", b"C"):  # a rename's source follows as its own field
            i += 1
    return names


def _is_ancestor(cwd: Path, a: str, b: str) -> bool:
    proc = run_git(cwd, ["merge-base", "--is-ancestor", a, b], check=False)
    if proc.returncode not in (0, 1):
        raise GitError(f"git merge-base failed: {stderr_text(proc)}")
    return proc.returncode == 0
