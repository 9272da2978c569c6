"""Client-side copy of a session's screen, kept up to date from the daemon's frames.

Headless (no Textual): the terminal widget paints from it, and several widgets (a grid
pane and the focused view) can share one copy per session.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.protocol.terminal import Frame, Row


def row_text(row: Row) -> str:
    return "".join(str(run[0]) for run in row)


@dataclass
class TermState:
    session: str
    cols: int = 80
    nrows: int = 24
    rows: list[Row] = field(default_factory=list)
    # Bumped whenever a row changes: widgets key their cached Strips on it.
    versions: list[int] = field(default_factory=list)
    cursor: tuple[int, int, bool] = (0, 0, True)
    alt: bool = False
    title: str = ""
    bracketed_paste: bool = False
    mouse: bool = False
    app_cursor: bool = False
    received: bool = False
    _counter: int = 0

    def _ensure(self, n: int) -> None:
        if len(self.rows) < n:
            self.rows.extend([] for _ in range(n - len(self.rows)))
            self.versions.extend(0 for _ in range(n - len(self.versions)))
        elif len(self.rows) > n:
            del self.rows[n:]
            del self.versions[n:]

    def apply(self, frame: Frame) -> set[int] | None:
        """Apply a frame; return the changed row numbers, or None when everything changed."""
        everything = bool(frame.get("full")) or not self.received
        size = frame.get("size")
        if isinstance(size, list | tuple) and len(size) == 2:
            cols, nrows = int(size[0]), int(size[1])
            if (cols, nrows) != (self.cols, self.nrows):
                everything = True
            self.cols, self.nrows = cols, nrows
        self._ensure(self.nrows)
        old_cursor_row = self.cursor[1]
        cur = frame.get("cursor")
        if isinstance(cur, list | tuple) and len(cur) >= 3:
            self.cursor = (int(cur[0]), int(cur[1]), bool(cur[2]))
        self.alt = bool(frame.get("alt", self.alt))
        self.title = str(frame.get("title", self.title) or "")
        self.bracketed_paste = bool(frame.get("bracketed_paste", self.bracketed_paste))
        self.mouse = bool(frame.get("mouse", self.mouse))
        self.app_cursor = bool(frame.get("app_cursor", self.app_cursor))
        self.received = True
        changed: set[int] = set()
        if everything:
            for i in range(self.nrows):
                self.rows[i] = []
        for key, row in (frame.get("rows") or {}).items():
            try:
                y = int(key)
            except (TypeError, ValueError):
                continue
            if 0 <= y < self.nrows and isinstance(row, list):
                self.rows[y] = row
                changed.add(y)
        self._counter += 1
        for y in changed if not everything else range(self.nrows):
            self.versions[y] = self._counter
        if everything:
            return None
        # The rows holding the old and new cursor repaint too.
        changed.update({old_cursor_row, self.cursor[1]} & set(range(self.nrows)))
        return changed

    def text_lines(self) -> list[str]:
        return [row_text(r) for r in self.rows]
