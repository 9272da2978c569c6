"""`git diff` output (and plain unified diffs) parsed into files and hunks.

`parse_unified` is the entry point. Ordinary `git diff` output goes through
`parse_git_fast`, which finds and checks each hunk with string searches that run in C;
anything unusual (plain diffs, binary patches, a hunk whose counts do not fit) is left to
`parse_unified_exact`, the line-by-line parser, which also names the line of any error.
Both give the same files; git's way of printing a type change (a delete then an add of one
path) is merged back into one "typechange" file.
"""

from __future__ import annotations

import re

from workbench.core.diff_hunk import ParsedHunk, hunks_with_ids
from workbench.core.diff_model import FileDiff, FileStatus
from workbench.core.git_paths import diff_git_paths, header_path, unquote_path
from workbench.errors import UsageError

_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


class _FileBuilder:
    """What one file's header lines and hunks said so far; `build` makes its FileDiff."""

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
        self.hunks: list[ParsedHunk] = []
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
        hunks = hunks_with_ids(new_path, self.hunks)
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


def parse_unified(text: str) -> list[FileDiff]:
    """Parse `git diff` output (plain unified diffs too) into files.

    Text before the first file header is ignored. A hunk whose body is cut short or a
    malformed hunk header raises UsageError naming the line.
    """
    fast = parse_git_fast(text)
    return fast if fast is not None else parse_unified_exact(text)


def parse_unified_exact(text: str) -> list[FileDiff]:
    """`parse_unified`'s line-by-line parser: any unified diff, every line checked."""
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
            a, b = diff_git_paths(line[11:])
            cur = _FileBuilder(a, b)
            i += 1
            continue
        if line.startswith("--- ") and i + 1 < n and lines[i + 1].startswith("+++ "):
            if cur is None or cur.hunks or cur.minus is not None or cur.minus_null or cur.binary:
                finish()  # a plain unified diff: "---"/"+++" start a new file
                cur = _FileBuilder(None, None)
            m, p = header_path(line[4:], "a/"), header_path(lines[i + 1][4:], "b/")
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


def parse_git_fast(text: str) -> list[FileDiff] | None:
    """`git diff` output parsed with string searches that run in C: each hunk's lines are
    counted with `str.count` and checked against its header, instead of a Python loop per
    line, and its body is kept as one string until someone needs its lines. Returns None
    for anything unusual (plain diffs, binary patches, a count that does not fit) so that
    `parse_unified_exact` handles it, errors included."""
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
        cur = _FileBuilder(*diff_git_paths(head[0][11:]))
        j = 1
        while j < len(head):
            line = head[j]
            if line.startswith("--- ") and j + 1 < len(head) and head[j + 1].startswith("+++ "):
                m, p = header_path(line[4:], "a/"), header_path(head[j + 1][4:], "b/")
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
    cur.hunks.append(ParsedHunk(header, old_start, old_count, new_start, new_count, None, plus, minus, None,
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
        cur.rename_from = unquote_path(line.split(" from ", 1)[1])
    elif line.startswith(("rename to ", "copy to ")):
        cur.kind = "renamed" if key == "rename" else "copied"
        cur.rename_to = unquote_path(line.split(" to ", 1)[1])
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
        ParsedHunk(header, old_start, old_count, new_start, new_count, body, added, removed, "".join(changed))
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
