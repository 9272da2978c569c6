"""A session's private git repository, and importing its work into the user's repository.

Layout (docs/architecture.md, "Session repositories"): the session's worktree holds a
repository of its own at `<worktree>/.git`, its objects shared read-only with the user's
repository through `objects/info/alternates`. The host creates it before the sandbox
first starts and never runs git in it again: everything in it is the session's to write.
The session's work reaches the user's repository only as a pack that `git index-pack
--strict` verified, under `refs/workbench/<session id>/` (`base` pins the base commit,
`snapshot` the last imported state).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from workbench.core.background import niced
from workbench.core.git_runner import SAFE_GIT, git_env, git_out, run_git, stderr_text
from workbench.core.worktree import branch_exists, validate_ref
from workbench.errors import GitError, UsageError, WorkbenchError

REF_ROOT = "refs/workbench"
SHA_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
MAX_META = 1 << 20
# Below this many objects a pack is unpacked into loose objects (as `git fetch` does), so
# a long session does not leave hundreds of tiny packs behind.
UNPACK_LIMIT = 100


@dataclass(frozen=True)
class Snapshot:
    """The session's work as imported: `tip` is a verified commit in the user's repo."""

    tip: str
    tree: str
    head: str | None
    skipped: list[tuple[str, int]] = field(default_factory=list)
    skipped_count: int = 0


def ref(session_id: str, name: str) -> str:
    if not re.fullmatch(r"[0-9a-z-]{1,64}", session_id):
        raise WorkbenchError(f"invalid session id {session_id!r}")
    return f"{REF_ROOT}/{session_id}/{name}"


def common_dir(repo: Path) -> Path:
    return Path(git_out(repo, "rev-parse", "--path-format=absolute", "--git-common-dir")).resolve()


def create(repo: Path, dest: Path, session_id: str, branch: str, base: str) -> None:
    """A private repository at `dest/.git` with `branch` at `base` checked out.

    Runs before any sandbox exists, so `dest` holds only what this function writes. The
    branch name is kept free in the user's repository too, for `rm --keep-branch`.
    """
    validate_ref(branch)
    if branch_exists(repo, branch):
        raise UsageError(
            f"branch {branch} already exists in {repo}",
            hint="pick another --name, or delete the branch with `git branch -D`",
        )
    checkout(repo, dest, branch, base)
    try:
        run_git(repo, ["update-ref", ref(session_id, "base"), base])
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def checkout(repo: Path, dest: Path, branch: str, base: str) -> None:
    """A repository at `dest/.git` sharing `repo`'s objects, `branch` at `base` checked out;
    nothing in `repo` changes (a scratch checkout needs no more than this)."""
    if dest.exists():
        raise GitError(f"worktree path already exists: {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    objects = common_dir(repo) / "objects"
    try:
        dest.mkdir(mode=0o755)
        run_git(dest, ["init", "--quiet", "--template=", "--initial-branch", branch])
        (dest / ".git" / "objects" / "info").mkdir(parents=True, exist_ok=True)
        (dest / ".git" / "objects" / "info" / "alternates").write_text(f"{objects}\n")
        for key, value in (("gc.auto", "0"), ("maintenance.auto", "false")):
            run_git(dest, ["config", key, value])
        run_git(dest, ["update-ref", f"refs/heads/{branch}", base])
        run_git(dest, ["reset", "--quiet", "--hard", base])
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def is_private(worktree: Path) -> bool:
    """Whether `worktree` has the private-repository layout (a `.git` directory).

    Sessions made by workbench 0.1 have a `.git` file into the user's repository instead.
    """
    git = worktree / ".git"
    return git.is_dir() and not git.is_symlink()


def remove(repo: Path, worktree: Path, session_id: str) -> None:
    """Delete the worktree and the session's refs in the user's repository."""
    if worktree.exists() or worktree.is_symlink():
        if worktree.is_symlink():
            worktree.unlink()
        else:
            for _ in range(3):  # a process of the session may still be writing as it dies
                shutil.rmtree(worktree, ignore_errors=True)
                if not worktree.exists():
                    break
                time.sleep(0.2)
    if repo.is_dir():
        for name in list_refs(repo, session_id):
            run_git(repo, ["update-ref", "-d", name], check=False)


def list_refs(repo: Path, session_id: str) -> list[str]:
    out = run_git(repo, ["for-each-ref", "--format=%(refname)", f"{REF_ROOT}/{session_id}/"], check=False)
    return [ln for ln in out.stdout.decode("utf-8", "replace").splitlines() if ln]


def resolve(repo: Path, name: str) -> str | None:
    proc = run_git(repo, ["rev-parse", "--verify", "--quiet", name + "^{commit}"], check=False)
    sha = proc.stdout.decode().strip()
    return sha if proc.returncode == 0 and SHA_RE.match(sha) else None


# --------------------------------------------------------------------------- import


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    """A session-side helper's JSON reply, which must be one object (its fields are checked
    by the caller)."""
    try:
        obj = json.loads(raw)
    except ValueError:
        raise GitError(f"the session's {what} sent a malformed reply") from None
    if not isinstance(obj, dict):
        raise GitError(f"the session's {what} sent a malformed reply")
    return obj


def parse_meta(line: bytes) -> tuple[Snapshot, bool]:
    """The snapshot helper's first line, checked field by field (it is session output)."""
    meta = json_object(line, "snapshot helper")
    for key in ("tip", "tree"):
        if not isinstance(meta.get(key), str) or not SHA_RE.match(meta[key]):
            raise GitError(f"the session's snapshot helper sent an invalid {key}")
    head = meta.get("head")
    if head is not None and (not isinstance(head, str) or not SHA_RE.match(head)):
        raise GitError("the session's snapshot helper sent an invalid head")
    skipped = meta.get("skipped")
    if not isinstance(skipped, list) or not all(
        isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], int)
        for x in skipped
    ):
        raise GitError("the session's snapshot helper sent an invalid file list")
    if not isinstance(meta.get("pack"), bool) or not isinstance(meta.get("skipped_count"), int):
        raise GitError("the session's snapshot helper sent a malformed reply")
    snap = Snapshot(tip=meta["tip"], tree=meta["tree"], head=head,
                    skipped=[(p, n) for p, n in skipped], skipped_count=meta["skipped_count"])
    return snap, meta["pack"]


