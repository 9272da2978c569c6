"""The worktree (tracked + untracked, minus ignored) against a session's base commit.

Used on the host only for checkouts whose .git the session cannot write (an in-place
session's main checkout, read-only in strict mode); a session's private repository is
diffed from its imported snapshot instead (core/tree_diff.py).

The diff is computed through a throw-away copy of the worktree's index so the agent's
real index is never written: untracked files are added to the copy as intent-to-add
(`git add -N -A`, which hashes nothing into the object store) and `git diff <base>` then
compares the working tree with the base tree; core/diff_parse.py reads the output.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from workbench.core import review_noise
from workbench.core.diff_model import Diff
from workbench.core.diff_parse import parse_unified
from workbench.core.git_paths import check_path
from workbench.core.git_runner import ADD_OPTS, DIFF_FLAGS, check_ref, git_out, run_git, stderr_text
from workbench.errors import GitError, NotFound, UsageError


def compute_diff(
    worktree: Path, base: str, *, context: int = 3, paths: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
) -> Diff:
    """The worktree (tracked + untracked, minus ignored) against `base`; `paths` limits it;
    added files matching `ignore` go to `Diff.ignored` (core/review_noise.py)."""
    if not isinstance(context, int) or isinstance(context, bool) or not 0 <= context <= 10_000:
        raise UsageError(f"invalid context {context!r}: use a number of lines from 0 up")
    top = worktree_root(worktree)
    sha = resolve_commit(top, base)
    out = _diff_against(top, sha, ["-M", f"-U{context}"], paths)
    files = parse_unified(out.decode("utf-8", "surrogateescape"))
    found = review_noise.split(top, sha, [f.path for f in files if f.status == "added"], ignore)
    diff = Diff(base=sha, files=[f for f in files if f.path not in found] if found else files,
                digest=hashlib.sha1(out).hexdigest())
    diff.ignored, diff.ignored_count, diff.ignored_where = sorted(found), len(found), review_noise.groups(found)
    return diff


def _diff_against(top: Path, sha: str, opts: Sequence[str], paths: Sequence[str] | None) -> bytes:
    index = Path(git_out(top, "rev-parse", "--path-format=absolute", "--git-path", "index"))
    with tempfile.TemporaryDirectory(prefix="wb-diff-") as tmp:
        tmp_index = Path(tmp) / "index"
        if index.is_file():
            # A copy keeps the stat cache, so only files changed since the agent's last
            # `git add` are re-read. copy2 keeps the index's mtime too: git's racy-clean
            # check compares entries against it, and a fresh mtime would make an edit made
            # in the same clock tick as the checkout look unchanged.
            shutil.copy2(index, tmp_index)
        env = {"GIT_INDEX_FILE": str(tmp_index)}
        if not tmp_index.exists():
            run_git(top, ["read-tree", "HEAD"], env=env)
        # --ignore-errors: one unaddable path (an empty nested repo, an unreadable file)
        # should not hide the rest of the diff.
        add = [*ADD_OPTS, "add", "--intent-to-add", "--all", "--ignore-errors", "--", "."]
        proc = run_git(top, add, env=env, check=False)
        if proc.returncode != 0 and b"fatal:" in proc.stderr:
            raise GitError(f"git add failed in {top}: {stderr_text(proc)}")
        args = [*ADD_OPTS, "diff", *DIFF_FLAGS, *opts, sha, "--"]
        if paths:
            env["GIT_LITERAL_PATHSPECS"] = "1"
            args += [check_path(p) for p in paths]
        return run_git(top, args, env=env).stdout


def resolve_commit(cwd: Path, ref: str, what: str = "base") -> str:
    """The commit `ref` names in the repository at `cwd`, as a full sha; `what` names it in errors."""
    check_ref(ref, what)
    proc = run_git(
        cwd,
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
        check=False,
    )
    if proc.returncode != 0:
        raise NotFound(
            f"{what} {ref!r} is not a commit in {cwd}", hint="check the session's base commit"
        )
    return proc.stdout.decode().strip()


def worktree_root(path: Path) -> Path:
    """Top level of the checkout at `path`, refusing a `.git` file that points inside it.

    A session's `.git` file is in the agent's reach; a gitdir inside the worktree would be
    one the agent wrote, with its own config (filters, drivers) run by the daemon.
    """
    path = Path(path)
    if not path.is_dir():
        raise NotFound(f"worktree {path} does not exist")
    # Checked before git runs at all: even rev-parse would read that directory's config.
    _check_git_file(path.resolve())
    proc = run_git(path, ["rev-parse", "--show-toplevel", "--absolute-git-dir"], check=False)
    if proc.returncode != 0:
        raise GitError(f"{path} is not a git checkout: {stderr_text(proc)}")
    top_s, gitdir_s = proc.stdout.decode("utf-8", "surrogateescape").splitlines()[:2]
    top, gitdir = Path(top_s).resolve(), Path(gitdir_s).resolve()
    if (top / ".git").is_file() and gitdir.is_relative_to(top):
        _refuse_gitdir(top, gitdir)
    return top


def _check_git_file(top: Path) -> None:
    try:
        text = (top / ".git").read_text("utf-8", "replace") if (top / ".git").is_file() else ""
    except OSError:
        return
    if text.startswith("gitdir:"):
        gitdir = (top / text[7:].strip()).resolve()
        if gitdir.is_relative_to(top):
            _refuse_gitdir(top, gitdir)


def _refuse_gitdir(top: Path, gitdir: Path) -> None:
    raise GitError(
        f"{top}/.git points at a git directory inside the worktree ({gitdir})",
        hint="the worktree's .git file was rewritten; recreate the session",
    )

