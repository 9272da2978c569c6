"""The worktree (tracked + untracked, minus ignored) against a session's base commit.

Used on the host only for checkouts whose .git the session cannot write (an in-place
session's main checkout, read-only in strict mode); a session's private repository is
diffed from its imported snapshot instead (core/tree_diff.py). The parser and the
models here serve both.

The diff is computed through a throw-away copy of the worktree's index so the agent's
real index is never written: untracked files are added to the copy as intent-to-add
(`git add -N -A`, which hashes nothing into the object store) and `git diff <base>` then
compares the working tree with the base tree. The unified output is parsed here into
files and hunks; a hunk's id is a hash of its path and changed lines, so it survives
recomputation as long as that hunk itself is unchanged.

Over 600 lines because it holds the diff model, the unified-diff parser and the renderers;
model / parse / render is the planned split (issue 13, item 4; the git runner already left).
"""

from __future__ import annotations

import difflib
import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from workbench.core.git_runner import ADD_OPTS, DIFF_FLAGS, check_ref, git_out, run_git, stderr_text
from workbench.errors import GitError, NotFound, UsageError

LineKind = Literal[" ", "+", "-"]
FileStatus = Literal["added", "modified", "deleted", "renamed", "copied", "typechange"]

# --------------------------------------------------------------------------- git plumbing


def resolve_commit(cwd: Path, ref: str, what: str = "base") -> str:
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


# --------------------------------------------------------------------------- model


@dataclass(slots=True)
class DiffLine:
    kind: LineKind
    text: str  # without the line's "\r" (see `cr`) so it displays cleanly
    old_no: int | None
    new_no: int | None
    no_newline: bool = False  # "\ No newline at end of file" follows this line
    cr: bool = False  # the line ended in "\r\n"; kept so patches reproduce the bytes

    def raw(self) -> str:
        return self.text + "\r" if self.cr else self.text


class Hunk:
    """One hunk. Its lines (and its id) are worked out on first use from the raw diff text
    it was parsed from: a large diff's file list is ready long before every line is needed."""

    __slots__ = ("_changed", "_group", "_id", "_lines", "_raw", "_text", "header", "new_lines", "new_start",
                 "old_lines", "old_start")

    def __init__(
        self,
        id: str | None,
        header: str,
        old_start: int,
        old_lines: int,
        new_start: int,
        new_lines: int,
        lines: list[DiffLine] | None = None,
        *,
        raw: list[str] | None = None,
        text: str | None = None,
    ) -> None:
        self._id = id
        self.header = header
        self.old_start = old_start
        self.old_lines = old_lines
        self.new_start = new_start
        self.new_lines = new_lines
        self._lines = lines
        self._raw = raw if lines is None else None
        # The body as one string, lines joined by "\n", every line starting with one of
        # " +-\\" (the fast parser checked): split only when needed.
        self._text = text if lines is None and raw is None else None
        self._group: _IdGroup | None = None  # set by the parser when the id is computed lazily
        self._changed: str | None = None  # what the id hashes, if the parser already had it
        if lines is None and raw is None and text is None:
            self._lines = []

    @property
    def id(self) -> str:
        if self._id is None:
            _resolve_ids(self)
        assert self._id is not None
        return self._id

    @id.setter
    def id(self, value: str) -> None:
        self._id = value

    def _raw_lines(self) -> list[str] | None:
        if self._raw is None and self._text is not None:
            self._raw = self._text.split("\n") if self._text else []
            self._text = None
        return self._raw

    @property
    def lines(self) -> list[DiffLine]:
        if self._lines is None:
            self._lines = _build_lines(self._raw_lines() or [], self.old_start, self.new_start)
            self._raw = None
        return self._lines

    @lines.setter
    def lines(self, value: list[DiffLine]) -> None:
        self._lines, self._raw, self._text = value, None, None

    def __repr__(self) -> str:
        return f"Hunk(id={self.id!r}, header={self.header!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Hunk):
            return NotImplemented
        return (self.id, self.header, self.old_start, self.old_lines, self.new_start, self.new_lines,
                self.lines) == (other.id, other.header, other.old_start, other.old_lines,
                                other.new_start, other.new_lines, other.lines)

    __hash__ = None  # type: ignore[assignment]

    def size_hint(self) -> int:
        """Rough size of this hunk's lines on the wire (JSON), without building them."""
        if self._text is not None and self._lines is None and self._raw is None:
            n = self._text.count("\n") + 1
            return (len(self._text) if self._text.isascii() else 6 * len(self._text)) + 24 * n
        src = self._raw if self._lines is None else [ln.text for ln in self._lines]
        total = 0
        for x in src or ():
            total += len(x) + 24 if x.isascii() else 6 * len(x) + 24
        return total

    def rows(self) -> list[list[Any]]:
        """The lines in wire form `[kind, text, old_no, new_no(, flags)]`."""
        if self._lines is not None:
            return [_line_json(ln) for ln in self._lines]
        return _raw_rows(self._raw_lines() or [], self.old_start, self.new_start)

    def render(self) -> str:
        old, new = _range(self.old_start, self.old_lines), _range(self.new_start, self.new_lines)
        head = f"@@ -{old} +{new} @@{self.section}\n"
        if self._lines is None and self._raw is None and self._text is not None:
            return head + self._text + "\n" if self._text else head
        if self._lines is None and self._raw is not None:
            # The raw lines are already in patch form (with git's exact "\ No newline" text).
            return head + "".join(ln + "\n" if ln else " \n" for ln in self._raw)
        out = [head]
        for ln in self.lines:
            out.append(f"{ln.kind}{ln.raw()}\n")
            if ln.no_newline:
                out.append("\\ No newline at end of file\n")
        return "".join(out)

    @property
    def section(self) -> str:
        """The function-context text git prints after the second "@@" (with its space)."""
        end = self.header.find("@@", 2)
        return self.header[end + 2 :] if end >= 0 else ""


