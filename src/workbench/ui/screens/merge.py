"""Merge a session (M): the commit message, the strategy, or a pull request instead.

A failed merge reopens this dialog with the daemon's message and everything typed kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Select, Static, Switch, TextArea

from workbench.core.escapes import strip_escapes
from workbench.protocol.review import MergeParams

STRATEGIES = [("the repo's default (squash unless configured)", ""), ("squash: one commit", "squash"),
              ("ff: fast-forward only", "ff"), ("rebase: rebase, then fast-forward", "rebase")]


@dataclass
class MergeForm:
    session_id: str
    name: str
    message: str = ""
    strategy: str = ""
    pr: bool = False
    summary: str = ""  # files and counts, shown above the form

    def params(self) -> MergeParams:
        p = MergeParams(id=self.session_id)
        if self.message.strip():
            p["message"] = self.message.strip()
        if self.strategy:
            p["strategy"] = self.strategy
        if self.pr:
            p["pr"] = True
        return p


class MergeScreen(ModalScreen[MergeForm | None]):
    DEFAULT_CSS = """
    MergeScreen { align: center middle; }
    MergeScreen > Vertical { width: 90%; max-width: 100; height: auto; max-height: 100%;
                             border: round $primary; background: $surface; padding: 0 1; }
    MergeScreen TextArea { height: 8; margin-top: 1; }
    MergeScreen .row { height: 1; margin-top: 1; }
    MergeScreen .row > Label { width: 10; }
    MergeScreen .row > Label.hint { width: 1fr; }
    MergeScreen Select { height: 1; width: 1fr; }
    MergeScreen SelectCurrent { border: none; height: 1; padding: 0 1; background: $boost; }
    MergeScreen Select:focus > SelectCurrent { background: $primary 25%; }
    MergeScreen Switch { border: none; height: 1; padding: 0; width: 6; }
    MergeScreen Switch:focus { background: $primary 25%; }
    MergeScreen #merge-error { color: $error; height: auto; }
    MergeScreen .dim { color: $text-muted; }
    """
    BINDINGS = [
        Binding("ctrl+s", "submit", "Merge", id="merge.submit"),
        Binding("escape", "cancel", "Cancel", id="merge.cancel"),
    ]

    def __init__(self, form: MergeForm, error: str = "") -> None:
        super().__init__()
        self.form = form
        self.error = error

    def compose(self) -> Any:
        f = self.form
        with Vertical():
            yield Static(Content.assemble((f"Merge {strip_escapes(f.name)}", "bold"),
                                          ("   ctrl+s merges · Esc cancels", "dim")))
            if f.summary:
                yield Static(Content(strip_escapes(f.summary)), classes="dim")
            yield TextArea(f.message, id="message", soft_wrap=True, show_line_numbers=False)
            yield Static(Content("Message: empty uses the task and the agent's summary."), classes="dim")
            with Horizontal(classes="row"):
                yield Label("Strategy")
                yield Select([(label, value) for label, value in STRATEGIES], value=f.strategy,
                             allow_blank=False, id="strategy")
            with Horizontal(classes="row"):
                yield Label("PR")
                yield Switch(f.pr, id="pr")
                yield Label(" push the branch, open a pull request (gh)", classes="dim hint")
            yield Static(Content(strip_escapes(self.error)), id="merge-error")

    def on_mount(self) -> None:
        self.query_one("#message", TextArea).focus()

    def collect(self) -> MergeForm:
        f = self.form
        return MergeForm(f.session_id, f.name, self.query_one("#message", TextArea).text,
                         str(self.query_one("#strategy", Select).value or ""), self.query_one("#pr", Switch).value,
                         f.summary)

    def action_submit(self) -> None:
        self.dismiss(self.collect())

    def action_cancel(self) -> None:
        self.dismiss(None)
