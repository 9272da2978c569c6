"""Match a patch's hunks against a file's text and splice them in.

Models copy context lines imperfectly, so each hunk is sought exactly first, then ignoring
trailing and surrounding whitespace, then with typographic punctuation folded to ASCII: an
exact match anywhere always wins over a fuzzy one. A hunk that matches nowhere fails with
the closest window and its first differing line, so the model can fix its next try.
Standard library only: the sandboxed helper imports it (see `patch`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from workbench.agent.patch_parse import Chunk, PatchError

# Shown at the end of most errors: the fix is nearly always to look at the file again.
_REREAD = "Re-read the file and retry with context lines copied exactly from it."

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


def apply_chunks(content: str, chunks: list[Chunk], path: str) -> str:
    """`content` with every hunk applied, keeping its line endings and BOM. Raises PatchError
    (worded for the model, with the closest match) when a hunk's lines are not in the file."""
    return _splice(_Text.parse(content), chunks, path).render()


def _splice(text: _Text, chunks: list[Chunk], path: str) -> _Text:
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

