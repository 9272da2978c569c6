"""Tiles 2 to 6 session panes; each pane's weight sets its share of its row."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical

from workbench.ui.widgets.session_pane import SessionPane


def grid_shape(n: int) -> tuple[int, int]:
    """(columns, rows) for n panes: 1, 2 side by side, 2x2, 3x2."""
    if n <= 1:
        return 1, 1
    cols = 2 if n <= 4 else 3
    return cols, math.ceil(n / cols)


class PaneGrid(Vertical):
    DEFAULT_CSS = """
    PaneGrid { height: 1fr; width: 1fr; }
    PaneGrid > Horizontal { height: 1fr; }
    """

    def __init__(self, panes: list[SessionPane], weights: dict[str, int], id: str | None = None) -> None:
        super().__init__(id=id)
        self.panes = panes
        self.weights = weights

    def update_rows(self) -> None:
        """A row whose panes are all hidden (zoom) gives its height away."""
        for row in self.query_children(Horizontal):
            row.display = any(not p.has_class("-zoomed-out") for p in row.query_children(SessionPane))

    def compose(self) -> ComposeResult:
        cols, _rows = grid_shape(len(self.panes))
        for start in range(0, len(self.panes), cols):
            row = self.panes[start:start + cols]
            with Horizontal() as h:
                h.styles.height = f"{max(self.weights.get(p.session_id, 1) for p in row)}fr"
                for p in row:
                    p.styles.width = f"{self.weights.get(p.session_id, 1)}fr"
                    yield p
