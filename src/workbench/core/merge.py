"""Landing a session's work on the user's branch: ff, squash or rebase.

Works only on objects imported into the user's repository (core/session_repo.py), with
hooks and fsmonitor disabled (see `git_runner.SAFE_GIT`); never in the session's own repository.
A merge either completes or leaves the main checkout and its branch exactly as they were.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from workbench.core import review_noise
from workbench.core.git_runner import check_ref, git_out, run_git, stderr_text
from workbench.errors import GitError, NotFound, UsageError

Strategy = Literal["ff", "squash", "rebase"]
STRATEGIES: tuple[Strategy, ...] = ("ff", "squash", "rebase")

# `git merge-tree --write-tree` (git >= 2.38) merges without any checkout; older git
# falls back to a merge in a scratch worktree of the user's repository.
_USE_MERGE_TREE = True


@dataclass(frozen=True)
class MergeResult:
    commit: str
    strategy: Strategy
    files_changed: int
    # The snapshot as merged (its review noise taken out), when that differs from it: the
    # session's worktree follows the merge from there, so the noise stays in its files.
    merged_snapshot: str | None = None


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


def landing_commit(repo: Path, tip: str, head: str | None, message: str, tree: str | None = None) -> str:
    """The commit that carries the session's work: its own commits as they are, and its
    uncommitted rest (the snapshot commit on top of `head`) as one commit with `message`.
    `tree` (tip's without its review noise, `clean_tree`) is what that commit holds; noise
    the session committed is taken out by that same commit."""
    tip_tree = git_out(repo, "rev-parse", f"{tip}^{{tree}}")
    tree = tree or tip_tree
    if tip == head and tree == tip_tree:
        return tip
    if head and tree == git_out(repo, "rev-parse", f"{head}^{{tree}}"):
        return head  # only noise on top of the session's commits
    if not message or not message.strip():
        raise UsageError("a commit message is required")
    parents = ["-p", head] if head else []
    return git_out(repo, "commit-tree", tree, *parents, "-m", message)


def clean_tree(repo: Path, base: str, tip: str, ignore: Sequence[str]) -> tuple[str, list[str]]:
    """`tip`'s tree without the review noise it adds to `base` (core/review_noise.py, the
    same rule the diff lists them apart by), and the paths left out."""
    tree = git_out(repo, "rev-parse", f"{tip}^{{tree}}")
    if not ignore:  # nothing is noise: no need to list what the session added
        return tree, []
    noise = sorted(review_noise.split(repo, base, review_noise.added_between(repo, base, tip), ignore))
    if not noise:
        return tree, []
    with tempfile.TemporaryDirectory(prefix="wb-merge-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run_git(repo, ["read-tree", tree], env=env)
        names = b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in noise)
        run_git(repo, ["update-index", "--force-remove", "-z", "--stdin"], env=env, input=names)
        return run_git(repo, ["write-tree"], env=env).stdout.decode().strip(), noise


def merge_snapshot(
    repo: Path, base: str, tip: str, head: str | None, base_branch: str, strategy: Strategy, message: str,
    ignore: Sequence[str] = (),
) -> MergeResult:
    """Land the session's imported work (`tip`, on top of the session's `head`; the session
    started at `base`) on `base_branch`, checked out in the main checkout `repo`.

    Runs only on verified objects of the user's repository: ff fast-forwards; squash makes
    one commit with `message`; rebase replays the session's commits in a temporary worktree
    the workbench owns. Any failure leaves `base_branch` and the main checkout as they were.
    Squash merges the reviewed change (base -> tip's tree) whatever history the session
    wrote; ff and rebase keep the session's commits, so they need `base` in that history.
    Files the session added that match `ignore` (review noise) never land.
    """
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown merge strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if not message or not message.strip():
        raise UsageError("a merge message is required")
    _check_branch(base_branch, "base branch")
    main = _toplevel(repo)
    on = _current_branch(main)
    if on != base_branch:
        raise GitError(
            f"the main checkout {main} is on {_branch_desc(on)}, not {base_branch}; nothing changed",
            hint=f"run `git -C {main} switch {base_branch}` and merge again",
        )
    dirty = _dirty_files(main)
    if dirty:
        shown = ", ".join(dirty[:10]) + (f" and {len(dirty) - 10} more" if len(dirty) > 10 else "")
        raise GitError(
            f"the main checkout {main} has uncommitted changes ({shown}); nothing changed",
            hint="commit or stash them, then merge again",
        )
    tree, noise = clean_tree(main, base, tip, ignore)
    if strategy == "squash":
        work = git_out(main, "commit-tree", tree, "-p", base, "-m", message)
    else:
        work = landing_commit(main, tip, head, message, tree)
        if not _is_ancestor(main, base, work):
            raise GitError(
                "the session's history does not start at its base commit (it was rewritten)",
                hint="merge with --squash, which lands the reviewed change as one commit",
            )
    base_tip = git_out(main, "rev-parse", "--verify", f"refs/heads/{base_branch}")
    if _is_ancestor(main, work, base_tip):
        raise GitError(f"nothing to merge: the session has no changes that are not in {base_branch}")
    if strategy == "ff":
        if not _is_ancestor(main, base_tip, work):
            raise GitError(
                f"{base_branch} has moved on since the session started; a fast-forward is not possible",
                hint="merge with --rebase or --squash",
            )
        new = work
    elif strategy == "squash":
        tree = _merged_tree(main, base_tip, work)
        if tree == git_out(main, "rev-parse", f"{base_tip}^{{tree}}"):
            raise GitError(f"nothing to merge: {base_branch} already has the session's changes")
        new = git_out(main, "commit-tree", tree, "-p", base_tip, "-m", message)
    else:
        new = work if _is_ancestor(main, base_tip, work) else _rebased(main, base_tip, work)
    proc = run_git(main, ["merge", "--ff-only", "--quiet", new], check=False)
    if proc.returncode != 0:
        raise GitError(f"could not fast-forward {base_branch} in {main}: {stderr_text(proc)}")
    changed = run_git(main, ["diff", "--name-only", "-z", base_tip, new, "--"]).stdout
    merged_snapshot = git_out(main, "commit-tree", tree, "-p", tip, "-m", "workbench: without review noise") \
        if noise else None
    return MergeResult(new, strategy, len([p for p in changed.split(b"\0") if p]), merged_snapshot)


@contextlib.contextmanager
def _scratch_worktree(main: Path, commit: str) -> Iterator[Path]:
    """A detached worktree of the user's repository that only the workbench writes."""
    tmp = Path(tempfile.mkdtemp(prefix="wb-merge-"))
    path = tmp / "wt"
    try:
        run_git(main, ["worktree", "add", "--quiet", "--detach", "--", str(path), commit])
        yield path
    finally:
        run_git(main, ["worktree", "remove", "--force", "--force", "--", str(path)], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        run_git(main, ["worktree", "prune"], check=False)


def _merged_tree(main: Path, base_tip: str, tip: str) -> str:
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
    # Old git: merge in a scratch worktree of our own and take the tree.
    with _scratch_worktree(main, base_tip) as wt:
        proc = run_git(wt, ["merge", "--squash", "--quiet", tip], env={"GIT_MERGE_AUTOEDIT": "no"}, check=False)
        if proc.returncode != 0:
            raise _conflict(_unmerged(wt), "squash", stderr_text(proc))
        return git_out(wt, "write-tree")


def _rebased(main: Path, onto: str, tip: str) -> str:
    with _scratch_worktree(main, tip) as wt:
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
        return git_out(wt, "rev-parse", "HEAD")


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
