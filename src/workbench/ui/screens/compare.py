"""Attempts side by side (P): each attempt's state, diff stat, changed files and check
result from `compare`; enter picks the highlighted one as the winner."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.core.escapes import one_line, strip_escapes
from workbench.protocol.review import AttemptEntry, CompareResult, DiffStat
from workbench.ui.widgets.check_panel import TAIL_LINES

MAX_FILES = 40


def attempt_content(entry: AttemptEntry) -> Content:
    stat = entry.get("stat") or DiffStat(files=0, added=0, removed=0)
    check = str(entry.get("check") or "none")
    icon, style = {"passed": ("✔", "$success"), "failed": ("✖", "$error")}.get(check, ("·", "$text-muted"))
    lines = [
        Content.assemble((one_line(str(entry.get("name") or entry.get("id")), 40), "bold"),
                         ("  " + one_line(str(entry.get("state") or ""), 12), "$text-muted")),
        Content.assemble((f"{stat['files']} files ", ""), (f"+{stat['added']}", "$wb-diff-added"),
                         " ", (f"-{stat['removed']}", "$wb-diff-removed")),
        Content.assemble((f"{icon} check {check}", f"bold {style}")),
    ]
    if entry.get("error"):
        lines.append(Content.assemble((one_line(str(entry["error"]), 200), "$error")))
    lines.append(Content(""))
    files = [f for f in entry.get("files") or [] if isinstance(f, dict)]
    for f in files[:MAX_FILES]:
        counts: list[tuple[str, str] | str] = (
            [("bin", "$text-muted")] if f.get("binary") else
            [(f"+{f.get('added', 0)}", "$wb-diff-added"), " ", (f"-{f.get('removed', 0)}", "$wb-diff-removed")])
        lines.append(Content.assemble(one_line(str(f.get("path", "")), 60), "  ", *counts))
    if len(files) > MAX_FILES:
        lines.append(Content.assemble((f"… {len(files) - MAX_FILES} more files", "dim")))
    result = entry.get("check_result")
    if isinstance(result, dict) and result.get("tail"):
        lines.append(Content(""))
        lines += [Content.assemble((ln, "dim")) for ln in
                  strip_escapes(str(result["tail"])).splitlines()[-TAIL_LINES:]]
    return Content("\n").join(lines)


class CompareScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    CompareScreen { align: center middle; }
    CompareScreen > Vertical { width: 96%; height: 90%; border: round $primary; background: $surface;
                               padding: 0 1; }
    CompareScreen Horizontal { height: 1fr; }
    CompareScreen VerticalScroll { width: 1fr; border: round $panel-lighten-2; padding: 0 1; }
    CompareScreen VerticalScroll.-chosen { border: heavy $primary; }
    """
    BINDINGS = [
        Binding("right,l,tab", "move(1)", "Next", id="compare.next"),
        Binding("left,h,shift+tab", "move(-1)", "Previous", id="compare.prev"),
        Binding("enter,p", "pick", "Pick", id="compare.pick"),
        Binding("escape,q", "close", "Close", id="compare.close"),
    ]

    def __init__(self, result: CompareResult, current: str | None = None) -> None:
        super().__init__()
        self.entries = [e for e in result.get("sessions") or [] if isinstance(e, dict)]
        self.group = one_line(str(result.get("group") or ""), 60)
        ids = [e.get("id") for e in self.entries]
        self.chosen = ids.index(current) if current in ids else 0

    def compose(self) -> Any:
        with Vertical():
            yield Static(Content.assemble((f"Attempts {self.group}", "bold"),
                                          ("   ←/→ choose · enter picks the winner (the others are removed)"
                                           " · esc closes", "dim")))
            with Horizontal():
                for i, e in enumerate(self.entries):
                    with VerticalScroll(classes="-chosen" if i == self.chosen else "", id=f"attempt-{i}"):
                        yield Static(attempt_content(e))

    def action_move(self, step: int) -> None:
        if not self.entries:
            return
        self.query_one(f"#attempt-{self.chosen}").remove_class("-chosen")
        self.chosen = (self.chosen + step) % len(self.entries)
        self.query_one(f"#attempt-{self.chosen}").add_class("-chosen")

    def action_pick(self) -> None:
        if self.entries:
            self.dismiss(str(self.entries[self.chosen].get("id")))

    def action_close(self) -> None:
        self.dismiss(None)
