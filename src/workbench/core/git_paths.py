"""File names as git prints them in a diff, and the paths a caller may ask a diff about.

git C-quotes a name that holds a special or control byte (with core.quotePath=false, every
other character is printed as it is); `quote_path` writes names that way so a rendered patch
is byte for byte what git would print, and `unquote_path` reads them back. Names are str
with undecodable bytes kept as surrogates (surrogateescape), so any byte survives the round
trip. `diff_git_paths` and `header_path` take a file's names from a `diff --git` line and a
`---`/`+++` line.
"""

from __future__ import annotations

import re
from pathlib import Path

from workbench.errors import UsageError

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
    """A name for a ---/+++ line."""
    # git appends a tab to ---/+++ names with spaces so `patch` finds where the name ends.
    q = quote_path(path)
    return q + "\t" if " " in path and not q.startswith('"') else q


def unquote_path(s: str) -> str:
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


def diff_git_paths(rest: str) -> tuple[str | None, str | None]:
    """Paths from the remainder of a `diff --git ` line, or None where ambiguous."""
    first = _split_quoted(rest)
    if first:
        a = unquote_path(first[0])
        second = first[1]
        b = unquote_path(second) if second.startswith('"') else second
        return _strip_prefix(a, "a/"), _strip_prefix(b, "b/")
    if rest.endswith('"'):
        idx = rest.rfind(' "')
        if idx >= 0:
            return _strip_prefix(rest[:idx], "a/"), _strip_prefix(unquote_path(rest[idx + 1 :]), "b/")
    # Unquoted "a/P b/P": without a rename both halves are equal, so split in the middle.
    if len(rest) % 2 == 1:
        half = (len(rest) - 1) // 2
        a, sep, b = rest[:half], rest[half], rest[half + 1 :]
        if sep == " " and a.startswith("a/") and b.startswith("b/") and a[2:] == b[2:]:
            return a[2:], b[2:]
        if sep == " " and a == b:
            return a, b
    return None, None


def header_path(value: str, prefix: str) -> str | None:
    """A ---/+++ name: None for /dev/null, else unquoted without its prefix or trailing tab."""
    if value.startswith('"'):
        q = _split_quoted(value)
        value = unquote_path(q[0]) if q else value
    else:
        value = value.split("\t", 1)[0]
    if value == "/dev/null":
        return None
    return _strip_prefix(value, prefix)


def check_path(path: str) -> str:
    """`path` if it names something inside a worktree (relative, no `..`), else UsageError."""
    p = Path(path)
    if not path or p.is_absolute() or ".." in p.parts or "\0" in path:
        raise UsageError(f"invalid path {path!r}: give a path relative to the worktree")
    return path
