"""The diff itself, unified or side by side, painted with the line API from prepared rows.

A cursor row picks the hunk (or, with a selection, the line range) that the review keys
act on. The widget only navigates and paints; actions go out as `DiffView.Act` messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.color import Color
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from workbench.ui.diff_doc import DiffDoc, PFile, PHunk, PLine, Row, clean, file_rows, hunk_rows

STATUS_LETTER = {"added": "A", "modified": "M", "deleted": "D", "renamed": "R", "copied": "C",
                 "typechange": "T"}
REVIEW_MARK = {"reviewed": ("✓", "success"), "partial": ("◐", "warning"), "unreviewed": ("○", "muted")}


@dataclass
class Target:
    """What a review key acts on."""

    file: PFile | None
    hunk: PHunk | None
    line: int | None = None
    end_line: int | None = None


@dataclass
class Palette:
    base: Style
    muted: Style
    added: Style
    added_mark: Style
    removed: Style
    removed_mark: Style
    added_fg: Style
    removed_fg: Style
    hunk: Style
    file: Style
    cursor: Style
    select: Style
    success: Style
    warning: Style
    accent: Style


class DiffView(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    DiffView { height: 1fr; width: 1fr; background: $background; overflow-x: hidden; scrollbar-size-vertical: 1; }
    DiffView:focus { background-tint: $foreground 2%; }
    """
    BINDINGS = [
        Binding("j,down", "move(1)", "Down", show=False, id="diff.down"),
        Binding("k,up", "move(-1)", "Up", show=False, id="diff.up"),
        Binding("pagedown", "page(1)", "Page down", show=False, id="diff.page_down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="diff.page_up"),
        Binding("n", "hunk(1)", "Next hunk", id="diff.next_hunk"),
        Binding("p", "hunk(-1)", "Previous hunk", id="diff.prev_hunk"),
        Binding("right_square_bracket", "file(1)", "Next file", id="diff.next_file"),
        Binding("left_square_bracket", "file(-1)", "Previous file", id="diff.prev_file"),
        Binding("shift+down,J", "extend(1)", "Select down", show=False, id="diff.select_down"),
        Binding("shift+up,K", "extend(-1)", "Select up", show=False, id="diff.select_up"),
        Binding("v", "toggle_split", "Unified / split", id="diff.toggle_split"),
        Binding("enter", "open", "Open / close", id="diff.open"),
        Binding("a", "act('mark')", "Reviewed", id="diff.mark"),
        Binding("A", "act('mark_file')", "File reviewed", id="diff.mark_file"),
        Binding("x", "act('reject')", "Reject hunk", id="diff.reject"),
        Binding("X", "act('revert_file')", "Revert file", id="diff.revert_file"),
        Binding("c", "act('comment')", "Comment", id="diff.comment"),
    ]

    @dataclass
    class Act(Message):
        view: DiffView
        action: str  # mark | mark_file | reject | revert_file | comment | open | split
        target: Target

        @property
        def control(self) -> DiffView:
            return self.view

    @dataclass
    class Moved(Message):
        """The cursor moved into another file."""

        view: DiffView
        file: int

        @property
        def control(self) -> DiffView:
            return self.view

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._last_file = -1
        self.doc: DiffDoc | None = None
        self.rows: list[Row] = []
        self.split = False
        self.cursor = 0
        self.sel_start: int | None = None  # selection start (a row), None: no selection
        self._files: list[int] = []
        self._hunks: list[int] = []
        self._cache: LRUCache[tuple[object, ...], Strip] = LRUCache(2048)
        self._version = 0
        self._palette: tuple[str, Palette] | None = None

    # data

    def set_rows(self, doc: DiffDoc, rows: list[Row], split: bool) -> None:
        """Show new rows; the cursor stays on the same hunk (by id) or file when they remain."""
        keep = self._position()
        self.doc, self.rows, self.split = doc, rows, split
        self._files, self._hunks = file_rows(rows), hunk_rows(rows)
        self._version += 1
        self._cache.clear()
        self.virtual_size = Size(self.size.width, len(rows))
        self.cursor = self._find(keep)
        if self.sel_start is not None and self.sel_start >= len(rows):
            self.sel_start = None
        self._scroll_to_cursor()
        self._moved()
        self.refresh()

    def _moved(self) -> None:
        row = self.current()
        if row is not None and row.file != self._last_file:
            self._last_file = row.file
            self.post_message(self.Moved(self, row.file))

    def review_changed(self) -> None:
        """Review marks changed in place (no new rows)."""
        self._version += 1
        self.refresh()

    def _hunk_id_at(self, row_index: int) -> str:
        assert self.doc is not None
        r = self.rows[row_index]
        return self.doc.files[r.file].hunks[r.hunk].id

    def _position(self) -> tuple[str, str, int, str]:
        """Where the cursor is: file, hunk id, offset in the hunk, and the next hunk's id."""
        if not self.rows or self.doc is None:
            return "", "", 0, ""
        row = self.rows[min(self.cursor, len(self.rows) - 1)]
        f = self.doc.files[row.file]
        nxt = next((self._hunk_id_at(i) for i in self._hunks if i > self.cursor), "")
        if row.hunk >= 0:
            hunk_start = next((i for i in reversed(self._hunks) if i <= self.cursor), self.cursor)
            return f.path, f.hunks[row.hunk].id, self.cursor - hunk_start, nxt
        return f.path, "", 0, ""

    def _find(self, keep: tuple[str, str, int, str]) -> int:
        path, hid, offset, nxt = keep
        if self.doc is None or not self.rows:
            return 0
        if hid:
            for i in self._hunks:
                if self._hunk_id_at(i) == hid:
                    return min(i + offset, len(self.rows) - 1)
            # The hunk went (rejected): on to the one that came after it.
            for i in self._hunks:
                if nxt and self._hunk_id_at(i) == nxt:
                    return i
        if path:
            for i in self._files:
                if self.doc.files[self.rows[i].file].path == path:
                    # The hunk went (rejected): stay where it was, within the file.
                    return min(max(i, self.cursor), len(self.rows) - 1)
        return min(self.cursor, len(self.rows) - 1)

    # what the keys act on

    def current(self) -> Row | None:
        return self.rows[self.cursor] if 0 <= self.cursor < len(self.rows) else None

    def target(self) -> Target:
        row = self.current()
        if row is None or self.doc is None:
            return Target(None, None)
        f = self.doc.files[row.file]
        h = f.hunks[row.hunk] if row.hunk >= 0 else None
        if self.sel_start is not None:
            lo, hi = sorted((self.sel_start, self.cursor))
            nums = [r.anchor for r in self.rows[lo:hi + 1] if r.file == row.file and r.anchor is not None
                    and r.kind == "line"]
            if nums:
                return Target(f, h, min(nums), max(nums))
        if row.kind == "line" and row.anchor is not None:
            return Target(f, h, row.anchor, row.anchor)
        if h is not None:
            lo_line, hi_line = h.new_range()
            return Target(f, h, lo_line, hi_line)
        return Target(f, None)

    # navigation

    def _go(self, row: int, top: bool = False) -> None:
        if not self.rows:
            return
        self.cursor = max(0, min(len(self.rows) - 1, row))
        self._scroll_to_cursor(top)
        self._moved()
        self.refresh()

    def _scroll_to_cursor(self, top: bool = False) -> None:
        height = max(1, self.size.height)
        y = int(self.scroll_offset.y)
        if top or self.cursor < y:
            self.scroll_to(y=max(0, self.cursor - (1 if top else 0)), animate=False, immediate=True)
        elif self.cursor >= y + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def action_move(self, step: int) -> None:
        self.sel_start = None
        self._go(self.cursor + step)

    def action_page(self, step: int) -> None:
        self.sel_start = None
        self._go(self.cursor + step * max(1, self.size.height - 2))

    def action_extend(self, step: int) -> None:
        if self.sel_start is None:
            self.sel_start = self.cursor
        self._go(self.cursor + step)

    def action_hunk(self, step: int) -> None:
        self._jump(self._hunks or self._files, step)

    def action_file(self, step: int) -> None:
        self._jump(self._files, step)

    def _jump(self, marks: list[int], step: int) -> None:
        self.sel_start = None
        if not marks:
            return
        if step > 0:
            nxt = next((i for i in marks if i > self.cursor), None)
        else:
            nxt = next((i for i in reversed(marks) if i < self.cursor), None)
        if nxt is None:
            self.app.bell()
            return
        self._go(nxt, top=True)

    def jump_to_file(self, index: int) -> None:
        for i in self._files:
            if self.rows[i].file == index:
                self.sel_start = None
                self._go(i, top=True)
                return

    def first_unreviewed(self) -> bool:
        """The cursor on the first hunk not reviewed yet (else the first hunk); False: no hunks."""
        if self.doc is None or not self._hunks:
            return False
        files = self.doc.files
        row = next((i for i in self._hunks if not files[self.rows[i].file].hunks[self.rows[i].hunk].reviewed),
                   self._hunks[0])
        self.sel_start = None
        self._go(row, top=True)
        return True

    def next_hunk_after_mark(self) -> None:
        """After marking a hunk reviewed: on to the next hunk, if any."""
        nxt = next((i for i in self._hunks if i > self.cursor), None)
        if nxt is not None:
            self._go(nxt, top=True)

    def action_toggle_split(self) -> None:
        self.post_message(self.Act(self, "split", self.target()))

    def action_open(self) -> None:
        self.post_message(self.Act(self, "open", self.target()))

    def action_act(self, action: str) -> None:
        target = self.target()
        if target.file is None:
            self.app.bell()
            return
        self.post_message(self.Act(self, action, target))

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and self.sel_start is not None:
            event.stop()
            self.sel_start = None
            self.refresh()

    def on_click(self, event: events.Click) -> None:
        row = int(self.scroll_offset.y) + event.y
        if 0 <= row < len(self.rows):
            self.sel_start = self.cursor if event.shift else None
            self._go(row)

    def on_resize(self) -> None:
        self._cache.clear()
        self.virtual_size = Size(self.size.width, len(self.rows))

    # painting

    def palette(self) -> Palette:
        name = self.app.theme
        if self._palette is not None and self._palette[0] == name:
            return self._palette[1]
        v = self.app.theme_variables
        bg = Color.parse(v.get("background", "#16181d"))
        fg = Color.parse(v.get("foreground", "#d8dee9"))
        add, rem = Color.parse(v["wb-diff-added"]), Color.parse(v["wb-diff-removed"])

        def on(c: Color, share: float) -> Style:
            return Style(bgcolor=bg.blend(c, share).rich_color)

        pal = Palette(
            base=Style(color=fg.rich_color, bgcolor=bg.rich_color),
            muted=Style(color=bg.blend(fg, 0.5).rich_color),
            added=on(add, 0.14), added_mark=on(add, 0.38), removed=on(rem, 0.14), removed_mark=on(rem, 0.38),
            added_fg=Style(color=add.rich_color), removed_fg=Style(color=rem.rich_color),
            hunk=Style(color=Color.parse(v["wb-diff-hunk"]).rich_color),
            file=Style(bold=True, bgcolor=Color.parse(v.get("panel", "#262a33")).rich_color),
            cursor=Style(color=Color.parse(v.get("primary", "#4fb3ff")).rich_color, bold=True),
            select=Style(bgcolor=bg.blend(Color.parse(v.get("primary", "#4fb3ff")), 0.25).rich_color),
            success=Style(color=Color.parse(v.get("success", "#7bd88f")).rich_color),
            warning=Style(color=Color.parse(v.get("warning", "#ffb020")).rich_color),
            accent=Style(color=Color.parse(v.get("accent", "#ffb020")).rich_color),
        )
        self._palette = (name, pal)
        self._cache.clear()
        return pal

    def _in_selection(self, i: int) -> bool:
        if self.sel_start is None:
            return False
        lo, hi = sorted((self.sel_start, self.cursor))
        return lo <= i <= hi

    def _margin(self, i: int, pal: Palette) -> Segment:
        if i == self.cursor:
            return Segment("▌", pal.cursor)
        if self._in_selection(i):
            return Segment("┃", pal.cursor)
        cur = self.current()
        row = self.rows[i]
        if cur is not None and cur.hunk >= 0 and row.file == cur.file and row.hunk == cur.hunk:
            return Segment("│", pal.muted)
        return Segment(" ")

    def render_line(self, y: int) -> Strip:
        pal = self.palette()
        width = self.size.width
        i = int(self.scroll_offset.y) + y
        if not 0 <= i < len(self.rows) or self.doc is None:
            return Strip.blank(width, pal.base)
        margin = self._margin(i, pal)
        selected = self._in_selection(i)
        key = (i, width, margin.text, selected, self.split, self._version, self.app.theme)
        strip = self._cache.get(key)
        if strip is None:
            body = self._row_strip(self.rows[i], max(1, width - 1), pal)
            if selected:
                body = body.apply_style(pal.select)
            strip = Strip.join([Strip([Segment(margin.text, pal.base + margin.style)]), body])
            self._cache[key] = strip
        return strip

    def _row_strip(self, row: Row, width: int, pal: Palette) -> Strip:
        assert self.doc is not None
        f = self.doc.files[row.file]
        if row.kind == "file":
            return self._file_strip(f, width, pal)
        if row.kind == "hunk":
            h = f.hunks[row.hunk]
            mark = [Segment("  ✓ reviewed", pal.base + pal.success)] if h.reviewed else []
            segs = [Segment(clean(h.header), pal.base + pal.hunk), *mark]
            return Strip(segs).crop_extend(0, width, pal.base)
        if row.kind in ("fold", "note", "comment"):
            style = {"fold": pal.muted + Style(italic=True), "note": pal.warning,
                     "comment": pal.accent}[row.kind]
            return Strip([Segment("  " + clean(row.text), pal.base + style)]).crop_extend(0, width, pal.base)
        g = self.doc.gutter
        if not self.split:
            ln = row.left
            assert ln is not None
            old = "" if ln.old_no is None else ln.old_no
            new = "" if ln.new_no is None else ln.new_no
            nums = f"{old:>{g}} {new:>{g}} "
            return self._line_strip(ln, nums, width, pal)
        half = max(1, (width - 1) // 2)
        left = self._side(row.left, "old", g, half, pal)
        right = self._side(row.right, "new", g, width - half - 1, pal)
        return Strip.join([left, Strip([Segment("│", pal.base + pal.muted)]), right])

    def _side(self, ln: PLine | None, side: str, g: int, width: int, pal: Palette) -> Strip:
        if ln is None:
            return Strip.blank(width, pal.base + pal.muted)
        no = ln.old_no if side == "old" else ln.new_no
        return self._line_strip(ln, f"{no if no is not None else '':>{g}} ", width, pal)

    def _line_strip(self, ln: PLine, nums: str, width: int, pal: Palette) -> Strip:
        bg, mark_bg, sign_style = {
            "+": (pal.added, pal.added_mark, pal.added_fg),
            "-": (pal.removed, pal.removed_mark, pal.removed_fg),
        }.get(ln.kind, (Style(), Style(), pal.muted))
        line_style = pal.base + bg
        segs = [Segment(nums, pal.base + pal.muted), Segment(ln.kind, line_style + sign_style),
                Segment(" ", line_style)]
        for text, style, marked in ln.spans:
            segs.append(Segment(clean(text), line_style + style + (mark_bg if marked else Style())))
        if ln.no_newline:
            segs.append(Segment(" ⏎̸ no newline at end", line_style + pal.muted))
        return Strip(segs).crop_extend(0, width, line_style)

    def _file_strip(self, f: PFile, width: int, pal: Palette) -> Strip:
        mark, style = REVIEW_MARK.get(f.review_status, REVIEW_MARK["unreviewed"])
        mark_style = {"success": pal.success, "warning": pal.warning, "muted": pal.muted}[style]
        base = pal.base + pal.file
        fold = "▸" if f.collapsed else "▾"
        segs = [Segment(f"{fold} {mark} ", base + mark_style),
                Segment(f"{STATUS_LETTER.get(f.status, '?')} ", base),
                Segment(clean(f.label) + "  ", base)]
        if f.binary:
            segs.append(Segment("binary", base + pal.muted))
        else:
            segs += [Segment(f"+{f.added}", base + pal.added_fg), Segment(" ", base),
                     Segment(f"-{f.removed}", base + pal.removed_fg)]
        if f.mode_change:
            segs.append(Segment(f"  mode {f.mode_change[0]} → {f.mode_change[1]}", base + pal.muted))
        return Strip(segs).crop_extend(0, width, base)