def _build_lines(raw: list[str], old_no: int, new_no: int) -> list[DiffLine]:
    out: list[DiffLine] = []
    add, line_cls = out.append, DiffLine
    for ln in raw:
        kind = ln[:1]
        if kind == "\\":
            if out:
                out[-1].no_newline = True
            continue
        text = ln[1:]
        cr = text[-1:] == "\r"
        if cr:
            text = text[:-1]
        if kind == "+":
            add(line_cls("+", text, None, new_no, False, cr))
            new_no += 1
        elif kind == "-":
            add(line_cls("-", text, old_no, None, False, cr))
            old_no += 1
        else:  # " " or a bare empty line (an empty context line)
            add(line_cls(" ", text, old_no, new_no, False, cr))
            old_no += 1
            new_no += 1
    return out


def _raw_rows(raw: list[str], old_no: int, new_no: int) -> list[list[Any]]:
    """Wire rows straight from raw lines, without building DiffLine objects."""
    out: list[list[Any]] = []
    add = out.append
    for ln in raw:
        kind = ln[:1]
        if kind == "\\":
            if out:
                prev = out[-1]
                if len(prev) == 5:
                    prev[4]["no_newline"] = True
                else:
                    prev.append({"no_newline": True, "cr": False})
            continue
        text = ln[1:]
        flags = None
        if text[-1:] == "\r":
            text = text[:-1]
            flags = {"no_newline": False, "cr": True}
        if not text.isascii():
            text = _display(text)
        if kind == "+":
            row: list[Any] = ["+", text, None, new_no]
            new_no += 1
        elif kind == "-":
            row = ["-", text, old_no, None]
            old_no += 1
        else:
            row = [" ", text, old_no, new_no]
            old_no += 1
            new_no += 1
        if flags:
            row.append(flags)
        add(row)
    return out


