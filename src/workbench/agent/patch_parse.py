"""Parse the `*** Begin Patch` edit format (Codex `apply_patch`) into file operations.

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

Parsing is lenient where models slip (a heredoc or Markdown fence around the patch, git's
`@@ -1,2 +1,3 @@` headers, blank separator lines) and strict everywhere else, with errors
worded for the model. Paths are checked lexically here; `patch_write` opens them safely.
Standard library only: the sandboxed helper imports it (see `patch`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

BEGIN = "*** Begin Patch"
END = "*** End Patch"
ADD = "*** Add File: "
DELETE = "*** Delete File: "
UPDATE = "*** Update File: "
MOVE = "*** Move to: "
EOF_MARK = "*** End of File"

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
