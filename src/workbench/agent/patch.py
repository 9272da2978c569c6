"""The `*** Begin Patch` edit format (Codex `apply_patch`): parse, then apply all-or-nothing.

Grammar, as models trained on it emit it:

    *** Begin Patch
    *** Add File: path          followed by `+line` lines
    *** Delete File: path
    *** Update File: path
    *** Move to: new/path       optional, right after Update File
    @@ optional context line    a whole line of the file that precedes the hunk
     context / -removed / +added lines
    *** End of File             optional: the hunk ends at the end of the file
    *** End Patch

The built-in agent applies patches inside the session's sandbox, through
`workbench.session_side.apply_patch`, which imports this module: it must need nothing but
the standard library. The applier refuses absolute paths, `..`, `.git` and symlinks, and
opens every path component relative to its parent directory with `O_NOFOLLOW`, so even a
session without a sandbox cannot race it into writing outside the workspace.

Over 600 lines because the patch format's parser, the hunk matcher and the link-refusing
file writer ship together as the session-side helper (stdlib only, one import under
`python -I -S`); parser / matcher / writer is the seam to split on.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BEGIN = "*** Begin Patch"
END = "*** End Patch"
ADD = "*** Add File: "
DELETE = "*** Delete File: "
UPDATE = "*** Update File: "
MOVE = "*** Move to: "
EOF_MARK = "*** End of File"

# Shown at the end of most errors: the fix is nearly always to look at the file again.
_REREAD = "Re-read the file and retry with context lines copied exactly from it."


class PatchError(ValueError):
    """The patch is malformed or does not apply. The message is written for the model."""


@dataclass
class Chunk:
    """One hunk of an Update File: `old_lines` are replaced by `new_lines`."""

    context: str | None
    old_lines: list[str]
    new_lines: list[str]
    end_of_file: bool = False
    patch_line: int = 0  # 1-based line in the patch text, for error messages
    outer: list[str] = field(default_factory=list)  # earlier `@@` lines, e.g. the class


@dataclass
class AddFile:
    path: str
    content: str


@dataclass
class DeleteFile:
    path: str


@dataclass
class UpdateFile:
    path: str
    chunks: list[Chunk] = field(default_factory=list)
    move_to: str | None = None


FileOp = AddFile | UpdateFile | DeleteFile


@dataclass
class PatchResult:
    """Paths are relative to the workspace root, with `/` separators."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"A {p}" for p in self.added]
        lines += [f"M {p}" for p in self.modified]
        lines += [f"R {a} -> {b}" for a, b in self.moved]
        lines += [f"D {p}" for p in self.deleted]
        return "\n".join(lines)

    def paths(self) -> list[str]:
        """Every path touched, each once (both ends of a move)."""
        out: list[str] = []
        for p in [*self.added, *self.modified, *(x for m in self.moved for x in m), *self.deleted]:
            if p not in out:
                out.append(p)
        return out


# --------------------------------------------------------------------------- parsing

_HEREDOC_OPEN = re.compile(r"""^(?:(?:apply_patch|applypatch)\s*)?<<-?\s*(['"]?)(\w+)\1\s*$""")
_FILE_HEADER = re.compile(r"^\*\*\* (Add|Delete|Update) File:\s*(.*)$")
_MOVE_HEADER = re.compile(r"^\*\*\* Move to:\s*(.*)$")
_GIT_HUNK_HEADER = re.compile(r"^-\d+(?:,\d+)?\s+\+\d+(?:,\d+)?\s*@@\s?(.*)$")


def _unwrap(lines: list[str]) -> list[str]:
    """Drop a heredoc or Markdown fence around the patch, which models sometimes add."""
    for _ in range(2):
        if len(lines) < 2:
            return lines
        first, last = lines[0].strip(), lines[-1].strip()
        m = _HEREDOC_OPEN.match(first)
        fenced = first.startswith("```") and last == "```"
        if (m and last == m.group(2)) or fenced:
            lines = lines[1:-1]
    return lines