@dataclass(slots=True)
class FileDiff:
    path: str
    old_path: str | None
    status: FileStatus
    binary: bool
    added: int
    removed: int
    hunks: list[Hunk]
    mode_change: tuple[str, str] | None = None
    old_mode: str | None = None
    new_mode: str | None = None
    similarity: int | None = None
    index: str | None = None  # "abc123..def456" from git's index line
    binary_patch: str | None = field(default=None, repr=False)  # "GIT binary patch" payload

    @property
    def is_symlink(self) -> bool:
        return "120000" in (self.old_mode, self.new_mode)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": _display(self.path),
            "old_path": _display(self.old_path) if self.old_path is not None else None,
            "status": self.status,
            "binary": self.binary,
            "added": self.added,
            "removed": self.removed,
            "mode_change": list(self.mode_change) if self.mode_change else None,
            "old_mode": self.old_mode,
            "new_mode": self.new_mode,
            "hunks": [
                {
                    "id": h.id,
                    "header": _display(h.header),
                    "old_start": h.old_start,
                    "old_lines": h.old_lines,
                    "new_start": h.new_start,
                    "new_lines": h.new_lines,
                    "lines": h.rows(),
                }
                for h in self.hunks
            ],
        }

    def render(self) -> str:
        """This file's part of a `git apply`-able patch."""
        if self.status == "typechange":
            gone = FileDiff(
                self.path,
                None,
                "deleted",
                self.binary,
                0,
                0,
                [h for h in self.hunks if _only_removals(h)],
                old_mode=self.old_mode,
            )
            new = FileDiff(
                self.path,
                None,
                "added",
                self.binary,
                0,
                0,
                [h for h in self.hunks if not _only_removals(h)],
                new_mode=self.new_mode,
            )
            return gone.render() + new.render()
        old = self.old_path if self.old_path is not None else self.path
        out = [f"diff --git {quote_path('a/' + old)} {quote_path('b/' + self.path)}\n"]
        if self.status == "added":
            out.append(f"new file mode {self.new_mode or '100644'}\n")
        elif self.status == "deleted":
            out.append(f"deleted file mode {self.old_mode or '100644'}\n")
        if self.mode_change:
            out.append(f"old mode {self.mode_change[0]}\nnew mode {self.mode_change[1]}\n")
        if self.status in ("renamed", "copied"):
            verb = "rename" if self.status == "renamed" else "copy"
            if self.similarity is not None:
                out.append(f"similarity index {self.similarity}%\n")
            out.append(f"{verb} from {quote_path(old)}\n{verb} to {quote_path(self.path)}\n")
        if self.index:
            mode = (
                f" {self.new_mode}"
                if self.status in ("modified", "renamed", "copied")
                and not self.mode_change
                and self.new_mode
                else ""
            )
            out.append(f"index {self.index}{mode}\n")
        src = "/dev/null" if self.status == "added" else quote_header_path("a/" + old)
        dst = "/dev/null" if self.status == "deleted" else quote_header_path("b/" + self.path)
        if self.binary:
            if self.binary_patch is not None:
                out.append("GIT binary patch\n" + self.binary_patch)
            else:
                out.append(f"Binary files {src} and {dst} differ\n")
        if self.hunks:  # (never both from git; kept so odd input round-trips)
            out.append(f"--- {src}\n+++ {dst}\n")
            out.extend(h.render() for h in self.hunks)
        return "".join(out)


@dataclass(slots=True)
class Diff:
    base: str
    files: list[FileDiff]
    digest: str = ""  # hash of git's output: equal digests, equal diffs
    # Files changed but not listed (a bounded diff of a huge change; their lines not counted).
    more_files: int = 0
    # What the diff leaves out and why ("too large to review: big.bin (2.0 GB)").
    notes: list[str] = field(default_factory=list)

    def stat(self) -> tuple[int, int, int]:
        """(files changed, lines added, lines removed)."""
        return (
            len(self.files) + self.more_files,
            sum(f.added for f in self.files),
            sum(f.removed for f in self.files),
        )

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "files": [f.to_json() for f in self.files]}

    def unified(self) -> str:
        return "".join(f.render() for f in self.files)

    def find_hunk(self, hunk_id: str) -> tuple[FileDiff, Hunk]:
        for f in self.files:
            for h in f.hunks:
                if h.id == hunk_id:
                    return f, h
        raise NotFound(f"hunk {hunk_id!r} no longer exists; refresh the diff")

    def file(self, path: str) -> FileDiff:
        for f in self.files:
            if path in (f.path, f.old_path):
                return f
        raise NotFound(f"{path!r} has no changes against the base")


def _range(start: int, count: int) -> str:
    return str(start) if count == 1 else f"{start},{count}"


def _only_removals(h: Hunk) -> bool:
    return all(ln.kind == "-" for ln in h.lines)


