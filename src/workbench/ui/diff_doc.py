"""A session's diff prepared for display: syntax highlighting, word-level change marks,
and the rows of the unified and side-by-side views. Headless and thread-safe to build,
so the viewer runs `prepare()` in a worker thread and only paints on the event loop.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_for_filename
from pygments.util import ClassNotFound
from rich.style import Style
from rich.syntax import PygmentsSyntaxTheme

from workbench.core import review_noise
from workbench.core.diff_render import word_diff
from workbench.core.escapes import one_line

LARGE_FILE_LINES = 600  # a file with more diff lines than this starts collapsed
HUGE_HUNK_LINES = 250  # so does a hunk this long
MAX_HIGHLIGHT_CHARS = 100_000  # longer hunks are shown without syntax colours
PLAIN_FIRST_LINES = 3000  # a diff this long is shown plain first, then again with colours
WORD_DIFF_MAX_SHARE = 0.7  # more of a line changed than this: no word marks, the line says it

Span = tuple[str, Style, bool]  # text, syntax style, changed word

_CONTROL = {c: chr(0x2400 + c) for c in range(32)} | {0x7F: "␡", 0x09: "    "}
_CONTROL |= {c: "\ufffd" for c in range(0x80, 0xA0)}


def clean(text: str) -> str:
    """Control characters from a diff shown as symbols; they must never reach the terminal."""
    return text.translate(_CONTROL)


@dataclass(slots=True)
class PLine:
    kind: str  # " " context, "+" added, "-" removed
    old_no: int | None
    new_no: int | None
    spans: list[Span]
    no_newline: bool = False

    @property
    def text(self) -> str:
        return "".join(s[0] for s in self.spans)


@dataclass(slots=True)
class PHunk:
    id: str
    header: str
    old_start: int
    old_lines: int
    new_start: int
    new_lines: int
    reviewed: bool
    size: int  # number of lines
    lines: list[PLine] | None  # None: collapsed and not prepared yet
    omitted: bool = False  # the daemon left this hunk's lines out (reply budget): load the file

    def new_range(self) -> tuple[int, int]:
        """The hunk's lines in the file as it is now (for a comment on the whole hunk)."""
        start = max(1, self.new_start)
        return start, max(start, self.new_start + self.new_lines - 1)


@dataclass(slots=True)
class PFile:
    path: str
    old_path: str | None
    status: str
    binary: bool
    added: int
    removed: int
    key: str
    review_status: str
    omitted: bool  # the daemon left the hunks out of this page; fetch with `paths`
    collapsed: bool
    hunks: list[PHunk]
    mode_change: tuple[str, str] | None = None

    @property
    def label(self) -> str:
        path = one_line(self.path, 200)
        if self.old_path and self.old_path != self.path:
            return f"{one_line(self.old_path, 120)} → {path}"
        return path

    @property
    def size(self) -> int:
        return sum(h.size for h in self.hunks)


@dataclass(slots=True)
class Row:
    """One screen line. `kind`: file | hunk | line | fold | note | comment."""

    kind: str
    file: int
    hunk: int = -1
    text: str = ""
    left: PLine | None = None  # unified: the line; split: the old side
    right: PLine | None = None  # split: the new side
    anchor: int | None = None  # the line a comment here refers to (the file as it is now)


@dataclass
class DiffDoc:
    files: list[PFile]
    base: str = ""
    stat: dict[str, int] = field(default_factory=dict)
    review: dict[str, Any] = field(default_factory=dict)
    check: dict[str, Any] | None = None
    next_offset: int | None = None
    dark: bool = True
    # What the daemon left out and why ("too large to review (not imported): big.bin").
    notes: list[str] = field(default_factory=list)
    # "ignored: 2 files (node_modules/, ...)": build artefacts the daemon lists apart
    ignored: str = ""

    @property
    def gutter(self) -> int:
        top = 1
        for f in self.files:
            for h in f.hunks:
                top = max(top, h.old_start + h.old_lines, h.new_start + h.new_lines)
        return max(3, len(str(top)))

    def hunk_count(self) -> tuple[int, int]:
        """(reviewed, total) hunks; files without hunks count as one."""
        done = total = 0
        for f in self.files:
            if f.hunks:
                total += len(f.hunks)
                done += sum(1 for h in f.hunks if h.reviewed)
            else:
                total += 1
                done += f.review_status == "reviewed"
        return done, total

    def pending(self) -> tuple[int, int]:
        """(rejections, comments) not sent to the agent yet."""
        rej = [r for r in self.review.get("rejections") or [] if isinstance(r, dict) and not r.get("sent")]
        com = [c for c in self.review.get("comments") or [] if isinstance(c, dict) and not c.get("sent")]
        return len(rej), len(com)


