"""The changed files of a diff: status, path, +/- counts and review status, one a line."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from workbench.ui.diff_doc import PFile
from workbench.ui.widgets.diff_view import STATUS_LETTER

MARKS = {"reviewed": ("✓", "$success"), "partial": ("◐", "$warning"), "unreviewed": ("○", "$text-muted")}


def file_entry(f: PFile) -> Content:
    mark, style = MARKS.get(f.review_status, MARKS["unreviewed"])
    counts: list[tuple[str, str] | str] = (
        [("bin", "$text-muted")] if f.binary else
        [(f"+{f.added}", "$wb-diff-added"), " ", (f"-{f.removed}", "$wb-diff-removed")])
    name = f.path.rsplit("/", 1)[-1]
    folder = f.path[: len(f.path) - len(name)]
    return Content.assemble((mark, style), " ", (STATUS_LETTER.get(f.status, "?"), "bold"), " ",
                            (folder, "$text-muted"), name, "  ", *counts)


class DiffFileList(OptionList):
    DEFAULT_CSS = """
    DiffFileList, DiffFileList:focus { height: 1fr; border: none; padding: 0; background: $surface; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._keys: list[str] = []

    def show(self, files: list[PFile], ignored: str = "") -> None:
        """One line a file; review noise (`ignored`, "ignored: 2 files (...)") as one more
        line, collapsed and not selectable: nothing there to review."""
        keys = [f.key for f in files] + ([ignored] if ignored else [])
        entries = [Option(file_entry(f), id=f"f{i}") for i, f in enumerate(files)]
        if ignored:
            entries.append(Option(Content.assemble(("⋯ " + ignored, "$text-muted")), id="ignored", disabled=True))
        keep = self.highlighted
        if keys == self._keys:
            for o in entries:
                assert o.id is not None
                self.replace_option_prompt(o.id, o.prompt)
        else:
            self._keys = keys
            self.clear_options()
            self.add_options(entries)
        if files:
            self.highlighted = min(keep or 0, len(files) - 1)

    def follow(self, index: int) -> None:
        """Highlight the file the diff's cursor is in (without taking focus)."""
        if 0 <= index < self.option_count and not self.get_option_at_index(index).disabled \
                and self.highlighted != index:
            self.highlighted = index
