"""Small modal dialogs: a one-line input and a yes/no confirmation."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class LineInputScreen(ModalScreen[str | None]):
    """Ask for one line; Enter returns it, Escape returns None."""

    DEFAULT_CSS = """
    LineInputScreen { align: center middle; }
    LineInputScreen > Vertical { width: 70%; max-width: 100; height: auto; border: round $primary;
                                 background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, title: str, placeholder: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder

    def compose(self) -> Any:
        with Vertical():
            yield Static(Content.assemble((self.title_text, "bold")))
            yield Input(placeholder=self.placeholder, id="line")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value if event.value.strip() else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """y confirms; n or Escape cancels."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 60%; max-width: 90; height: auto; border: round $error;
                               background: $surface; padding: 0 1; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> Any:
        with Vertical():
            yield Static(Content(self.question))
            yield Static(Content.assemble(("y yes   n no", "dim")))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