# --------------------------------------------------------------------------- highlighting


class Highlighter:
    """Pygments colours as Rich styles, per file type; one instance per prepare run."""

    def __init__(self, dark: bool, enabled: bool = True) -> None:
        self.enabled = enabled
        self.theme = PygmentsSyntaxTheme("monokai" if dark else "friendly")
        self._lexers: dict[str, Lexer | None] = {}
        self._styles: dict[Any, Style] = {}

    def lexer(self, path: str) -> Lexer | None:
        if not self.enabled:
            return None
        name = path.rsplit("/", 1)[-1]
        key = "." + name.rsplit(".", 1)[-1] if "." in name else name  # one lookup per file type
        if key not in self._lexers:
            try:
                self._lexers[key] = get_lexer_for_filename(name, stripnl=False, ensurenl=False)
            except (ClassNotFound, ValueError):
                self._lexers[key] = None
        return self._lexers[key]

    def style(self, token: Any) -> Style:
        st = self._styles.get(token)
        if st is None:
            full = self.theme.get_style_for_token(token)
            # Only the foreground: the diff owns the background (added / removed / marks).
            st = self._styles[token] = Style(color=full.color, bold=full.bold, italic=full.italic)
        return st

    def lines(self, lexer: Lexer | None, texts: list[str]) -> list[list[tuple[str, Style]]]:
        """Each text line as (piece, style) runs. Lines are lexed together for context."""
        plain = Style()
        if lexer is None or sum(len(t) for t in texts) > MAX_HIGHLIGHT_CHARS:
            return [[(t, plain)] if t else [] for t in texts]
        out: list[list[tuple[str, Style]]] = [[]]
        for token, value in lexer.get_tokens("\n".join(texts)):
            style = self.style(token)
            parts = value.split("\n")
            for i, part in enumerate(parts):
                if i:
                    out.append([])
                if part:
                    out[-1].append((part, style))
        while len(out) < len(texts):
            out.append([])
        return out[: len(texts)]


def _with_marks(runs: list[tuple[str, Style]], marks: list[tuple[int, int]]) -> list[Span]:
    """Split highlighted runs at the word-diff spans."""
    if not marks:
        return [(t, s, False) for t, s in runs]
    out: list[Span] = []
    pos = 0
    for text, style in runs:
        start, end = pos, pos + len(text)
        cut = sorted({start, end, *(x for a, b in marks for x in (a, b) if start < x < end)})
        for a, b in itertools.pairwise(cut):
            marked = any(ma <= a and b <= mb for ma, mb in marks)
            out.append((text[a - start : b - start], style, marked))
        pos = end
    return out


