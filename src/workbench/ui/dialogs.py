"""Small modal dialogs: a one-line input and a yes/no confirmation."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from workbench.core.escapes import strip_escapes


class LineInputScreen(ModalScreen[str | None]):
    """Ask for one line; Enter returns it, Escape returns None. With `allow_empty`, Enter on
    an empty line returns "" (an optional answer, such as a reason)."""

    DEFAULT_CSS = """
    LineInputScreen { align: center middle; }
    LineInputScreen > Vertical { width: 70%; max-width: 100; height: auto; border: round $primary;
                                 background: $surface; padding: 0 1; }
    LineInputScreen .hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, title: str, placeholder: str = "", *, allow_empty: bool = False, value: str = "",
                 hint: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.allow_empty = allow_empty
        self.value = value
        self.hint = hint

    def compose(self) -> Any:
        with Vertical():
            yield Static(Content.assemble((strip_escapes(self.title_text), "bold")))
            yield Input(value=self.value, placeholder=self.placeholder, id="line")
            if self.hint:
                yield Static(Content(self.hint), classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.allow_empty:
            self.dismiss(event.value.strip())
        else:
            self.dismiss(event.value if event.value.strip() else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """y confirms; n or Escape cancels. `body` (e.g. a message about to be sent) scrolls."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Vertical { width: 70%; max-width: 110; height: auto; max-height: 90%;
                               border: round $error; background: $surface; padding: 0 1; }
    ConfirmScreen.-mild > Vertical { border: round $primary; }
    ConfirmScreen VerticalScroll { height: auto; max-height: 30; margin: 1 0;
                                   background: $background; padding: 0 1; }
    """
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str, body: str = "", *, yes: str = "yes", mild: bool = False) -> None:
        super().__init__(classes="-mild" if mild else "")
        self.question = question
        self.body = body
        self.yes = yes

    def compose(self) -> Any:
        with Vertical():
            yield Static(Content(strip_escapes(self.question)), id="question")
            if self.body:
                with VerticalScroll():
                    yield Static(Content(strip_escapes(self.body)), id="body")
            yield Static(Content.assemble((f"y {self.yes}   n no", "dim")))

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
