"""Inside the sandbox: record the session's work as one commit and hand it out as a pack.

The commit holds the worktree as `git add --all` would see it (commits, staged, unstaged
and untracked files, minus ignored ones), made with a private index so the session's own
index is untouched. Files over `--max-file` bytes are left out and listed, so a 2 GB file
is never read; files git cannot read or store are listed the same way (size -1).
Output on stdout: one JSON line, then (if `"pack": true`) a git pack of the
objects reachable from the tip and not from any `--have` commit. The host verifies the
pack with `git index-pack --strict` before any of it becomes a ref (daemon/session_git.py).

Usage: snapshot --max-file BYTES [--have SHA]... [--have-stdin]
"""

from __future__ import annotations

import os
import sys

from workbench.session_side.gitcmd import Completed, HelperError, fail, git, out, read_all, scratch_path, tail

# Only `os` and `sys` at run time (and gitcmd, the same): this starts on every diff, and
# json, re, shutil, tempfile and subprocess would add ~15 ms to that start.
MAX_SKIPPED_LISTED = 200
# Above this many changed paths, `git add` is given `.` (one walk) rather than each path.
MAX_LISTED_ADD = 100
MAX_STDIN = 1 << 16  # the --have-stdin list
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


def _is_sha(s: str) -> bool:
    return len(s) in (40, 64) and all(c in "0123456789abcdef" for c in s)


def _json_str(s: str) -> str:
    """`s` as a JSON string, ASCII only (lone surrogates from undecodable names as \\udcXX,
    as `json.dumps` writes them)."""
    parts = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            parts.append("\\" + ch)
        elif 0x20 <= o < 0x7F:
            parts.append(ch)
        elif o > 0xFFFF:
            o -= 0x10000
            parts.append(f"\\u{0xD800 | (o >> 10):04x}\\u{0xDC00 | (o & 0x3FF):04x}")
        else:
            parts.append(f"\\u{o:04x}")
    parts.append('"')
    return "".join(parts)


def to_json(value: object) -> str:
    """JSON for the reply's few shapes: dict, list, str, int, bool, None."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return _json_str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(_json_str(k) + ": " + to_json(v) for k, v in value.items()) + "}"
    raise TypeError(f"no JSON for {type(value).__name__}")


def _copy(src: str, dst: str) -> None:
    """Copy a file's bytes and times (as shutil.copy2: git's racy-entry check reads the
    index file's mtime)."""
    st = os.stat(src)
    fd_in = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            while True:
                chunk = os.read(fd_in, 1 << 20)
                if not chunk:
                    break
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd_out, view):]
        finally:
            os.close(fd_out)
    finally:
        os.close(fd_in)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _scratch_dir() -> str:
    path = scratch_path("wb-snap-")
    os.mkdir(path, 0o700)
    return path


def _remove_dir(path: str) -> None:
    """Remove our scratch dir (git leaves only files in it: the index, maybe a lock)."""
    try:
        for name in os.listdir(path):
            try:
                os.unlink(os.path.join(path, name))
            except OSError:
                pass
        os.rmdir(path)
    except OSError:
        pass


def _parse(argv: list[str]) -> tuple[int, list[str]]:
    max_file, have = 50 << 20, []
    it = iter(argv)
    for a in it:
        if a == "--max-file":
            max_file = int(next(it))
        elif a == "--have":
            h = next(it)
            if _is_sha(h):
                have.append(h)
        elif a == "--have-stdin":  # one a line, until EOF (the host looks them up as we start)
            have += [h for h in read_all(0, MAX_STDIN).decode("ascii", "replace").split() if _is_sha(h)]
        else:
            raise HelperError(f"unknown argument {a!r}")
    return max_file, have


def _probe(have: list[str]) -> tuple[str | None, str | None, list[str]]:
    """HEAD, its tree and which `have` commits exist here, from one `cat-file`."""
    queries = ["HEAD^{commit}", "HEAD^{tree}", *(h + "^{commit}" for h in have)]
    raw = git(["cat-file", "--batch-check=%(objectname)"], input="".join(q + "\n" for q in queries).encode()).stdout
    answers = raw.decode("utf-8", "replace").split("\n")
    found = [a if _is_sha(a) else None for a in answers[: len(queries)]]
    found += [None] * (len(queries) - len(found))
    head, head_tree = found[0], found[1]
    if head is None:
        head_tree = None
    return head, head_tree, [h for h, f in zip(have, found[2:], strict=True) if f is not None]


def _status(env: dict[str, str]) -> tuple[list[str], list[str]]:
    """(paths that are not deleted, paths whose worktree side differs from the index).

    Optional locks on: git may write the refreshed stat data into the private index, so
    files touched but unchanged are not read again next time."""
    raw = git(["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"],
              env={**env, "GIT_OPTIONAL_LOCKS": "1"}).stdout
    present, changed = [], []
    for entry in raw.split(b"\0"):
        if len(entry) <= 3:
            continue
        path = entry[3:].decode("utf-8", "surrogateescape")
        if entry[:2] != b" D" and entry[:2] != b"D ":
            present.append(path)
        if entry[1:2] != b" ":
            changed.append(path)
    return present, changed


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