def _word_marks(old: str, new: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    a, b = word_diff(old, new)
    changed_a = sum(e - s for s, e in a)
    changed_b = sum(e - s for s, e in b)
    if (old and changed_a > WORD_DIFF_MAX_SHARE * len(old)) or (new and changed_b > WORD_DIFF_MAX_SHARE * len(new)):
        return [], []
    return a, b


def prepare_hunk(raw: dict[str, Any], hl: Highlighter, lexer: Lexer | None) -> list[PLine]:
    rows = [r for r in raw.get("lines") or [] if isinstance(r, list) and len(r) >= 4]
    kinds = [str(r[0]) for r in rows]
    texts = [str(r[1]) for r in rows]
    # The new side (context and additions) is lexed as one text, the removals as another:
    # context lines are lexed once.
    new_idx = [i for i, k in enumerate(kinds) if k in (" ", "+")]
    old_idx = [i for i, k in enumerate(kinds) if k == "-"]
    runs: list[list[tuple[str, Style]]] = [[] for _ in rows]
    for idx in (old_idx, new_idx):
        for i, line_runs in zip(idx, hl.lines(lexer, [texts[i] for i in idx]), strict=False):
            runs[i] = line_runs
    marks: list[list[tuple[int, int]]] = [[] for _ in rows]
    i = 0
    while i < len(rows):  # pair each run of removals with the additions right after it
        if kinds[i] != "-":
            i += 1
            continue
        j = i
        while j < len(rows) and kinds[j] == "-":
            j += 1
        k = j
        while k < len(rows) and kinds[k] == "+":
            k += 1
        for a, b in zip(range(i, j), range(j, k), strict=False):
            marks[a], marks[b] = _word_marks(texts[a], texts[b])
        i = k
    out = []
    for n, r in enumerate(rows):
        flags = r[4] if len(r) > 4 and isinstance(r[4], dict) else {}
        out.append(PLine(kinds[n], r[2] if isinstance(r[2], int) else None, r[3] if isinstance(r[3], int) else None,
                         _with_marks(runs[n], marks[n]), bool(flags.get("no_newline"))))
    return out


HunkCache = dict[tuple[str, bool, bool], list[PLine]]


def line_count(result: Mapping[str, Any]) -> int:
    return sum(len(h.get("lines") or []) for f in result.get("files") or [] if isinstance(f, dict)
               for h in f.get("hunks") or [] if isinstance(h, dict))


def prepare(result: Mapping[str, Any], opened: set[str], cache: HunkCache | None = None,
            dark: bool = True, closed: set[str] | None = None, highlight: bool = True) -> DiffDoc:
    """The `diff` method's result -> a DiffDoc. Large files and huge hunks stay collapsed,
    and are not highlighted, until opened (their key or id is in `opened`); files whose key
    is in `closed` are collapsed too. `cache` keeps prepared hunks by id, which stays the
    same while the hunk does."""
    closed = closed or set()
    hl = Highlighter(dark, highlight)
    cache = {} if cache is None else cache
    files: list[PFile] = []
    for raw in result.get("files") or []:
        if not isinstance(raw, dict):
            continue
        path = str(raw.get("path", ""))
        raw_hunks = raw.get("hunks") if isinstance(raw.get("hunks"), list) else None
        omitted = bool(raw.get("omitted")) or (raw_hunks is None and not raw.get("binary"))
        key = str(raw.get("key") or path)
        total = sum(len(h.get("lines") or []) for h in raw_hunks or [] if isinstance(h, dict))
        collapsed = key in closed or ((omitted or total > LARGE_FILE_LINES) and key not in opened)
        mc = raw.get("mode_change")
        f = PFile(path, raw.get("old_path") or None, str(raw.get("status") or "modified"), bool(raw.get("binary")),
                  int(raw.get("added") or 0), int(raw.get("removed") or 0), key,
                  str(raw.get("review_status") or "unreviewed"), omitted, collapsed, [],
                  (str(mc[0]), str(mc[1])) if isinstance(mc, list) and len(mc) == 2 else None)
        lexer = hl.lexer(path) if not f.binary else None
        for h in raw_hunks or []:
            if not isinstance(h, dict):
                continue
            hid = str(h.get("id", ""))
            hunk_omitted = not isinstance(h.get("lines"), list)
            size = len(h.get("lines") or [])
            lines: list[PLine] | None = None
            if not collapsed and not hunk_omitted and (size <= HUGE_HUNK_LINES or hid in opened):
                lines = cache.get((hid, dark, highlight))
                if lines is None:
                    lines = cache[(hid, dark, highlight)] = prepare_hunk(h, hl, lexer)
            f.hunks.append(PHunk(hid, str(h.get("header", "")), int(h.get("old_start") or 0),
                                 int(h.get("old_lines") or 0), int(h.get("new_start") or 0),
                                 int(h.get("new_lines") or 0), bool(h.get("reviewed")), size, lines,
                                 hunk_omitted))
        files.append(f)
    stat = result.get("stat") if isinstance(result.get("stat"), dict) else {}
    review = result.get("review") if isinstance(result.get("review"), dict) else {}
    check = result.get("check") if isinstance(result.get("check"), dict) else None
    nxt = result.get("next")
    notes = [one_line(n, 300) for n in result.get("notes") or [] if isinstance(n, str)]
    where = [one_line(w, 200) for w in result.get("ignored_where") or [] if isinstance(w, str)]
    ignored = review_noise.summary(int(result.get("ignored") or 0), where)
    return DiffDoc(files, one_line(str(result.get("base") or ""), 40), dict(stat or {}), dict(review or {}),
                   check, nxt if isinstance(nxt, int) else None, dark, notes, ignored)


# --------------------------------------------------------------------------- rows


def _anchors(lines: list[PLine], deleted: bool) -> list[int | None]:
    """For each line, the line number a comment on it uses: its own line in the file as it
    is now; a removed line uses the next line that is still there (for a deleted file, the
    old numbers)."""
    if deleted:
        return [ln.old_no for ln in lines]
    out: list[int | None] = [None] * len(lines)
    nxt: int | None = None
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].new_no is not None:
            nxt = lines[i].new_no
        out[i] = lines[i].new_no if lines[i].new_no is not None else nxt
    last = None
    for i, v in enumerate(out):  # removals at the very end: the line before them
        if v is None:
            out[i] = last
        last = out[i]
    return out


