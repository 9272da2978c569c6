"""The user's repository as sessions start from it: discovery, base refs, names, copied
files (GitPython over the git CLI). The session's own repository is core/session_repo.py.

Every ref and path that comes from a user is validated before it reaches git, and git
options are always separated from data with `--` where git allows it.
"""

from __future__ import annotations

import os
import re
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import git

from workbench.core import safe_fs
from workbench.errors import GitError, UsageError

BRANCH_PREFIX = "wb/"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,62}$")
# Hardened git invocation: never run repo-configured hooks or fsmonitor from the daemon.
SAFE_GIT = ["-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"]


@dataclass(frozen=True)
class RepoInfo:
    root: Path
    head_commit: str
    head_branch: str | None  # None when HEAD is detached
    dirty: list[str]


def validate_name(name: str) -> str:
    """A session name: shown everywhere and turned into a branch, so keep it plain."""
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise UsageError("session name contains control characters")
    if "/" in name or ".." in name or name.startswith("-"):
        raise UsageError(
            f"invalid session name {name!r}: no '/', '..' or leading '-'",
            hint="use letters, digits, '.', '_', '-' and spaces",
        )
    if not _NAME_RE.match(name):
        raise UsageError(
            f"invalid session name {name!r}",
            hint="1-63 characters: letters, digits, '.', '_', '-' and spaces, starting with a letter or digit",
        )
    return name


def slugify(name: str) -> str:
    norm = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", norm.lower()).strip("-")
    # Never end in '-': the sandbox treats `wb/<slug>--<name>` as the session's own branches.
    return slug[:48].rstrip("-") or "session"


def validate_ref(ref: str) -> str:
    if not ref or ref.startswith("-"):
        raise UsageError(f"invalid ref {ref!r}: a ref may not be empty or start with '-'")
    if any(ord(c) < 32 or ord(c) == 127 for c in ref) or "\\" in ref:
        raise UsageError(f"invalid ref {ref!r}: contains control characters")
    return ref


def _run(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["git", *SAFE_GIT, *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
    )
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise GitError(
            f"git {args[0]} failed: {msg[-1] if msg else 'exit ' + str(proc.returncode)}"
        )
    return proc


def inspect_repo(path: Path) -> RepoInfo:
    """Validate that `path` is a usable repo and describe its main checkout."""
    path = Path(path).expanduser()
    if not path.is_absolute():
        # The daemon's working directory is wherever it happened to be started: a relative
        # path from a socket client would name some other repository.
        raise UsageError(
            f"repo path must be absolute: {str(path)!r}",
            hint="the CLI resolves --repo for you; other clients must send an absolute path",
        )
    if not path.exists():
        raise UsageError(f"repo path does not exist: {path}")
    if not path.is_dir():
        raise UsageError(f"repo path is not a directory: {path}")
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except git.InvalidGitRepositoryError:
        raise UsageError(
            f"not a git repository: {path}", hint="run `git init` there or pass --repo PATH"
        ) from None
    except git.NoSuchPathError:
        raise UsageError(f"repo path does not exist: {path}") from None
    try:
        if repo.bare or repo.working_tree_dir is None:
            raise UsageError(f"{path} is a bare repository; sessions need a checkout")
        root = Path(repo.working_tree_dir).resolve()
        try:
            head = repo.head.commit.hexsha
        except ValueError:
            raise UsageError(
                f"the repository at {root} has no commits yet",
                hint="make a first commit, e.g. `git commit --allow-empty -m init`",
            ) from None
        branch = None if repo.head.is_detached else repo.active_branch.name
    finally:
        # GitPython keeps `git cat-file --batch-check` running until the Repo is closed.
        repo.close()
    status = _run(root, "status", "--porcelain", "-z", "--untracked-files=no").stdout
    dirty = [e[3:] for e in status.split("\0") if len(e) > 3]
    return RepoInfo(root=root, head_commit=head, head_branch=branch, dirty=dirty)


def resolve_base(root: Path, ref: str | None) -> tuple[str, str]:
    """(commit sha, ref name as given) for the base of a new session."""
    if ref is None:
        info = inspect_repo(root)
        return info.head_commit, info.head_branch or info.head_commit
    validate_ref(ref)
    proc = _run(
        root, "rev-parse", "--verify", "--quiet", "--end-of-options", ref + "^{commit}", check=False
    )
    if proc.returncode != 0:
        raise UsageError(f"base ref {ref!r} does not exist in {root}", hint="check `git branch -a`")
    return proc.stdout.strip(), ref


def branch_exists(root: Path, branch: str) -> bool:
    proc = _run(root, "show-ref", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
    return proc.returncode == 0


def is_dotenv(name: str) -> bool:
    """`.env`, `.env.local`, `config/.env.prod`: what `hide_dotenv` hides in the sandbox."""
    return any(part.startswith(".env") for part in Path(name).parts)


def copy_files(root: Path, dest: Path, names: list[str], *, skip_dotenv: bool = False) -> list[str]:
    """Copy listed untracked files from the main checkout; never from outside it.

    The worktree comes from the repository's tree, which may hold symlinks: targets are
    written through `safe_fs`, so a committed `.env -> ~/.bashrc` link is replaced, not
    followed. `skip_dotenv` leaves out `.env*` (the sandbox hides them: copying would
    hand the secrets back).
    """
    copied = []
    root = root.resolve()
    for name in names:
        if skip_dotenv and is_dotenv(name):
            continue
        src = (root / name).resolve()
        if not src.is_relative_to(root) or not src.is_file():
            continue
        try:
            if safe_fs.copy_file_in(src, dest, name):
                copied.append(name)
        except safe_fs.UnsafePathError:
            continue
    return copied


def prune(root: Path) -> None:
    if root.is_dir():
        _run(root, "worktree", "prune", check=False)


def disk_usage(path: Path) -> int:
    """Bytes used by the files under `path` (not following symlinks)."""
    total = 0
    stack = [path]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(Path(e.path))
                        else:
                            total += e.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
        except OSError:
            continue
    return total
