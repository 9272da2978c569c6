"""Diffs between two commits of the user's repository, bounded in time and memory.

A session's work is compared as imported, verified objects (core/session_repo.py): the
base commit against the snapshot commit, both in the user's repository. Huge changes are
summarised instead of read whole: past MAX_FULL_FILES changed files, or for a file with
more than BIG_FILE_LINES changed lines, only git's line counts are kept; past
MAX_LISTED_FILES files the rest is counted, not listed. So 200k changed files or a
multi-gigabyte text file cost a few megabytes, not gigabytes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import IO

from workbench.core import review_noise
from workbench.core.background import niced
from workbench.core.diff_model import Diff, FileDiff, FileStatus
from workbench.core.diff_parse import parse_unified
from workbench.core.git_paths import check_path
from workbench.core.git_runner import ADD_OPTS, DIFF_FLAGS, SAFE_GIT, git_env
from workbench.errors import GitError, UsageError

MAX_FULL_FILES = 5000
MAX_LISTED_FILES = 10_000
BIG_FILE_LINES = 50_000
MAX_DIFF_TEXT = 16 << 20
NUMSTAT_BATCH = 1000
_READ_CHUNK = 64 << 10  # a pipe's whole buffer; below glibc's mmap threshold
MAX_UPDATE_PATHS = 200  # a diff updated path by path (update_tree_diff) past this: computed whole
_STATUS: dict[str, FileStatus] = {
    "A": "added", "M": "modified", "D": "deleted", "R": "renamed", "C": "copied", "T": "typechange",
}


_COMMON = [*ADD_OPTS, "diff", "--no-ext-diff", "--no-textconv", "-M", "-z"]
_RawEntry = tuple[str, str, str, str | None, str]


class _Listing:
    """Changed files from git's `-z` output, streamed: the first MAX_LISTED_FILES are kept
    as FileDiffs with line counts, the rest only counted, so neither memory nor time grows
    with the size of the change."""

    def __init__(self) -> None:
        self.files: list[FileDiff] = []
        self.total = 0
        self.ignored: dict[str, review_noise.Match] = {}  # review noise, neither listed nor counted


def _fields(repo: Path, args: list[str], env: dict[str, str] | None) -> Generator[bytes, None, None]:
    """NUL-separated fields of a git command's output, read in chunks."""
    cmd = niced(["git", *SAFE_GIT, *args])
    with subprocess.Popen(cmd, cwd=repo, env=git_env(env), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        rest = b""
        for chunk in iter(lambda: proc.stdout.read(1 << 16), b""):  # type: ignore[union-attr]
            parts = (rest + chunk).split(b"\0")
            rest = parts.pop()
            yield from parts
        err = proc.stderr.read()
        if proc.wait() != 0:
            raise GitError(f"git diff failed in {repo}: {err.decode('utf-8', 'replace').strip()[-300:]}")


def _raw(repo: Path, base: str, tip: str, paths: Sequence[str] | None,
         ignore: Sequence[str] = ()) -> tuple[_Listing, list[_RawEntry]]:
    """Every changed file's status and modes from `--raw -z` (no blob is read); the first
    MAX_LISTED_FILES kept, the rest counted. Added files that match `ignore` are set apart
    first (a `node_modules/` of 50k files does not push the real change past the limits)."""
    env = {"GIT_LITERAL_PATHSPECS": "1"} if paths else None
    tail = [base, tip, "--", *(check_path(p) for p in paths or ())]
    raw: list[_RawEntry] = []  # status, old mode, new mode, old path, path
    fields = _fields(repo, [*_COMMON, "--raw", *tail], env)
    out = _Listing()
    noise: dict[str, _RawEntry] = {}
    for meta_field in fields:
        meta = meta_field.decode().split()
        status = meta[4][0]
        first = _s(next(fields))
        second = _s(next(fields)) if status in "RC" else None
        entry = (status, meta[0][1:], meta[1], first if second else None, second or first)
        if ignore and status == "A" and review_noise.match(first, ignore) is not None:
            noise[first] = entry
            continue
        out.total += 1
        if len(raw) < MAX_LISTED_FILES:
            raw.append(entry)
    if noise:
        out.ignored = review_noise.split(repo, base, noise, ignore)
        # Under a directory the base tracks: not noise after all, listed in git's order.
        back = [e for p, e in noise.items() if p not in out.ignored]
        if back:
            out.total += len(back)
            raw = sorted([*raw, *back], key=lambda e: e[4].encode("utf-8", "surrogateescape"))[:MAX_LISTED_FILES]
    return out, raw


def _numstat(repo: Path, base: str, tip: str, paths: Sequence[str] | None,
             listing: _Listing, raw: list[_RawEntry]) -> None:
    """Line counts of the listed files (`--numstat -z`, in `--raw`'s order) into `listing`."""
    env = {"GIT_LITERAL_PATHSPECS": "1"} if paths else None
    tail = [base, tip, "--", *(check_path(p) for p in paths or ())]
    # Line counts read every blob: past MAX_LISTED_FILES only the listed files get them,
    # asked for in batches of literal paths (a rename's both sides in the same batch).
    counts: dict[str, tuple[int, int, bool]] = {}
    if listing.total <= len(raw) and not listing.ignored:
        _read_numstat(repo, [*_COMMON, "--numstat", *tail], env, counts)
    else:
        for k in range(0, len(raw), NUMSTAT_BATCH):
            batch = [q for r in raw[k:k + NUMSTAT_BATCH] for q in ((r[3], r[4]) if r[3] else (r[4],))]
            _read_numstat(repo, [*_COMMON, "--numstat", base, tip, "--", *batch],
                          {"GIT_LITERAL_PATHSPECS": "1"}, counts)
    listing.files = [_listed(entry, *counts.get(entry[4], (0, 0, False))) for entry in raw]


def _listed(entry: _RawEntry, added: int = 0, removed: int = 0, binary: bool = False) -> FileDiff:
    status, old_mode, new_mode, old_path, path = entry
    return FileDiff(
        path, old_path if status in "RC" else None, _STATUS.get(status, "modified"), binary,
        added, removed, [],
        old_mode=None if old_mode == "000000" else old_mode,
        new_mode=None if new_mode == "000000" else new_mode,
    )


def _read_numstat(repo: Path, args: list[str], env: dict[str, str] | None,
                  into: dict[str, tuple[int, int, bool]]) -> None:
    fields = _fields(repo, args, env)
    for field in fields:
        # "added\tremoved\tpath", or for a rename "added\tremoved\t" then old and new path
        counts = field.decode("utf-8", "surrogateescape").split("\t")
        path = counts[2]
        if path == "":
            next(fields)
            path = _s(next(fields))
        binary = counts[0] == "-"
        into[path] = (0 if binary else int(counts[0]), 0 if binary else int(counts[1]), binary)


def _s(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def read_capped(stream: IO[bytes], cap: int) -> bytes:
    """At most `cap` bytes of `stream`, read as they come: `read(cap)` allocates `cap` bytes
    before reading (a 16 MB block for every diff, however small)."""
    chunks: list[bytes] = []
    left = cap
    fd = stream.fileno()  # unbuffered: nothing was read through the buffer yet
    while left > 0 and (chunk := os.read(fd, min(left, _READ_CHUNK))):
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _full_text(repo: Path, base: str, tip: str, context: int, paths: list[str]) -> bytes | None:
    """`git diff` of `paths`, or None when it would pass MAX_DIFF_TEXT bytes."""
    args = niced(["git", *SAFE_GIT, *ADD_OPTS, "diff", *DIFF_FLAGS, "-M", f"-U{context}", base, tip, "--",
                  *paths])
    with subprocess.Popen(args, cwd=repo, env=git_env({"GIT_LITERAL_PATHSPECS": "1"}),
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        data = read_capped(proc.stdout, MAX_DIFF_TEXT + 1)
        if len(data) > MAX_DIFF_TEXT:
            proc.kill()
            return None
        err = proc.stderr.read()
        if proc.wait() != 0:
            raise GitError(f"git diff failed in {repo}: {err.decode('utf-8', 'replace').strip()[-300:]}")
    return data


def compute_tree_diff(
    repo: Path, base: str, tip: str, *, context: int = 3, paths: Sequence[str] | None = None,
    notes: Sequence[str] = (), ignore: Sequence[str] = (),
) -> Diff:
    """The change from commit `base` to commit `tip`, both in `repo`; `paths` limits it;
    added files matching `ignore` (core/review_noise.py) go to `Diff.ignored`."""
    if not isinstance(context, int) or isinstance(context, bool) or not 0 <= context <= 10_000:
        raise UsageError(f"invalid context {context!r}: use a number of lines from 0 up")
    listing, raw = _raw(repo, base, tip, paths, ignore)
    all_notes = list(notes)
    files: list[FileDiff] | None = None if listing.total else []
    if files is None and listing.total <= MAX_FULL_FILES:
        # One pass: the patch of every file, line counts read from the parse. Only when
        # that is too large are counts asked first, to leave the big files out. With noise
        # set apart, the listed files are named (its text is never read).
        spec = ([p for e in raw for p in ((e[3], e[4]) if e[3] else (e[4],))] if listing.ignored
                else [check_path(p) for p in paths or ()])
        files = _with_text(repo, base, tip, context, [_listed(e) for e in raw], spec, all_notes, first=True)
    if files is None:
        _numstat(repo, base, tip, paths, listing, raw)
        files = listing.files
        if listing.total <= MAX_FULL_FILES:
            small = [f for f in files if f.added + f.removed <= BIG_FILE_LINES or f.binary]
            keep = {id(f) for f in small}
            all_notes += [f"too large to show line by line: {f.path} (+{f.added} -{f.removed})"
                          for f in files if id(f) not in keep]
            want = [p for f in small for p in ([f.old_path] if f.old_path else []) + [f.path]]
            if want:
                files = _with_text(repo, base, tip, context, files, want, all_notes, first=False) or files
        else:
            all_notes.append(f"{listing.total} files changed: line counts only")
    diff = Diff(base=base, files=files, digest=digest_of(base, tip, context), notes=all_notes)
    _set_ignored(diff, listing.ignored)
    diff.more_files = listing.total - len(files)
    if diff.more_files:
        all_notes.append(f"line counts of the {diff.more_files} files past the first {len(files)} were not read")
    return diff


def _with_text(repo: Path, base: str, tip: str, context: int, listed: list[FileDiff],
               pathspec: Sequence[str], notes: list[str], *, first: bool) -> list[FileDiff] | None:
    """`listed` with the hunks git gives for `pathspec`; None when the text is over
    MAX_DIFF_TEXT or (`first` pass) a file has over BIG_FILE_LINES changed lines."""
    text = _full_text(repo, base, tip, context, list(pathspec))
    if text is None:
        if not first:
            notes.append("the change is too large to show line by line; line counts only")
        return None
    parsed = {f.path: f for f in parse_unified(text.decode("utf-8", "surrogateescape"))}
    if first and any(f.added + f.removed > BIG_FILE_LINES and not f.binary for f in parsed.values()):
        return None
    return [parsed.get(f.path, f) for f in listed]


def _set_ignored(diff: Diff, found: dict[str, review_noise.Match]) -> None:
    diff.ignored_count = len(found)
    diff.ignored = sorted(found, key=lambda p: p.encode("utf-8", "surrogateescape"))[:MAX_LISTED_FILES]
    diff.ignored_where = review_noise.groups(found)


def update_tree_diff(repo: Path, previous: Diff, old_tip: str, base: str, tip: str, *, context: int = 3,
                     ignore: Sequence[str] = ()) -> Diff | None:
    """`previous` (the diff from `base` to `old_tip`) brought to `tip` by diffing only the
    paths that differ between the two tips: an agent's next edit costs its own files, not
    the whole change again. None where that might not give what compute_tree_diff gives:
    notes or a summarised diff, many changed paths, or a change that rename detection could
    pair with a file outside those paths (one not only modified while something was
    deleted, renamed or copied)."""
    if previous.notes or previous.more_files or previous.base != base or previous.ignored_count > len(previous.ignored):
        return None
    changed = _changed_paths(repo, old_tip, tip)
    if changed is None:
        return None
    if not changed:  # the same tree (a commit of what was already there)
        return Diff(base=base, files=list(previous.files), digest=digest_of(base, tip, context),
                    ignored=list(previous.ignored), ignored_count=previous.ignored_count,
                    ignored_where=list(previous.ignored_where))
    try:
        part = compute_tree_diff(repo, base, tip, context=context, paths=changed, ignore=ignore)
    except UsageError:  # a name check_path refuses: let the whole diff say so
        return None
    touched = set(changed)
    was = [f for f in previous.files if f.path in touched or f.old_path in touched]
    rest = [f for f in previous.files if not (f.path in touched or f.old_path in touched)]
    moved = ("deleted", "renamed", "copied")
    only_modified = all(f.status == "modified" for f in [*was, *part.files])
    nothing_moved = not any(f.status in moved for f in [*previous.files, *part.files])
    if part.notes or part.more_files or not (only_modified or nothing_moved):
        return None
    # git lists a diff by (new) path, byte by byte.
    files = sorted([*rest, *part.files], key=lambda f: f.path.encode("utf-8", "surrogateescape"))
    if len(files) > MAX_FULL_FILES:
        return None
    diff = Diff(base=base, files=files, digest=digest_of(base, tip, context))
    # Noise of untouched paths stays; the touched ones are as `part` found them.
    kept = [p for p in previous.ignored if p not in touched]
    _set_ignored(diff, {p: m for p in [*kept, *part.ignored] if (m := review_noise.match(p, ignore))})
    return diff


def _changed_paths(repo: Path, old_tip: str, tip: str) -> list[str] | None:
    """Paths whose content or mode differ between two commits; None past MAX_UPDATE_PATHS."""
    out: list[str] = []
    fields = _fields(repo, [*ADD_OPTS, "diff", "--no-ext-diff", "--no-textconv", "--no-renames", "-z", "--raw",
                            old_tip, tip, "--"], None)
    for _meta in fields:
        out.append(_s(next(fields)))
        if len(out) > MAX_UPDATE_PATHS:
            fields.close()
            return None
    return out


def digest_of(base: str, tip: str, context: int = 3) -> str:
    """Equal digests, equal diffs: both ends are commits, named by their content."""
    return hashlib.sha1(f"{base} {tip} {context}".encode()).hexdigest()
