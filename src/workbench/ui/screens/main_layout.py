"""The main screen's panes: which sessions are mounted on the right (one, or the grid),
zoom, the sidebar, each pane's view (terminal, transcript, diff, side by side), pinning,
resizing and cycling grid panes. The layout itself is the app's `LayoutState`, saved on
every change."""

from __future__ import annotations

from typing import Any

from workbench.ui import model
from workbench.ui.layout_state import MAX_PANES
from workbench.ui.screens.main_part import MainScreenPart
from workbench.ui.widgets.grid import PaneGrid
from workbench.ui.widgets.session_pane import SessionPane


class PaneLayout(MainScreenPart):
    # What the last rebuild mounted: (grid, ids, weights); the same again mounts nothing.
    _shown: tuple[Any, ...] = ()

    def grid_ids(self) -> list[str]:
        wb = self.wb
        return [p for p in wb.layout.panes if p in wb.sessions][:MAX_PANES]

    def rebuild(self, force: bool = False) -> None:
        """Mount the panes the layout asks for; no-op when nothing visible changed."""
        if not self.right.is_attached:
            return
        wb = self.wb
        self.set_class(not wb.layout.sidebar, "-no-sidebar")
        ids = self.grid_ids() if wb.layout.grid else ([wb.layout.focus] if wb.layout.focus else [])
        ids = [i for i in ids if i in wb.sessions]
        shown = (wb.layout.grid, tuple(ids), tuple(wb.layout.weights.get(i, 1) for i in ids))
        if shown == self._shown and not force:
            return
        self._shown = shown
        had_focus = self.focused
        refocus = had_focus is not None and self.right in had_focus.ancestors
        self.right.remove_children()
        self.panes = {
            sid: SessionPane(wb.sessions[sid], wb, wb.layout.views.get(
                sid, "transcript" if model.is_builtin(wb.sessions[sid]) else "terminal"))
            for sid in ids
        }
        if not ids:
            from textual.widgets import Static

            self.right.mount(Static("No sessions yet. ctrl+n starts one.", classes="empty"))
        elif wb.layout.grid:
            self.right.mount(PaneGrid(list(self.panes.values()), wb.layout.weights))
        else:
            self.right.mount(*self.panes.values())
        wb.watch_frames(set(ids))
        jump_keys = frozenset(self.jump_keys())
        for pane in self.panes.values():
            pane.terminal.jump_keys = jump_keys
        self.mark_current()
        if refocus and wb.layout.focus in self.panes:
            self.call_after_refresh(self.panes[wb.layout.focus].focus_default)
        self.apply_zoom()
        wb.save_layout()

    def mark_current(self) -> None:
        for sid, pane in self.panes.items():
            pane.set_class(sid == self.wb.layout.focus and len(self.panes) > 1, "-current")

    def apply_zoom(self) -> None:
        """Zoom shows the focused pane alone. Not Screen.maximize: that would trap focus in the
        pane, and in a terminal every key then goes to the PTY."""
        wb = self.wb
        zoomed = wb.layout.zoomed and wb.layout.focus in self.panes
        self.set_class(zoomed, "-zoomed")
        single = not wb.layout.grid
        for sid, pane in self.panes.items():
            pane.set_class(zoomed and sid != wb.layout.focus, "-zoomed-out")
            pane.terminal.auto_size = single or (zoomed and sid == wb.layout.focus)
        for grid in self.right.query(PaneGrid):
            grid.update_rows()
        if zoomed or single:
            shown = self.panes.get(wb.layout.focus or "")
            if shown is not None:
                self.call_after_refresh(shown.terminal.want_size)

    def action_focus_list(self) -> None:
        if self.wb.layout.zoomed:
            self.wb.layout.zoomed = False
            self.apply_zoom()
            self.wb.save_layout()
        self.session_list.focus()

    def action_toggle_grid(self) -> None:
        wb = self.wb
        if not wb.layout.grid:
            panes = self.grid_ids()
            if len(panes) < 2:
                ordered = [s["id"] for s in model.ordered(list(wb.sessions.values()))]
                if wb.layout.focus in ordered:
                    ordered.remove(wb.layout.focus)
                    ordered.insert(0, wb.layout.focus)
                panes = ordered[:4]
            if len(panes) < 2:
                self.notify("the grid needs at least two sessions", severity="warning")
                return
            wb.layout.panes = panes
        wb.layout.grid = not wb.layout.grid
        wb.layout.zoomed = False
        self.rebuild()

    def action_pin(self) -> None:
        s = self.current()
        if s is None:
            return
        panes = self.wb.layout.panes
        if s["id"] in panes:
            panes.remove(s["id"])
            self.notify(f"{model.name_of(s)} left the grid", timeout=2)
        elif len(panes) >= MAX_PANES:
            self.notify(f"the grid holds {MAX_PANES} panes; unpin one first", severity="warning")
            return
        else:
            panes.append(s["id"])
            self.notify(f"{model.name_of(s)} pinned to the grid ({len(panes)})", timeout=2)
        if self.wb.layout.grid and len(panes) < 2:
            self.wb.layout.grid = False
        self.rebuild()

    def action_zoom(self) -> None:
        if not self.wb.layout.zoomed and self.wb.layout.focus not in self.panes:
            return
        self.wb.layout.zoomed = not self.wb.layout.zoomed
        self.apply_zoom()
        if not self.wb.layout.zoomed and self.wb.layout.sidebar and self.focused is None:
            self.session_list.focus()
        self.wb.save_layout()

    def action_resize_pane(self, delta: int) -> None:
        sid = self.wb.layout.focus
        if not sid or not self.wb.layout.grid:
            self.notify("resize works on grid panes (g)", timeout=2)
            return
        w = self.wb.layout.weights
        w[sid] = max(1, min(5, w.get(sid, 1) + delta))
        self.rebuild()

    def action_cycle_pane(self, step: int) -> None:
        ids = list(self.panes)
        if not ids:
            return
        cur = self.wb.layout.focus
        nxt = ids[(ids.index(cur) + step) % len(ids)] if cur in ids else ids[0]
        self.wb.layout.focus = nxt
        self.session_list.select_session(nxt)
        self.mark_current()
        self.apply_zoom()
        if self.wb.layout.sidebar and not self.wb.layout.zoomed:
            self.session_list.focus()
        self.wb.save_layout()

    def action_toggle_sidebar(self) -> None:
        self.wb.layout.sidebar = not self.wb.layout.sidebar
        self.set_class(not self.wb.layout.sidebar, "-no-sidebar")
        if not self.wb.layout.sidebar and self.wb.layout.focus in self.panes:
            self.panes[self.wb.layout.focus].focus_default()
        elif self.wb.layout.sidebar:
            self.session_list.focus()
        self.wb.save_layout()

    def action_view(self, view: str) -> None:
        sid = self.wb.layout.focus
        if not sid:
            return
        self.wb.layout.views[sid] = view
        if sid in self.panes:
            self.panes[sid].view = view
        self.wb.save_layout()
