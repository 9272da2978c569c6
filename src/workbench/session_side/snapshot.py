"""Inside the sandbox: record the session's work as one commit and hand it out as a pack.

The commit holds the worktree as `git add --all` would see it (commits, staged, unstaged
and untracked files, minus ignored ones), made with a private index so the session's own
index is untouched. Files over `--max-file` bytes are left out and listed, so a 2 GB file
is never read; files git cannot read or store are listed the same way (size -1).
Output on stdout: one JSON line, then (if `"pack": true`) a git pack of the
objects reachable from the tip and not from any `--have` commit. The host verifies the
pack with `git index-pack --strict` before any of it becomes a ref (daemon/session_git.py).

Usage: snapshot --max-file BYTES [--have SHA]...
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from workbench.session_side.gitcmd import HelperError, fail, git, out, tail

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
MAX_SKIPPED_LISTED = 200
# The last snapshot's index, kept in the session's .git as a stat cache: the session may
# change it, which can only change what it shows for review (and so what can be merged).
KEPT_INDEX = "workbench-snapshot-index"
UNREADABLE = -1  # in "skipped", instead of a size: the file could not be read or stored
# Deterministic: the same tree on the same parent gives the same commit, so an unchanged
# worktree is recognised by its sha and nothing is sent again.
_IDENT = {
    "GIT_AUTHOR_NAME": "workbench", "GIT_AUTHOR_EMAIL": "workbench@localhost",
    "GIT_COMMITTER_NAME": "workbench", "GIT_COMMITTER_EMAIL": "workbench@localhost",
    "GIT_AUTHOR_DATE": "@0 +0000", "GIT_COMMITTER_DATE": "@0 +0000",
}


def _parse(argv: list[str]) -> tuple[int, list[str]]:
    max_file, have = 50 << 20, []
    it = iter(argv)
    for a in it:
        if a == "--max-file":
            max_file = int(next(it))
        elif a == "--have":
            h = next(it)
            if _SHA.match(h):
                have.append(h)
        else:
            raise HelperError(f"unknown argument {a!r}")
    return max_file, have


def _head() -> str | None:
    proc = git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], check=False)
    sha = proc.stdout.decode().strip()
    return sha if proc.returncode == 0 and _SHA.match(sha) else None


def _status_paths(env: dict[str, str]) -> list[str]:
    raw = git(["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"], env=env).stdout
    paths = []
    for entry in raw.split(b"\0"):
        if len(entry) > 3 and entry[:2] != b" D" and entry[:2] != b"D ":
            paths.append(entry[3:].decode("utf-8", "surrogateescape"))
    return paths


def _big_files(paths: list[str], max_file: int) -> list[tuple[str, int]]:
    big = []
    for p in paths:
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if st.st_size > max_file and not os.path.islink(p):
            big.append((p, st.st_size))
    return big


def _snapshot_tree(head: str | None, max_file: int) -> tuple[str, list[tuple[str, int]]]:
    tmp = tempfile.mkdtemp(prefix="wb-snap-")
    try:
        index = os.path.join(tmp, "index")
        env = {"GIT_INDEX_FILE": index}
        kept = out("rev-parse", "--git-path", KEPT_INDEX)
        copied = False
        for start in (kept, out("rev-parse", "--git-path", "index")):
            if copied or not os.path.isfile(start) or os.path.islink(start):
                continue
            # Keeps the stat cache: only files changed since the last snapshot (or the
            # session's last add) are read again.
            shutil.copy2(start, index)
            copied = git(["ls-files", "--stage", "--", "nonexistent-probe"], env=env, check=False).returncode == 0
        if not copied:
            if os.path.exists(index):
                os.unlink(index)
            if head:
                git(["read-tree", head], env=env)
        big = _big_files(_status_paths(env), max_file)
        specs = ["."] + [":(exclude,literal)" + p for p, _ in big]
        added = git(
            ["-c", "core.safecrlf=false", "add", "--all", "--ignore-errors",
             "--pathspec-from-file=-", "--pathspec-file-nul"],
            env=env, input="\0".join(specs).encode("utf-8", "surrogateescape"), check=False,
        )
        if added.returncode != 0:
            # Files git could not read or store are not in the snapshot: say which, so the
            # diff names them and a merge refuses, rather than showing them as unchanged.
            left = set(_status_paths(env)) - {p for p, _ in big}
            if not left:
                raise HelperError(f"git add failed: {tail(added.stderr)}")
            big += [(p, UNREADABLE) for p in sorted(left)]
        tree = out("write-tree", env=env)
        with contextlib.suppress(OSError):  # only a cache: strict mode may not have it
            shutil.copy2(index, kept + ".tmp")
            os.replace(kept + ".tmp", kept)
        return tree, big
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _present(sha: str) -> bool:
    return git(["cat-file", "-e", sha + "^{commit}"], check=False).returncode == 0


def main(argv: list[str]) -> int:
    try:
        max_file, have = _parse(argv)
        head = _head()
        tree, big = _snapshot_tree(head, max_file)
        if head and out("rev-parse", head + "^{tree}") == tree:
            tip = head
        else:
            parents = ["-p", head] if head else []
            tip = out("commit-tree", tree, *parents, "-m", "workbench snapshot", env=_IDENT)
        meta = {
            "tip": tip, "head": head, "tree": tree, "pack": tip not in have,
            "skipped": [[p, n] for p, n in big[:MAX_SKIPPED_LISTED]], "skipped_count": len(big),
        }
        sys.stdout.buffer.write(json.dumps(meta).encode() + b"\n")
        sys.stdout.buffer.flush()
        if not meta["pack"]:
            return 0
        revs = tip + "\n" + "".join(f"^{h}\n" for h in have if _present(h))
        proc = subprocess.run(
            ["git", "pack-objects", "--stdout", "--revs", "--delta-base-offset", "-q"],
            input=revs.encode(), stdout=sys.stdout.buffer, stderr=subprocess.PIPE, check=False,
        )
        if proc.returncode != 0:
            return fail(f"git pack-objects failed: {proc.stderr.decode('utf-8', 'replace')[-500:]}")
        return 0
    except HelperError as e:
        return fail(str(e))
    except (OSError, ValueError, StopIteration) as e:
        return fail(f"snapshot failed: {e}")