def import_pack(repo: Path, pack: IO[bytes], objects: int) -> None:
    """Verify and store a pack in the user's repository (`--strict`: git's fsck checks)."""
    cmd = ["unpack-objects", "--strict", "-q"] if objects < UNPACK_LIMIT else ["index-pack", "--stdin", "--strict"]
    proc = subprocess.run(
        niced(["git", "-c", "core.hooksPath=/dev/null", *cmd]),  # a snapshot: background work
        cwd=repo, stdin=pack, capture_output=True, env=git_env(), check=False,
    )
    if proc.returncode != 0:
        raise GitError(f"the session's work failed git's checks and was not imported: {stderr_text(proc)}")


def pack_object_count(header: bytes) -> int:
    if len(header) < 12 or header[:4] != b"PACK" or int.from_bytes(header[4:8], "big") not in (2, 3):
        raise GitError("the session's snapshot helper sent something that is not a git pack")
    return int.from_bytes(header[8:12], "big")


def check_connected(repo: Path, tip: str, known: list[str]) -> None:
    """Every object the tip needs is present (the pack may not leave holes behind)."""
    args = ["rev-list", "--objects", "--quiet", tip, "--not", *known]
    proc = run_git(repo, args, check=False, background=True)  # walks the new objects
    if proc.returncode != 0:
        raise GitError(f"the session's work is incomplete and was not imported: {stderr_text(proc)}")


def check_imported(repo: Path, snap: Snapshot, known: list[str]) -> None:
    """`check_connected`, and that `head` (the session's HEAD, the parent a landing commit
    gets) is the tip itself or the tip's parent, never some other commit the session names:
    the two gits side by side (the parent is read from the commit the strict import just
    verified)."""
    if snap.head is None or snap.head == snap.tip:
        check_connected(repo, snap.tip, known)
        return
    parent = subprocess.Popen(  # background work, as check_connected's walk
        niced(["git", *SAFE_GIT, "rev-parse", "--verify", "--quiet", f"{snap.tip}^1"]), cwd=repo, env=git_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        check_connected(repo, snap.tip, known)
        out, _ = parent.communicate()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    if parent.returncode != 0 or out.decode().strip() != snap.head:
        raise GitError("the session's snapshot helper sent a head that is not the snapshot's parent")


def set_ref(repo: Path, name: str, sha: str) -> None:
    run_git(repo, ["update-ref", name, sha])


# --------------------------------------------------------------------------- reading objects


def tree_entry(repo: Path, commit: str, path: str) -> tuple[str, str] | None:
    """(mode, blob id) of `path` in `commit`, or None when absent."""
    out = run_git(repo, ["ls-tree", "-z", commit, "--", path], env={"GIT_LITERAL_PATHSPECS": "1"}).stdout
    for entry in out.split(b"\0"):
        if not entry:
            continue
        meta, _, name = entry.partition(b"\t")
        mode, kind, sha = meta.decode().split()
        if name.decode("utf-8", "surrogateescape") == path and kind == "blob":
            return mode, sha
    return None


def cat_blob(repo: Path, sha: str) -> bytes:
    return run_git(repo, ["cat-file", "blob", sha]).stdout




class SnapshotTree:
    """Read files of an imported commit (a `core.review.TreeReader`)."""

    def __init__(self, repo: Path, commit: str) -> None:
        self.repo = repo
        self.commit = commit

    def entry(self, path: str) -> tuple[str, str] | None:
        return tree_entry(self.repo, self.commit, path)

    def blob(self, sha: str) -> bytes:
        return cat_blob(self.repo, sha)