def check_path(path: str, *, what: str = "path") -> str:
    """Validate a patch path lexically and return it normalised (`./a//b` -> `a/b`)."""
    if not path:
        raise PatchError(f"empty {what}; give a path relative to the workspace root")
    if "\x00" in path:
        raise PatchError(f"{what} {path!r} contains a NUL byte")
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", path):
        raise PatchError(f"{what} {path!r} is absolute; use a path relative to the workspace root")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PatchError(f"{what} {path!r} contains '..'; paths must stay inside the workspace")
    if not parts:
        raise PatchError(f"{what} {path!r} does not name a file")
    if any(p.lower() == ".git" for p in parts):
        raise PatchError(f"{what} {path!r} is inside .git; apply_patch does not edit git metadata")
    return "/".join(parts)


def parse_patch(text: str) -> list[FileOp]:
    """Parse a patch into file operations. Raises PatchError saying what is wrong and where."""
    if not isinstance(text, str):
        raise PatchError(f"patch must be text, not {type(text).__name__}")
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    lines = _unwrap(text.strip().split("\n"))
    if not lines or lines[0].strip() != BEGIN:
        got = lines[0].strip()[:80] if lines else ""
        raise PatchError(f"the first line of the patch must be '{BEGIN}', got {got!r}")
    if len(lines) < 2 or lines[-1].strip() != END:
        raise PatchError(f"the last line of the patch must be '{END}'")

    ops: list[FileOp] = []
    i, n = 1, len(lines) - 1  # lines[n] is END
    while i < n:
        line = lines[i]
        header = _FILE_HEADER.match(line.strip())
        if line.strip() == "":
            i += 1
        elif header is None:
            raise PatchError(
                f"unexpected line {i + 1} of the patch: {line[:80]!r}. Expected "
                f"'{ADD}PATH', '{UPDATE}PATH', '{DELETE}PATH' or '{END}'"
            )
        elif header.group(1) == "Add":
            path = check_path(header.group(2).strip())
            i += 1
            body: list[str] = []
            while i < n:
                cur = lines[i]
                if cur.startswith("+"):
                    body.append(cur[1:])
                    i += 1
                elif cur == "":
                    # A bare blank line is content only if more `+` lines follow it.
                    j = i
                    while j < n and lines[j] == "":
                        j += 1
                    if j < n and lines[j].startswith("+"):
                        body.extend("" for _ in range(j - i))
                    i = j
                else:
                    break
            ops.append(AddFile(path, "".join(b + "\n" for b in body)))
        elif header.group(1) == "Delete":
            ops.append(DeleteFile(check_path(header.group(2).strip())))
            i += 1
            while i < n and lines[i].startswith("-"):
                i += 1  # the old content, which some models list; nothing to check it against
        else:
            path = check_path(header.group(2).strip())
            i += 1
            op = UpdateFile(path)
            move = _MOVE_HEADER.match(lines[i].strip()) if i < n else None
            if move:
                op.move_to = check_path(move.group(1).strip(), what="move target")
                i += 1
            while i < n:
                cur = lines[i]
                if cur.startswith("***") and cur.strip() != EOF_MARK:
                    break
                if cur == "" and not op.chunks:
                    i += 1  # blank line between the header and the first hunk
                    continue
                chunk, i = _parse_chunk(lines, i, n, path, first=not op.chunks)
                op.chunks.append(chunk)
            if not op.chunks and op.move_to is None:
                raise PatchError(
                    f"'{UPDATE}{path}' has no hunks; add '@@' hunks with ' ', '-' and '+' lines"
                )
            ops.append(op)
    if not ops:
        raise PatchError("the patch contains no file operations")
    return ops


