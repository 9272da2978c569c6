"""The live diff as a summary: files with +added -removed, from the daemon's `diff` method
(or, while that method has not landed, a `git diff --stat` of the worktree)."""

from __future__ import annotations

from typing import Any

from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from workbench.core.escapes import one_line, strip_escapes
from workbench.ui.model import stat_totals

STATUS = {"added": "A", "modified": "M", "deleted": "D", "renamed": "R", "copied": "C"}


def diff_content(result: dict[str, Any]) -> Content:
    files = result.get("files") if isinstance(result.get("files"), list) else []
    lines: list[Content] = []
    base = one_line(str(result.get("base") or ""), 40)
    if base:
        lines.append(Content.assemble(("against ", "dim"), (base, "bold")))
    for f in files or []:
        if not isinstance(f, dict):
            continue
        status = STATUS.get(str(f.get("status")), str(f.get("status") or "M")[:1].upper())
        path = one_line(str(f.get("path", "")), 80)
        if f.get("old_path") and f.get("old_path") != f.get("path"):
            path = f"{one_line(str(f['old_path']), 60)} → {path}"
        counts = ("binary", "dim") if f.get("binary") else None
        lines.append(Content.assemble(
            (f"{status} ", "bold"), path, "  ",
            counts or (f"+{f.get('added', 0)}", "$wb-diff-added"), " " if not counts else "",
            ("" if counts else f"-{f.get('removed', 0)}", "$wb-diff-removed")))
    totals = stat_totals(result)
    if not files:
        lines.append(Content.assemble(("no changes yet", "dim")))
    elif totals:
        lines.append(Content.assemble((f"{len(files)} files  ", "dim"), (f"+{totals[0]}", "$wb-diff-added"),
                                      " ", (f"-{totals[1]}", "$wb-diff-removed")))
    return Content("\n").join(lines)


def parse_git_stat(text: str) -> dict[str, Any]:
    """`git diff --numstat` output -> the `diff` result shape (files with counts)."""
    files = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3:
            continue
        added, removed, path = parts
        binary = added == "-"
        files.append({"path": path, "status": "modified", "binary": binary,
                      "added": 0 if binary else int(added), "removed": 0 if binary else int(removed)})
    return {"files": files}


class DiffSummary(VerticalScroll, can_focus=True):
    DEFAULT_CSS = """
    DiffSummary { height: 1fr; padding: 0 1; background: $background; }
    DiffSummary > Static.note { color: $text-muted; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._body = Static("loading the diff…")
        self._note = Static("", classes="note")
        self.result: dict[str, Any] | None = None

    def compose(self) -> Any:
        yield self._body
        yield self._note

    def show_result(self, result: dict[str, Any], note: str = "") -> None:
        self.result = result
        self._body.update(diff_content(result))
        self._note.update(Content(strip_escapes(note)))

    def show_error(self, text: str) -> None:
        self._body.update(Content.assemble((one_line(text, 300), "$text-muted")))