def _comment_rows(doc: DiffDoc, fi: int) -> dict[int, list[str]]:
    """Pending comments of file `fi` by the line they end on."""
    out: dict[int, list[str]] = {}
    path = doc.files[fi].path
    for c in doc.review.get("comments") or []:
        if isinstance(c, dict) and c.get("path") == path:
            end = int(c.get("end_line") or c.get("line") or 0)
            where = f"{c.get('line')}" if end == c.get("line") else f"{c.get('line')}-{end}"
            sent = " (sent)" if c.get("sent") else ""
            out.setdefault(end, []).append(f"✎ line {where}: {one_line(str(c.get('text', '')), 300)}{sent}")
    return out


def layout(doc: DiffDoc, split: bool) -> list[Row]:
    rows: list[Row] = []
    for fi, f in enumerate(doc.files):
        rows.append(Row("file", fi))
        for r in doc.review.get("rejections") or []:
            if isinstance(r, dict) and r.get("path") == f.path and not r.get("sent"):
                reason = f": {one_line(str(r['reason']), 200)}" if r.get("reason") else ""
                rows.append(Row("note", fi, text=f"✖ rejected {one_line(str(r.get('header') or 'whole file'), 60)}"
                                              f"{reason}"))
        if f.collapsed:
            what = "not loaded yet" if f.omitted else f"{f.size} lines"
            rows.append(Row("fold", fi, text=f"▸ {what} — enter opens"))
            continue
        if f.binary:
            rows.append(Row("note", fi, text="binary file — not shown"))
        elif not f.hunks:
            rows.append(Row("note", fi, text="no line changes (mode or rename only)"))
        comments = _comment_rows(doc, fi)
        placed: set[int] = set()
        for hi, h in enumerate(f.hunks):
            rows.append(Row("hunk", fi, hi, anchor=h.new_range()[0]))
            if h.lines is None:
                what = "not loaded yet" if h.omitted else f"{h.size} lines"
                rows.append(Row("fold", fi, hi, text=f"▸ {what} — enter opens"))
                continue
            anchors = _anchors(h.lines, f.status == "deleted")
            if split:
                _split_rows(rows, fi, hi, h.lines, anchors, comments, placed, f.status == "deleted")
            else:
                for ln, anchor in zip(h.lines, anchors, strict=True):
                    rows.append(Row("line", fi, hi, left=ln, anchor=anchor))
                    _place_comments(rows, fi, hi, ln, comments, placed, f.status == "deleted")
        for end, texts in sorted(comments.items()):  # comments on lines outside every hunk
            if end not in placed:
                rows += [Row("comment", fi, text=t) for t in texts]
    return rows


def _place_comments(rows: list[Row], fi: int, hi: int, ln: PLine | None, comments: dict[int, list[str]],
                    placed: set[int], deleted: bool) -> None:
    if ln is None:
        return
    no = ln.old_no if deleted else ln.new_no
    if no is not None and no in comments and no not in placed:
        placed.add(no)
        rows += [Row("comment", fi, hi, text=t) for t in comments[no]]


def _split_rows(rows: list[Row], fi: int, hi: int, lines: list[PLine], anchors: list[int | None],
                comments: dict[int, list[str]], placed: set[int], deleted: bool) -> None:
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.kind == " ":
            rows.append(Row("line", fi, hi, left=ln, right=ln, anchor=anchors[i]))
            _place_comments(rows, fi, hi, ln, comments, placed, deleted)
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].kind == "-":
            j += 1
        k = j
        while k < len(lines) and lines[k].kind == "+":
            k += 1
        olds, news = list(range(i, j)), list(range(j, k))
        for n in range(max(len(olds), len(news))):
            left = lines[olds[n]] if n < len(olds) else None
            right = lines[news[n]] if n < len(news) else None
            anchor = anchors[news[n]] if n < len(news) else anchors[olds[n]]
            rows.append(Row("line", fi, hi, left=left, right=right, anchor=anchor))
            _place_comments(rows, fi, hi, left if deleted else right, comments, placed, deleted)
        i = max(k, i + 1)


def file_rows(rows: list[Row]) -> list[int]:
    return [i for i, r in enumerate(rows) if r.kind == "file"]


def hunk_rows(rows: list[Row]) -> list[int]:
    return [i for i, r in enumerate(rows) if r.kind == "hunk"]