def _parse_chunk(lines: list[str], i: int, n: int, path: str, *, first: bool) -> tuple[Chunk, int]:
    start = i + 1
    context: str | None = None
    outer: list[str] = []
    line = lines[i]
    if line.startswith("@@"):
        # Consecutive `@@` lines narrow down step by step: `@@ class A` then `@@ def run`.
        while i < n and lines[i].startswith("@@"):
            header = lines[i][2:].strip()
            m = _GIT_HUNK_HEADER.match(header)
            if m:  # `@@ -12,3 +12,4 @@ def f` from a unified diff: keep only the trailing text
                header = m.group(1).strip()
            if context is not None:
                outer.append(context)
            context = header or None
            i += 1
    elif not first:
        raise PatchError(
            f"expected '@@' to start the next hunk of {path} at patch line {i + 1}, "
            f"got {line[:80]!r}"
        )
    old: list[str] = []
    new: list[str] = []
    eof = False
    bare_blanks = 0  # trailing empty (not even a space) lines: usually just separators
    while i < n:
        cur = lines[i]
        if cur.strip() == EOF_MARK:
            eof = True
            i += 1
            break
        if cur.startswith("@@") or cur.startswith("***"):
            break
        bare_blanks = bare_blanks + 1 if cur == "" else 0
        tag, rest = (cur[0], cur[1:]) if cur else (" ", "")
        if tag == " ":
            old.append(rest)
            new.append(rest)
        elif tag == "-":
            old.append(rest)
        elif tag == "+":
            new.append(rest)
        else:
            raise PatchError(
                f"unexpected line {i + 1} in a hunk of {path}: {cur[:80]!r}. Every hunk line "
                "must start with ' ' (context), '-' (removed) or '+' (added)"
            )
        i += 1
    if bare_blanks and not eof and bare_blanks < len(old):
        # Dropping trailing context cannot change the result, only loosen the match.
        del old[-bare_blanks:]
        del new[-bare_blanks:]
    if not old and not new:
        raise PatchError(f"empty hunk in {path} at patch line {start}")
    return Chunk(context, old, new, eof, start, outer), i


# --------------------------------------------------------------------------- matching

_PUNCT = str.maketrans(
    {
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d", "-"),
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\uff07", "'"),
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\uff02", '"'),
        **dict.fromkeys(
            "\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000",
            " ",
        ),
        "\u2026": "...",
        "\ufeff": "",
        "\u200b": "",
    }
)


def _norm_punct(s: str) -> str:
    return s.translate(_PUNCT).strip()


# Tried in order over the whole file, so an exact match always wins over a fuzzy one.
_PASSES: list[Callable[[str], str]] = [
    lambda s: s,
    str.rstrip,
    str.strip,
    _norm_punct,
]


def _seek(views: list[list[str]], pattern: list[str], start: int, eof: bool) -> int | None:
    """First index >= start where `pattern` matches, trying each normalisation in turn."""
    size = len(views[0])
    m = len(pattern)
    if m > size:
        return None
    candidates = list(range(start, size - m + 1))
    if eof and size - m >= start:
        # `*** End of File` hunks belong at the end; prefer it, then fall back to anywhere.
        candidates = [size - m] + [c for c in candidates if c != size - m]
    for view, fn in zip(views, _PASSES, strict=True):
        pat = [fn(p) for p in pattern]
        first = pat[0]
        for c in candidates:
            if view[c] == first and view[c : c + m] == pat:
                return c
    return None


