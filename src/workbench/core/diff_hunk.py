"""One hunk of a diff: its lines, its wire rows, its patch text and its stable id.

A hunk's id is a hash of its file's path and its changed lines (kind, bytes, no-newline
mark), so it survives recomputing the diff as long as that hunk itself is unchanged;
otherwise identical hunks of one file are numbered. A parsed hunk keeps its raw text and
works out its lines and its id on first use: a large diff's file list is ready long before
every line is needed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

LineKind = Literal[" ", "+", "-"]

# The changed lines of a hunk body whose lines all start with one of " +-".
_CHANGED_RE = re.compile(r"^[+-].*", re.MULTILINE)


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
    it was parsed from."""

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
        self._group: _IdGroup | None = None  # set by hunks_with_ids when the id is computed lazily
        self._changed: str | None = None  # what the id hashes, if the parser already had it
        if lines is None and raw is None and text is None:
            self._lines = []

    @property
    def id(self) -> str:
        if self._id is None:
            _resolve_ids(self)
        assert self._id is not None
        return self._id

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
        return list(self.iter_rows())

    def iter_rows(self) -> Iterator[list[Any]]:
        """`rows`, one at a time: a caller that encodes as it goes never holds them all."""
        if self._lines is not None:
            return map(_line_json, self._lines)
        # Split for this call only (not `_raw_lines`, which keeps the split): a kept diff
        # holds each hunk's text as one string, not a string a line that Python's allocator
        # keeps the memory of after the diff goes.
        raw = self._raw if self._raw is not None else (self._text.split("\n") if self._text else [])
        return _iter_raw_rows(raw, self.old_start, self.new_start)

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


def display_text(s: str) -> str:
    """Undecodable bytes (kept as surrogates to reproduce them) shown as U+FFFD."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _range(start: int, count: int) -> str:
    return str(start) if count == 1 else f"{start},{count}"


def _line_json(ln: DiffLine) -> list[Any]:
    row: list[Any] = [ln.kind, display_text(ln.text), ln.old_no, ln.new_no]
    if ln.no_newline or ln.cr:
        row.append({"no_newline": ln.no_newline, "cr": ln.cr})
    return row


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


def _iter_raw_rows(raw: list[str], old_no: int, new_no: int) -> Iterator[list[Any]]:
    """Wire rows straight from raw lines, without building DiffLine objects. A row is held
    back until the next line: a "\\ No newline" line after it sets its flags."""
    row: list[Any] | None = None
    for ln in raw:
        kind = ln[:1]
        if kind == "\\":
            if row is not None:
                if len(row) == 5:
                    row[4]["no_newline"] = True
                else:
                    row.append({"no_newline": True, "cr": False})
            continue
        if row is not None:
            yield row
        text = ln[1:]
        flags = None
        if text[-1:] == "\r":
            text = text[:-1]
            flags = {"no_newline": False, "cr": True}
        if not text.isascii():
            text = display_text(text)
        if kind == "+":
            row = ["+", text, None, new_no]
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
    if row is not None:
        yield row


# --------------------------------------------------------------------------- ids


@dataclass(slots=True)
class ParsedHunk:
    """A hunk as the parser read it, before its id is known: header numbers, its body (raw
    lines, or one string from the fast parser), counts, and (if known) the text its id hashes."""

    header: str
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    body: list[str] | None
    added: int
    removed: int
    changed: str | None
    text: str | None = None


class _IdGroup:
    """A file's hunks: identical hunks of one file are numbered, so ids are made together."""

    __slots__ = ("hunks", "path")

    def __init__(self, path: str, hunks: list[Hunk]) -> None:
        self.path, self.hunks = path, hunks


def hunks_with_ids(path: str, parsed: list[ParsedHunk]) -> list[Hunk]:
    """The file's hunks; their ids are computed (all at once) when one is first asked for."""
    out = []
    for h in parsed:
        hunk = Hunk(None, h.header, h.old_start, h.old_count, h.new_start, h.new_count, raw=h.body, text=h.text)
        hunk._changed = h.changed
        out.append(hunk)
    group = _IdGroup(path, list(out))
    for hunk in out:
        hunk._group = group
    return out


def _id_of(path: str, changed: str, n: int) -> str:
    text = path + changed + (f"\0#{n}" if n else "")
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def _changed_text(h: Hunk) -> str:
    """What the id hashes: "\\0", kind, bytes and "\\" if marked, for each changed line."""
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