def _index_paths() -> tuple[str, str]:
    """Where the kept index and the session's own index are. In the layout the host made
    (`.git` a directory, no variable moving it) that is `.git/...` without asking git."""
    plain = os.path.isdir(".git") and not os.path.islink(".git") and not any(
        v in os.environ for v in ("GIT_DIR", "GIT_COMMON_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE"))
    if plain:
        return os.path.join(".git", KEPT_INDEX), os.path.join(".git", "index")
    where = out("rev-parse", "--git-path", KEPT_INDEX, "--git-path", "index").split("\n")
    if len(where) != 2 or not all(where):
        raise HelperError("git rev-parse --git-path gave no paths")
    return where[0], where[1]


def _add(specs: list[str], env: dict[str, str]) -> Completed:
    return git(
        ["-c", "core.safecrlf=false", "add", "--all", "--ignore-errors", "--pathspec-from-file=-",
         "--pathspec-file-nul"],
        env=env, input="\0".join(specs).encode("utf-8", "surrogateescape"), check=False,
    )


def _snapshot_tree(head: str | None, max_file: int) -> tuple[str, list[tuple[str, int]]]:
    tmp = _scratch_dir()
    try:
        index = os.path.join(tmp, "index")
        env = {"GIT_INDEX_FILE": index}
        kept, own = _index_paths()
        status = None
        for start in (kept, own):
            if status is not None or not os.path.isfile(start) or os.path.islink(start):
                continue
            # Keeps the stat cache: only files changed since the last snapshot (or the
            # session's last add) are read again. An index git cannot read fails status.
            _copy(start, index)
            try:
                status = _status(env)
            except HelperError:
                pass
        if status is None:
            if os.path.exists(index):
                os.unlink(index)
            if head:
                git(["read-tree", head], env=env)
            status = _status(env)
        present, changed = status
        big = _big_files(present, max_file)
        skip = {p for p, _ in big}
        todo = [p for p in changed if p not in skip]
        whole = ["."] + [":(exclude,literal)" + p for p in skip]
        specs = whole if len(todo) > MAX_LISTED_ADD else [":(literal)" + p for p in todo]
        if specs:
            added = _add(specs, env)
            if added.returncode != 0 and specs[0] != ".":
                # A listed path git refuses as a whole (one beyond a symlink that replaced
                # its directory): `add --all .` reaches the same state without naming it.
                added = _add(whole, env)
            if added.returncode != 0:
                # Files git could not read or store are not in the snapshot: say which, so
                # the diff names them and a merge refuses, rather than showing them as
                # unchanged (or as their last snapshot).
                left = set(_status(env)[1]) - skip
                if not left:
                    raise HelperError(f"git add failed: {tail(added.stderr)}")
                big += [(p, UNREADABLE) for p in sorted(left)]
        tree = out("write-tree", env=env)
        try:
            _copy(index, kept + ".tmp")
            os.replace(kept + ".tmp", kept)
        except OSError:  # only a cache: strict mode may not have it
            pass
        return tree, big
    finally:
        _remove_dir(tmp)


def main(argv: list[str]) -> int:
    try:
        max_file, have = _parse(argv)
        head, head_tree, present = _probe(have)
        tree, big = _snapshot_tree(head, max_file)
        if head and head_tree == tree:
            tip = head
        else:
            parents = ["-p", head] if head else []
            tip = out("commit-tree", tree, *parents, "-m", "workbench snapshot", env=_IDENT)
        meta = {
            "tip": tip, "head": head, "tree": tree, "pack": tip not in have,
            "skipped": [[p, n] for p, n in big[:MAX_SKIPPED_LISTED]], "skipped_count": len(big),
        }
        sys.stdout.buffer.write(to_json(meta).encode() + b"\n")
        sys.stdout.buffer.flush()
        if not meta["pack"]:
            return 0
        # Each have's tree too: our commits all carry the date 0, and git's date-ordered
        # walk stops before it reaches (and excludes) the last snapshot's tree, which
        # sent every file of it again on each diff.
        revs = tip + "\n" + "".join(f"^{h}\n^{h}^{{tree}}\n" for h in present)
        proc = git(["pack-objects", "--stdout", "--revs", "--delta-base-offset", "-q"],
                   input=revs.encode(), check=False, stdout_fd=1)
        if proc.returncode != 0:
            return fail(f"git pack-objects failed: {proc.stderr.decode('utf-8', 'replace')[-500:]}")
        return 0
    except HelperError as e:
        return fail(str(e))
    except (OSError, ValueError, StopIteration) as e:
        return fail(f"snapshot failed: {e}")