def _closest(views: list[list[str]], pattern: list[str], start: int) -> tuple[int, int] | None:
    """(index, equal line count) of the window most like `pattern`; blank lines don't count."""
    loose = views[-1]
    pat = [_norm_punct(p) for p in pattern]
    m = len(pat)
    last = max(len(loose) - m, 0)
    # Score windows from the positions of equal lines, not by sliding over every window:
    # O(matches) instead of O(file x hunk), so a hostile hunk cannot pin a CPU.
    where: dict[str, list[int]] = {}
    for i, ln in enumerate(loose):
        if ln:
            where.setdefault(ln, []).append(i)
    scores: dict[int, int] = {}
    for j, p in enumerate(pat):
        hits = where.get(p) if p else None
        if not hits or len(hits) > _CLOSEST_MAX_HITS:
            continue  # absent, or too common to say where the hunk belongs
        for i in hits:
            c = i - j
            if 0 <= c <= last:
                scores[c] = scores.get(c, 0) + 1
    best: tuple[int, int] | None = None
    best_key: tuple[int, bool, int] = (0, False, 0)
    for c, score in scores.items():
        key = (score, c >= start, -c)  # most lines equal, then after the cursor, then first
        if key > best_key:
            best, best_key = (c, score), key
    return best


_CLOSEST_MAX_HITS = 2000


def _quote_block(lines: list[str], limit: int = 12) -> str:
    shown = [f"  |{ln}" for ln in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"  ... ({len(lines) - limit} more lines)")
    return "\n".join(shown) if shown else "  (nothing)"


# --------------------------------------------------------------------------- files


@dataclass
class _Text:
    """A text file split into lines, remembering each line's ending and a BOM."""

    lines: list[str]
    ends: list[str]
    bom: bool

    @classmethod
    def parse(cls, data: str) -> _Text:
        bom = data.startswith("\ufeff")
        if bom:
            data = data[1:]
        lines: list[str] = []
        ends: list[str] = []
        if data:
            pieces = data.split("\n")
            last = pieces.pop()
            for p in pieces:
                if p.endswith("\r"):
                    lines.append(p[:-1])
                    ends.append("\r\n")
                else:
                    lines.append(p)
                    ends.append("\n")
            if last:
                lines.append(last)
                ends.append("")
        return cls(lines, ends, bom)

    def eol(self) -> str:
        crlf = self.ends.count("\r\n")
        return "\r\n" if crlf and crlf >= self.ends.count("\n") else "\n"

    def render(self) -> str:
        return ("\ufeff" if self.bom else "") + "".join(
            t + e for t, e in zip(self.lines, self.ends, strict=True)
        )


def _apply_chunks(text: _Text, chunks: list[Chunk], path: str) -> _Text:
    views = [[fn(ln) for ln in text.lines] for fn in _PASSES]
    size = len(text.lines)

    def find_header(header: str, start: int) -> int | None:
        idx = _seek(views, [header], start, False)
        if idx is None:
            # Models often give only the start of a line (`@@ def foo`); accept a prefix, since
            # the hunk's own lines are still checked after it.
            want = _norm_punct(header)
            idx = next(
                (c for c in range(start, size) if want and views[-1][c].startswith(want)), None
            )
        return idx

    def find(pattern: list[str], start: int, eof: bool) -> int | None:
        # Hunks should come in file order, but a model that got the order wrong still meant it.
        idx = _seek(views, pattern, start, eof)
        return idx if idx is not None or start == 0 else _seek(views, pattern, 0, eof)

    pos = 0
    repl: list[tuple[int, int, list[str]]] = []
    for k, chunk in enumerate(chunks, 1):
        where = f"{path}, hunk {k} (patch line {chunk.patch_line})"
        headers = [*chunk.outer, *([chunk.context] if chunk.context is not None else [])]
        for n, header in enumerate(headers):
            idx = find_header(header, pos)
            if idx is None and pos and n == 0:
                idx = find_header(header, 0)
            if idx is None:
                raise PatchError(
                    f"in {where}: could not find the '@@' context line {header!r} "
                    f"{'anywhere in the file' if n == 0 else 'after the previous @@ line'}. "
                    "The text after '@@' must be a line of the file, such as a class or "
                    f"function definition. {_REREAD}"
                )
            pos = idx + 1
        old, new = chunk.old_lines, chunk.new_lines
        idx = find(old, pos, chunk.end_of_file) if old else None
        if idx is None and old and old[-1] == "":
            # A trailing blank context line often stands for the end of the file.
            old = old[:-1]
            if new and new[-1] == "":
                new = new[:-1]
            idx = find(old, pos, chunk.end_of_file) if old else None
        if not old:
            # Pure addition: after the `@@` line if there is one, else at the end.
            repl.append((pos if chunk.context is not None else size, 0, new))
            continue
        if idx is None:
            raise PatchError(_mismatch_message(where, views, chunk.old_lines, pos, text.lines))
        repl.append((idx, len(old), new))
        pos = idx + len(old)

    repl.sort(key=lambda r: (r[0], r[1]))
    eol = text.eol()
    out_lines: list[str] = []
    out_ends: list[str] = []
    cursor = 0
    for start, length, new_lines in repl:
        if start < cursor:
            raise PatchError(f"hunks in {path} overlap near line {start + 1}; merge them into one")
        out_lines += text.lines[cursor:start]
        out_ends += text.ends[cursor:start]
        out_lines += new_lines
        out_ends += [eol] * len(new_lines)
        cursor = start + length
    out_lines += text.lines[cursor:]
    out_ends += text.ends[cursor:]
    # Only the last line may lack a line ending; an untouched last line keeps its (missing) one.
    for j in range(len(out_ends) - 1):
        if not out_ends[j]:
            out_ends[j] = eol
    return _Text(out_lines, out_ends, text.bom)