def _display(s: str) -> str:
    """Undecodable bytes (kept as surrogates to reproduce them) shown as U+FFFD."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _line_json(ln: DiffLine) -> list[Any]:
    row: list[Any] = [ln.kind, _display(ln.text), ln.old_no, ln.new_no]
    if ln.no_newline or ln.cr:
        row.append({"no_newline": ln.no_newline, "cr": ln.cr})
    return row


# --------------------------------------------------------------------------- path quoting

_C_ESCAPES = {
    "\a": "a",
    "\b": "b",
    "\t": "t",
    "\n": "n",
    "\v": "v",
    "\f": "f",
    "\r": "r",
    '"': '"',
    "\\": "\\",
}
_C_UNESCAPES = {v: k for k, v in _C_ESCAPES.items()}


def quote_path(path: str) -> str:
    """git's C-style quoting with core.quotePath=false: only specials and control bytes."""
    if not any(
        c in _C_ESCAPES or ord(c) < 32 or 127 <= ord(c) <= 0x9F or 0xDC80 <= ord(c) <= 0xDCFF for c in path
    ):
        return path
    out = []
    for c in path:
        if c in _C_ESCAPES:
            out.append("\\" + _C_ESCAPES[c])
        elif ord(c) < 32 or ord(c) == 127:
            out.append(f"\\{ord(c):03o}")
        elif 0x80 <= ord(c) <= 0x9F:  # C1 controls (8-bit CSI...): their UTF-8 bytes, as git does
            out.append("".join(f"\\{b:03o}" for b in c.encode()))
        elif 0xDC80 <= ord(c) <= 0xDCFF:  # an undecodable byte
            out.append(f"\\{ord(c) - 0xDC00:03o}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def quote_header_path(path: str) -> str:
    # git appends a tab to ---/+++ names with spaces so `patch` finds where the name ends.
    q = quote_path(path)
    return q + "\t" if " " in path and not q.startswith('"') else q


def _unquote(s: str) -> str:
    """Inverse of git's quoting; octal escapes are bytes (UTF-8, or surrogates if not)."""
    if len(s) < 2 or not (s.startswith('"') and s.endswith('"')):
        return s
    body, out, i = s[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            n = body[i + 1]
            if n in "0123" and re.match(r"[0-7]{3}", body[i + 1 : i + 4]):
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
            out += _C_UNESCAPES.get(n, n).encode("utf-8", "surrogateescape")
            i += 2
            continue
        out += c.encode("utf-8", "surrogateescape")
        i += 1
    return out.decode("utf-8", "surrogateescape")


def _split_quoted(s: str) -> tuple[str, str] | None:
    """First token of `s` if it is a quoted string: (token, rest)."""
    if not s.startswith('"'):
        return None
    i = 1
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == '"':
            return s[: i + 1], s[i + 1 :].lstrip(" ")
        i += 1
    return None


def _strip_prefix(path: str, prefix: str) -> str:
    return path[len(prefix) :] if path.startswith(prefix) else path


def _git_line_paths(rest: str) -> tuple[str | None, str | None]:
    """Paths from the remainder of a `diff --git ` line, or None where ambiguous."""
    first = _split_quoted(rest)
    if first:
        a = _unquote(first[0])
        second = first[1]
        b = _unquote(second) if second.startswith('"') else second
        return _strip_prefix(a, "a/"), _strip_prefix(b, "b/")
    if rest.endswith('"'):
        idx = rest.rfind(' "')
        if idx >= 0:
            return _strip_prefix(rest[:idx], "a/"), _strip_prefix(_unquote(rest[idx + 1 :]), "b/")
    # Unquoted "a/P b/P": without a rename both halves are equal, so split in the middle.
    if len(rest) % 2 == 1:
        half = (len(rest) - 1) // 2
        a, sep, b = rest[:half], rest[half], rest[half + 1 :]
        if sep == " " and a.startswith("a/") and b.startswith("b/") and a[2:] == b[2:]:
            return a[2:], b[2:]
        if sep == " " and a == b:
            return a, b
    return None, None


def _header_path(value: str, prefix: str) -> str | None:
    """A ---/+++ name: None for /dev/null, else unquoted without its prefix or trailing tab."""
    if value.startswith('"'):
        q = _split_quoted(value)
        value = _unquote(q[0]) if q else value
    else:
        value = value.split("\t", 1)[0]
    if value == "/dev/null":
        return None
    return _strip_prefix(value, prefix)


# --------------------------------------------------------------------------- parser

_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class _FileBuilder:
    __slots__ = (
        "a_path",
        "b_path",
        "binary",
        "binary_patch",
        "hunks",
        "index",
        "kind",
        "minus",
        "minus_null",
        "new_mode",
        "old_mode",
        "plus",
        "plus_null",
        "rename_from",
        "rename_to",
        "similarity",
    )

    def __init__(self, a_path: str | None, b_path: str | None) -> None:
        self.a_path, self.b_path = a_path, b_path
        self.minus: str | None = None  # from ---: None = not seen
        self.plus: str | None = None
        self.kind: FileStatus | None = None
        self.old_mode: str | None = None
        self.new_mode: str | None = None
        self.rename_from: str | None = None
        self.rename_to: str | None = None
        self.similarity: int | None = None
        self.index: str | None = None
        self.binary = False
        self.binary_patch: str | None = None
        self.hunks: list[_RawHunk] = []
        self.minus_null = False
        self.plus_null = False

    def build(self) -> FileDiff:
        status: FileStatus
        if self.kind:
            status = self.kind
        elif self.minus_null and not self.plus_null:
            status = "added"
        elif self.plus_null and not self.minus_null:
            status = "deleted"
        else:
            status = "modified"
        new_path = self.rename_to or self.plus or self.b_path
        old_path = self.rename_from or self.minus or self.a_path
        if status == "deleted":
            new_path = old_path or new_path
        if new_path is None:
            new_path = old_path or ""
        mode_change = None
        if (
            status in ("modified", "renamed", "copied")
            and self.old_mode
            and self.new_mode
            and self.old_mode != self.new_mode
        ):
            mode_change = (self.old_mode, self.new_mode)
        added = sum(h.added for h in self.hunks)
        removed = sum(h.removed for h in self.hunks)
        hunks = _with_ids(new_path, self.hunks)
        return FileDiff(
            path=new_path,
            old_path=old_path if status in ("renamed", "copied") else None,
            status=status,
            binary=self.binary,
            added=added,
            removed=removed,
            hunks=hunks,
            mode_change=mode_change,
            old_mode=self.old_mode if status != "added" else None,
            new_mode=self.new_mode if status != "deleted" else None,
            similarity=self.similarity,
            index=self.index,
            binary_patch=self.binary_patch,
        )


class _RawHunk:
    """A parsed hunk before its id is known: header numbers, its body (raw lines, or one
    string from the fast parser), counts, and (if known) the text its id hashes."""

    __slots__ = ("added", "body", "changed", "header", "new_count", "new_start", "old_count", "old_start",
                 "removed", "text")

    def __init__(
        self, header: str, old_start: int, old_count: int, new_start: int, new_count: int,
        body: list[str] | None, added: int, removed: int, changed: str | None, text: str | None = None,
    ) -> None:
        self.header, self.body, self.changed, self.text = header, body, changed, text
        self.old_start, self.old_count, self.new_start, self.new_count = old_start, old_count, new_start, new_count
        self.added, self.removed = added, removed


def _hunk_id(path: str, lines: Iterable[DiffLine], n: int) -> str:
    """Hash of the path and the changed lines (kind, bytes, no-newline mark); `n` numbers
    otherwise identical hunks of one file."""
    parts: list[str] = []
    for ln in lines:
        if ln.kind != " ":
            parts += ("\0", ln.kind, ln.raw(), "\\" if ln.no_newline else "")
    return _id_of(path, "".join(parts), n)


def _id_of(path: str, changed: str, n: int) -> str:
    text = path + changed + (f"\0#{n}" if n else "")
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]


class _IdGroup:
    """A file's hunks: identical hunks of one file are numbered, so ids are made together."""

    __slots__ = ("hunks", "path")

    def __init__(self, path: str, hunks: list[Hunk]) -> None:
        self.path, self.hunks = path, hunks


def _with_ids(path: str, raw: list[_RawHunk]) -> list[Hunk]:
    """The file's hunks; their ids are computed (all at once) when one is first asked for."""
    out = []
    for h in raw:
        hunk = Hunk(None, h.header, h.old_start, h.old_count, h.new_start, h.new_count, raw=h.body, text=h.text)
        hunk._changed = h.changed
        out.append(hunk)
    group = _IdGroup(path, list(out))
    for hunk in out:
        hunk._group = group
    return out


def _changed_text(h: Hunk) -> str:
    if h._changed is not None:
        return h._changed
    text = h._text
    if text is not None and h._lines is None and h._raw is None and not text.startswith("\\") \
            and "\n\\" not in text:
        changed = _CHANGED_RE.findall(text)
        return "\0" + "\0".join(changed) if changed else ""
    parts: list[str] = []
    for ln in h.lines:
        if ln.kind != " ":
            parts += ("\0", ln.kind, ln.raw(), "\\" if ln.no_newline else "")
    return "".join(parts)


def _resolve_ids(hunk: Hunk) -> None:
    group = hunk._group
    if group is None:
        raise ValueError("a hunk without an id or a file to compute it from")
    seen: dict[str, int] = {}
    for h in group.hunks:
        changed = _changed_text(h)
        first = _id_of(group.path, changed, 0)
        n = seen.get(first, 0)
        seen[first] = n + 1
        h._id = first if n == 0 else _id_of(group.path, changed, n)
        h._changed = None
        h._group = None


def parse_unified(text: str) -> list[FileDiff]:
    """Parse `git diff` output (plain unified diffs too) into files.

    Text before the first file header is ignored. A hunk whose body is cut short or a
    malformed hunk header raises UsageError naming the line.
    """
    fast = _parse_git_fast(text)
    if fast is not None:
        return fast
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    files: list[FileDiff] = []
    cur: _FileBuilder | None = None
    i, n = 0, len(lines)

    def finish() -> None:
        nonlocal cur
        if cur is not None:
            files.append(cur.build())
            cur = None

    while i < n:
        line = lines[i]
        if line.startswith("diff --git "):
            finish()
            a, b = _git_line_paths(line[11:])
            cur = _FileBuilder(a, b)
            i += 1
            continue
        if line.startswith("--- ") and i + 1 < n and lines[i + 1].startswith("+++ "):
            if cur is None or cur.hunks or cur.minus is not None or cur.minus_null or cur.binary:
                finish()  # a plain unified diff: "---"/"+++" start a new file
                cur = _FileBuilder(None, None)
            m, p = _header_path(line[4:], "a/"), _header_path(lines[i + 1][4:], "b/")
            cur.minus, cur.minus_null = m, m is None
            cur.plus, cur.plus_null = p, p is None
            i += 2
            continue
        if line.startswith("@@ "):
            hm = _HUNK_RE.match(line)
            if not hm:
                raise UsageError(f"malformed hunk header at diff line {i + 1}: {line[:80]!r}")
            if cur is None:
                cur = _FileBuilder(None, None)
            i = _parse_hunk(lines, i, hm, cur)
            continue
        if cur is not None and not cur.hunks:
            _header_line(cur, line)
            if line == "GIT binary patch":
                j = i + 1
                while j < n and not lines[j].startswith("diff --git "):
                    j += 1
                cur.binary_patch = "".join(f"{x}\n" for x in lines[i + 1 : j])
                i = j
                continue
        i += 1
    finish()
    return _merge_typechanges(files)


_CHANGED_RE = re.compile(r"^[+-].*", re.MULTILINE)


def _parse_git_fast(text: str) -> list[FileDiff] | None:
    """`git diff` output parsed with string searches that run in C: each hunk's lines are
    counted with `str.count` and checked against its header, instead of a Python loop per
    line, and its body is kept as one string until someone needs its lines. Returns None
    for anything unusual (plain diffs, binary patches, a count that does not fit) so that
    `parse_unified`'s line-by-line parser handles it, errors included."""
    if not text.startswith("diff --git ") or "\nGIT binary patch\n" in text:
        return None
    end = len(text) - 1 if text.endswith("\n") else len(text)
    files: list[FileDiff] = []
    pos = 0
    while pos < end:
        nxt = text.find("\ndiff --git ", pos, end)
        seg_end = end if nxt < 0 else nxt
        hpos = text.find("\n@@ ", pos, seg_end)
        head = text[pos : seg_end if hpos < 0 else hpos].split("\n")
        cur = _FileBuilder(*_git_line_paths(head[0][11:]))
        j = 1
        while j < len(head):
            line = head[j]
            if line.startswith("--- ") and j + 1 < len(head) and head[j + 1].startswith("+++ "):
                m, p = _header_path(line[4:], "a/"), _header_path(head[j + 1][4:], "b/")
                cur.minus, cur.minus_null = m, m is None
                cur.plus, cur.plus_null = p, p is None
                j += 2
                continue
            if line.startswith("@@ "):
                return None
            _header_line(cur, line)
            j += 1
        while hpos >= 0:
            nh = text.find("\n@@ ", hpos + 1, seg_end)
            if not _fast_hunk(text, hpos + 1, seg_end if nh < 0 else nh, cur):
                return None
            hpos = nh
        files.append(cur.build())
        pos = seg_end + 1
    return _merge_typechanges(files)


def _fast_hunk(text: str, start: int, end: int, cur: _FileBuilder) -> bool:
    """The hunk at text[start:end] (its "@@" line, then body lines, no final newline)."""
    nl = text.find("\n", start, end)
    header = text[start:end] if nl < 0 else text[start:nl]
    m = _HUNK_RE.match(header)
    if not m:
        return False
    old_start, new_start = int(m[1]), int(m[3])
    old_count = int(m[2]) if m[2] is not None else 1
    new_count = int(m[4]) if m[4] is not None else 1
    if nl < 0:
        nl = end
    nlines = text.count("\n", nl, end)
    plus, minus, ctx = text.count("\n+", nl, end), text.count("\n-", nl, end), text.count("\n ", nl, end)
    if nlines != plus + minus + ctx:
        marks = text.count("\n\\", nl, end)
        if not marks or nlines != plus + minus + ctx + marks:
            return False
        # Rare (a missing final newline): the exact loop decides which line it marks.
        body = text[nl + 1 : end].split("\n")
        return _parse_hunk([header, *body], 0, m, cur) == len(body) + 1
    if ctx + minus != old_count or ctx + plus != new_count:
        return False
    body_text = text[nl + 1 : end] if nl < end else ""
    cur.hunks.append(_RawHunk(header, old_start, old_count, new_start, new_count, None, plus, minus, None,
                              body_text))
    return True


def _header_line(cur: _FileBuilder, line: str) -> None:
    key, _, value = line.partition(" ")
    if line.startswith("new file mode "):
        cur.kind, cur.new_mode = "added", line[14:].strip()
    elif line.startswith("deleted file mode "):
        cur.kind, cur.old_mode = "deleted", line[18:].strip()
    elif key == "old" and value.startswith("mode "):
        cur.old_mode = value[5:].strip()
    elif key == "new" and value.startswith("mode "):
        cur.new_mode = value[5:].strip()
    elif line.startswith(("rename from ", "copy from ")):
        cur.kind = "renamed" if key == "rename" else "copied"
        cur.rename_from = _unquote(line.split(" from ", 1)[1])
    elif line.startswith(("rename to ", "copy to ")):
        cur.kind = "renamed" if key == "rename" else "copied"
        cur.rename_to = _unquote(line.split(" to ", 1)[1])
    elif line.startswith(("similarity index ", "dissimilarity index ")):
        digits = line.rsplit(" ", 1)[1].rstrip("%")
        cur.similarity = int(digits) if digits.isdigit() else None
    elif key == "index" and value:
        ids, _, mode = value.partition(" ")
        cur.index = ids
        if mode.strip():
            cur.old_mode = cur.old_mode or mode.strip()
            cur.new_mode = cur.new_mode or mode.strip()
    elif line.startswith("Binary files ") or line == "GIT binary patch":
        cur.binary = True
        if line.endswith(" differ") and " and " in line:
            # "Binary files a/x and /dev/null differ": the only hint of an add or delete
            # when git printed no mode lines (plain diffs).
            cur.minus_null = cur.minus_null or line.startswith("Binary files /dev/null ")
            cur.plus_null = cur.plus_null or line.endswith(" and /dev/null differ")


def _parse_hunk(lines: list[str], i: int, m: re.Match[str], cur: _FileBuilder) -> int:
    """Check one hunk's body against its header's counts; keep its raw lines (DiffLine
    objects are built lazily) and the text its id hashes."""
    old_start, new_start = int(m[1]), int(m[3])
    old_count = int(m[2]) if m[2] is not None else 1
    new_count = int(m[4]) if m[4] is not None else 1
    header = lines[i]
    start = i + 1
    # Remaining counts; the hot loop of a large diff, so plain locals only.
    old_left, new_left = old_count, new_count
    changed: list[str] = []
    add = changed.append
    last_changed = False  # the previous body line was + or - (for a no-newline mark)
    i = start
    n = len(lines)
    while old_left > 0 or new_left > 0:
        if i >= n:
            raise UsageError(f"diff ends inside the hunk {header[:60]!r}")
        raw = lines[i]
        i += 1
        kind = raw[:1]
        if kind == "+" and new_left > 0:
            new_left -= 1
            add("\0")
            add(raw)
            last_changed = True
        elif kind == "-" and old_left > 0:
            old_left -= 1
            add("\0")
            add(raw)
            last_changed = True
        elif (kind == " " or not raw) and old_left > 0 and new_left > 0:
            # A bare empty line is an empty context line (diff.suppressBlankEmpty).
            old_left -= 1
            new_left -= 1
            last_changed = False
        elif kind == "\\":
            if last_changed:
                add("\\")
                last_changed = False
        else:
            raise UsageError(f"diff line {i} does not fit the hunk {header[:60]!r}: {raw[:60]!r}")
    while i < n and lines[i].startswith("\\"):
        if last_changed:
            add("\\")
            last_changed = False
        i += 1
    body = lines[start:i]
    added = sum(1 for ln in body if ln[:1] == "+")
    removed = old_count - (new_count - added)  # old lines minus the context lines
    cur.hunks.append(
        _RawHunk(header, old_start, old_count, new_start, new_count, body, added, removed, "".join(changed))
    )
    return i


def _merge_typechanges(files: list[FileDiff]) -> list[FileDiff]:
    """git prints a type change (file <-> symlink) as a delete then an add of one path."""
    out: list[FileDiff] = []
    for f in files:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.status == "deleted"
            and f.status == "added"
            and prev.path == f.path
            and prev.old_mode != f.new_mode
        ):
            hunks = prev.hunks + f.hunks
            out[-1] = FileDiff(
                path=f.path,
                old_path=None,
                status="typechange",
                binary=prev.binary or f.binary,
                added=f.added,
                removed=prev.removed,
                hunks=hunks,
                mode_change=(prev.old_mode or "", f.new_mode or ""),
                old_mode=prev.old_mode,
                new_mode=f.new_mode,
            )
            continue
        out.append(f)
    return out