def _mismatch_message(
    where: str, views: list[list[str]], old: list[str], pos: int, lines: list[str]
) -> str:
    msg = [
        f"in {where}: could not find these lines in the file ({len(lines)} lines):",
        _quote_block(old),
    ]
    loose = views[-1]
    near = _closest(views, old, pos)
    if near is not None:
        c, score = near
        msg.append(f"Closest match at line {c + 1} ({score} of {len(old)} lines equal):")
    else:
        c = -1
        # Fuzzy search is costly (difflib over the whole file): try a few hunk lines only.
        tries = [(off, want) for off, want in enumerate(old) if want.strip()][:3]
        for off, want in tries:
            similar = difflib.get_close_matches(_norm_punct(want), loose, n=1, cutoff=0.6)
            if similar:
                c = max(loose.index(similar[0]) - off, 0)
                msg.append(f"No line matches exactly; the most similar text is at line {c + 1}:")
                break
        if c < 0:
            msg.append("No line of the file resembles them.")
    if c >= 0:
        msg.append(_quote_block(lines[c : c + len(old)]))
        for off, want in enumerate(old):
            have = loose[c + off] if c + off < len(loose) else None
            if have != _norm_punct(want):
                got = lines[c + off] if have is not None else "<end of file>"
                msg.append(
                    f"First difference at line {c + off + 1}: expected {want!r}, found {got!r}."
                )
                break
    msg.append(_REREAD)
    return "\n".join(msg)


# --------------------------------------------------------------------------- applying


@dataclass
class _Entry:
    content: str | None  # None: delete
    original: bytes | None  # None: did not exist (or was a symlink: see `link`)
    mode: int | None
    link: str | None = None  # the target of a symlink this patch deletes, to restore it


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _symlink_error(path: str, link: str) -> PatchError:
    return PatchError(
        f"path {path!r} goes through the symlink {link!r}; apply_patch does not follow "
        "symlinks (they can lead outside the workspace). Edit the file at its real path"
    )


class _Workspace:
    """Stages edits in memory for paths inside `root`, then writes them.

    Paths are checked lexically (`check_path`) and then opened one component at a time,
    each relative to its parent's descriptor with `O_NOFOLLOW`, from a descriptor of the
    root: a symlink anywhere, including one swapped in while the patch applies, is refused
    rather than followed, so no write can land outside the workspace.
    """

    def __init__(self, root: Path, cwd: Path | None, tag: int | None = None) -> None:
        self.tag = os.getpid() if tag is None else tag
        try:
            self.root = Path(os.path.realpath(root))
            if not self.root.is_dir():
                raise PatchError(f"workspace root {str(root)!r} is not a directory")
        except OSError as e:
            raise PatchError(f"workspace root {str(root)!r} is not usable: {e}") from e
        base = Path(os.path.realpath(cwd if cwd is not None else root))
        if base != self.root and self.root not in base.parents:
            raise PatchError(f"working directory {str(cwd)!r} is outside the workspace root")
        self.base_rel = base.relative_to(self.root).as_posix()
        self.staged: dict[str, _Entry] = {}
        try:
            self.root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise PatchError(f"workspace root {str(root)!r} is not usable: {e.strerror}") from e

    def close(self) -> None:
        os.close(self.root_fd)

    def rel(self, path: str) -> str:
        """The path relative to the root, for reports."""
        joined = f"{self.base_rel}/{path}" if self.base_rel != "." else path
        return check_path(joined)

    def locate(self, path: str) -> str:
        """The root-relative path (lexically checked; never resolved through symlinks)."""
        return self.rel(path)

    def parent(self, rel: str, path: str, *, create: bool = False) -> int | None:
        """A descriptor of `rel`'s directory, or None if a directory on the way is missing
        (made instead when `create`). Refuses a symlink or a file on the way."""
        parts = rel.split("/")[:-1]
        fd = os.dup(self.root_fd)
        try:
            for i, name in enumerate(parts):
                try:
                    try:
                        nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    except FileNotFoundError:
                        if not create:
                            return None
                        with contextlib.suppress(FileExistsError):
                            os.mkdir(name, 0o777, dir_fd=fd)
                        nxt = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(fd, name):
                        raise _symlink_error(path, "/".join(parts[: i + 1])) from None
                    raise PatchError(f"cannot access {path}: {e.strerror}") from None
                os.close(fd)
                fd = nxt
            result, fd = fd, -1
            return result
        finally:
            if fd >= 0:
                os.close(fd)

    def _lstat(self, rel: str, path: str) -> os.stat_result | None:
        fd = self.parent(rel, path)
        if fd is None:
            return None
        try:
            return os.stat(_name(rel), dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise PatchError(f"cannot access {path}: {e.strerror}") from None
        finally:
            os.close(fd)

    def exists(self, rel: str, path: str) -> bool:
        entry = self.staged.get(rel)
        if entry is not None:
            return entry.content is not None
        return self._lstat(rel, path) is not None

    def read(self, rel: str, path: str) -> str:
        entry = self.staged.get(rel)
        if entry is not None:
            if entry.content is None:
                raise PatchError(f"{path} was deleted earlier in this patch")
            return entry.content
        st = self._lstat(rel, path)
        if st is None:
            raise PatchError(f"{path} does not exist; use '{ADD}{path}' to create it")
        if stat.S_ISLNK(st.st_mode):
            raise _symlink_error(path, rel)
        if stat.S_ISDIR(st.st_mode):
            raise PatchError(f"{path} is a directory, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise PatchError(f"{path} is not a regular file")
        data = self._read_bytes(rel, path)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise PatchError(
                f"{path} is not UTF-8 text; apply_patch only edits text files"
            ) from None

    def _read_bytes(self, rel: str, path: str) -> bytes:
        pfd = self.parent(rel, path)
        if pfd is None:
            raise PatchError(f"{path} does not exist; use '{ADD}{path}' to create it")
        try:
            fd = os.open(_name(rel), _FILE_FLAGS, dir_fd=pfd)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise _symlink_error(path, rel) from None
            raise PatchError(f"cannot read {path}: {e.strerror}") from None
        finally:
            os.close(pfd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise PatchError(f"{path} is not a regular file")
            with os.fdopen(fd, "rb", closefd=False) as f:
                return f.read()
        except OSError as e:
            raise PatchError(f"cannot read {path}: {e.strerror}") from None
        finally:
            os.close(fd)

    def stage(self, rel: str, content: str | None, path: str) -> None:
        if rel in self.staged:
            self.staged[rel].content = content
            return
        original: bytes | None = None
        mode: int | None = None
        link: str | None = None
        st = self._lstat(rel, path)
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                raise PatchError(f"{path} is a directory, not a file")
            if stat.S_ISLNK(st.st_mode):
                if content is not None:
                    raise _symlink_error(path, rel)
                link = self._readlink(rel, path)  # deleting the link itself is harmless
            else:
                mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISREG(st.st_mode):
                original = self._read_bytes(rel, path)
        elif content is not None:
            self._check_parents(rel, path)
        self.staged[rel] = _Entry(content, original, mode, link)

    def _readlink(self, rel: str, path: str) -> str:
        pfd = self.parent(rel, path)
        if pfd is None:
            raise PatchError(f"cannot delete {path}: it does not exist")
        try:
            return os.readlink(_name(rel), dir_fd=pfd)
        except OSError as e:
            raise PatchError(f"cannot access {path}: {e.strerror}") from None
        finally:
            os.close(pfd)

    def _check_parents(self, rel: str, path: str) -> None:
        parts = rel.split("/")
        for i in range(len(parts) - 1, 0, -1):
            staged = self.staged.get("/".join(parts[:i]))
            if staged is not None and staged.content is not None:
                raise PatchError(f"cannot create {path}: {parts[i - 1]!r} is a file, not a directory")

    def _write(self, rel: str, entry: _Entry, content: bytes | None) -> None:
        """Write (None: delete) one path, opening its directories again without following."""
        pfd = self.parent(rel, rel, create=content is not None)
        if pfd is None:
            return  # deleting, and the directory is gone already
        try:
            name = _name(rel)
            if content is None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=pfd)
            else:
                _write_atomic(pfd, name, content, entry.mode, self.tag)
        finally:
            os.close(pfd)

    def _restore(self, rel: str, entry: _Entry) -> None:
        if entry.link is not None:
            pfd = self.parent(rel, rel)
            if pfd is not None:
                try:
                    os.symlink(entry.link, _name(rel), dir_fd=pfd)
                finally:
                    os.close(pfd)
        else:
            self._write(rel, entry, entry.original)

    def commit(self) -> None:
        done: list[tuple[str, _Entry]] = []
        rel = ""
        try:
            for rel, entry in self.staged.items():
                data = entry.content.encode("utf-8") if entry.content is not None else None
                self._write(rel, entry, data)
                done.append((rel, entry))
        except (OSError, PatchError, UnicodeError) as e:
            for undo, entry in reversed(done):
                with contextlib.suppress(OSError, PatchError):
                    self._restore(undo, entry)
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            raise PatchError(f"writing {rel} failed: {why}; no files were changed") from e


def _name(rel: str) -> str:
    return rel.rsplit("/", 1)[-1]


def _is_link(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _write_atomic(dir_fd: int, name: str, data: bytes, mode: int | None, tag: int) -> None:
    tmp = f".{name}.wb-patch-{tag}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666,
                 dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if mode is not None:
                os.fchmod(f.fileno(), mode)
        # rename replaces whatever `name` is now (a symlink too) and never follows it.
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def apply_patch(text: str, root: Path, *, cwd: Path | None = None, tag: int | None = None) -> PatchResult:
    """Apply a patch to files under `root` (paths relative to `cwd`, default `root`).

    Temporary files are named `.NAME.wb-patch-TAG.tmp`, TAG defaulting to this process's id
    (the sandboxed helper is given the daemon's, so a restarted daemon can tell them stale).

    Every file's new content is computed before anything is written, so a hunk that does not
    apply leaves the workspace untouched. Symlinks are never followed (see `_Workspace`).
    """
    ops = parse_patch(text)
    ws = _Workspace(root, cwd, tag)
    try:
        result = _apply_ops(ops, ws)
        ws.commit()
    finally:
        ws.close()
    return result


def remove_file(root: Path, rel: str) -> bool:
    """Delete `root/rel` (a file), following no symlink on the way; False if not possible."""
    try:
        ws = _Workspace(root, None)
    except PatchError:
        return False
    try:
        rel = check_path(rel)
        pfd = ws.parent(rel, rel)
        if pfd is None:
            return False
        try:
            os.unlink(_name(rel), dir_fd=pfd)
            return True
        finally:
            os.close(pfd)
    except (OSError, PatchError):
        return False
    finally:
        ws.close()


def _apply_ops(ops: list[FileOp], ws: _Workspace) -> PatchResult:
    result = PatchResult()
    for op in ops:
        if isinstance(op, AddFile):
            rel = ws.locate(op.path)
            existed = ws.exists(rel, op.path)
            ws.stage(rel, op.content, op.path)
            (result.modified if existed else result.added).append(rel)
        elif isinstance(op, DeleteFile):
            rel = ws.locate(op.path)
            if not ws.exists(rel, op.path):
                raise PatchError(f"cannot delete {op.path}: it does not exist")
            ws.stage(rel, None, op.path)
            result.deleted.append(rel)
        else:
            rel = ws.locate(op.path)
            current = _Text.parse(ws.read(rel, op.path))
            updated = _apply_chunks(current, op.chunks, op.path).render()
            if op.move_to is None or ws.rel(op.move_to) == rel:
                ws.stage(rel, updated, op.path)
                result.modified.append(rel)
                continue
            dest = ws.locate(op.move_to)
            if ws.exists(dest, op.move_to):
                raise PatchError(
                    f"cannot move {op.path} to {op.move_to}: the destination exists; "
                    f"delete it first with '{DELETE}{op.move_to}'"
                )
            ws.stage(dest, updated, op.move_to)
            ws.stage(rel, None, op.path)
            result.moved.append((rel, dest))
    return result


# --------------------------------------------------------------------------- argv forms

_PATCH_COMMANDS = ("apply_patch", "applypatch")
_SHELLS = ("bash", "sh", "zsh", "/bin/bash", "/bin/sh", "/usr/bin/bash", "/bin/zsh", "/usr/bin/zsh")
_HEREDOC_SCRIPT = re.compile(
    r"""^\s*(?:cd\s+(?P<cd>'[^']*'|"[^"]*"|[^\s;&|'"]+)\s*&&\s*)?
        (?:apply_patch|applypatch)\s*<<-?\s*(?P<q>['"]?)(?P<tag>\w+)(?P=q)[ \t]*\n
        (?P<body>.*?)\n[ \t]*(?P=tag)[ \t]*\n?\s*$""",
    re.DOTALL | re.VERBOSE,
)


def extract_patch_with_cwd(argv: list[str]) -> tuple[str, str | None] | None:
    """Like `extract_patch_from_argv`, also returning the `cd DIR &&` prefix's DIR if any."""
    if not argv or not all(isinstance(a, str) for a in argv):
        return None
    if len(argv) == 2 and argv[0] in _PATCH_COMMANDS:
        return argv[1], None
    if len(argv) == 3 and argv[0] in _SHELLS and argv[1] in ("-c", "-lc"):
        m = _HEREDOC_SCRIPT.match(argv[2])
        if m:
            cd = m.group("cd")
            if cd and cd[0] in "'\"":
                cd = cd[1:-1]
            return m.group("body"), cd
    return None


def extract_patch_from_argv(argv: list[str]) -> str | None:
    """The patch text when a shell call is really an apply_patch invocation, else None.

    Recognises `["apply_patch", PATCH]`, `["applypatch", PATCH]` and
    `["bash", "-lc", "apply_patch <<'EOF'\\n...\\nEOF"]` (optionally after `cd DIR &&`).
    """
    found = extract_patch_with_cwd(argv)
    return found[0] if found else None