# --------------------------------------------------------------------------- computing


def compute_diff(
    worktree: Path, base: str, *, context: int = 3, paths: Sequence[str] | None = None
) -> Diff:
    """The worktree (tracked + untracked, minus ignored) against `base`; `paths` limits it."""
    if not isinstance(context, int) or isinstance(context, bool) or not 0 <= context <= 10_000:
        raise UsageError(f"invalid context {context!r}: use a number of lines from 0 up")
    top = worktree_root(worktree)
    sha = resolve_commit(top, base)
    out = _diff_against(top, sha, ["-M", f"-U{context}"], paths)
    files = parse_unified(out.decode("utf-8", "surrogateescape"))
    return Diff(base=sha, files=files, digest=hashlib.sha1(out).hexdigest())


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


def check_path(path: str) -> str:
    p = Path(path)
    if not path or p.is_absolute() or ".." in p.parts or "\0" in path:
        raise UsageError(f"invalid path {path!r}: give a path relative to the worktree")
    return path


# --------------------------------------------------------------------------- rendering helpers


def diff_stat_text(diff: Diff, width: int = 80) -> str:
    """A `git diff --stat` style summary."""
    notes = "".join(f" ({note})\n" for note in diff.notes)
    if not diff.files:
        return notes + (" 0 files changed\n" if not diff.more_files else f" {diff.more_files} files changed\n")
    names = [_stat_name(f) for f in diff.files]
    counts = ["Bin" if f.binary else str(f.added + f.removed) for f in diff.files]
    name_w = min(max(len(s) for s in names), max(20, width // 2))
    count_w = max(len(c) for c in counts)
    bar_w = max(10, width - name_w - count_w - 5)
    biggest = max((f.added + f.removed for f in diff.files), default=0)
    rows = []
    for f, name, count in zip(diff.files, names, counts, strict=True):
        if len(name) > name_w:
            name = "..." + name[-(name_w - 3) :]
        total = f.added + f.removed
        plus, minus = f.added, f.removed
        if biggest > bar_w and total:
            plus = round(f.added * bar_w / biggest)
            minus = round(f.removed * bar_w / biggest)
            if f.added and not plus:
                plus = 1
            if f.removed and not minus:
                minus = 1
        bar = "" if f.binary else "+" * plus + "-" * minus
        rows.append(f" {name.ljust(name_w)} | {count.rjust(count_w)} {bar}".rstrip() + "\n")
    if diff.more_files:
        rows.append(f" ... and {diff.more_files} more file{'s' if diff.more_files != 1 else ''}\n")
    rows.append(notes)
    nfiles, added, removed = diff.stat()
    summary = f" {nfiles} file{'s' if nfiles != 1 else ''} changed"
    if added or not removed:
        summary += f", {added} insertion{'s' if added != 1 else ''}(+)"
    if removed or not added:
        summary += f", {removed} deletion{'s' if removed != 1 else ''}(-)"
    return "".join(rows) + summary + "\n"


def _stat_name(f: FileDiff) -> str:
    path = _display(f.path)
    if f.old_path is None or f.old_path == f.path:
        return quote_path(path)
    old = _display(f.old_path)
    # Compact "dir/{old => new}/rest" like git when the names share leading/trailing dirs.
    o_parts, n_parts = old.split("/"), path.split("/")
    pre = 0
    while pre < min(len(o_parts), len(n_parts)) - 1 and o_parts[pre] == n_parts[pre]:
        pre += 1
    post = 0
    while (
        post < min(len(o_parts), len(n_parts)) - pre - 1
        and o_parts[-1 - post] == n_parts[-1 - post]
    ):
        post += 1
    if pre == 0 and post == 0:
        return f"{old} => {path}"
    mid_o = "/".join(o_parts[pre : len(o_parts) - post])
    mid_n = "/".join(n_parts[pre : len(n_parts) - post])
    head = "/".join(o_parts[:pre]) + ("/" if pre else "")
    tail = ("/" if post else "") + "/".join(o_parts[len(o_parts) - post :])
    return f"{head}{{{mid_o} => {mid_n}}}{tail}"


_TOKEN_RE = re.compile(r"\w+|\s+|[^\w\s]", re.UNICODE)
_WORD_DIFF_MAX = 4000


def word_diff(old: str, new: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Changed character spans [start, end) in `old` and in `new`, by word tokens."""
    if old == new:
        return [], []
    if len(old) + len(new) > _WORD_DIFF_MAX:  # too long to be worth a token match
        return ([(0, len(old))] if old else []), ([(0, len(new))] if new else [])
    a = [m.span() for m in _TOKEN_RE.finditer(old)]
    b = [m.span() for m in _TOKEN_RE.finditer(new)]
    sm = difflib.SequenceMatcher(
        None, [old[s:e] for s, e in a], [new[s:e] for s, e in b], autojunk=False
    )
    spans_a: list[tuple[int, int]] = []
    spans_b: list[tuple[int, int]] = []
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            continue
        if i2 > i1:
            _add_span(spans_a, a[i1][0], a[i2 - 1][1])
        if j2 > j1:
            _add_span(spans_b, b[j1][0], b[j2 - 1][1])
    return spans_a, spans_b


def _add_span(spans: list[tuple[int, int]], start: int, end: int) -> None:
    if spans and spans[-1][1] == start:
        spans[-1] = (spans[-1][0], end)
    else:
        spans.append((start, end))
