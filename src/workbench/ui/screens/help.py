"""Every key, by binding id: what `[keymap]` in config.toml can change."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.ui.keymap import DEFAULT_KEYS, DESCRIPTIONS


def key_label(keys: str) -> str:
    names = {"question_mark": "?", "right_square_bracket": "]", "left_square_bracket": "[",
             "plus": "+", "minus": "-", "equals_sign": "=", "ctrl+right_square_bracket": "ctrl+]",
             "ctrl+@": "ctrl+@", "shift+down": "shift+↓", "shift+up": "shift+↑", "down": "↓", "up": "↑",
             "left": "←", "right": "→"}
    return ", ".join(names.get(k.strip(), k.strip()) for k in keys.split(","))


def help_content(effective: dict[str, str]) -> Content:
    lines = [Content.assemble(("Keys", "bold"), ("   set any of them in config.toml [keymap]: "
                                                 "\"main.grid\" = \"G\"", "dim")), Content("")]
    width = max(len(k) for k in effective)
    groups = {"app": "Anywhere", "main": "Main screen", "approval": "Approval card",
              "list": "Session list", "diff": "Diff (focused)", "merge": "Merge dialog",
              "compare": "Compare attempts", "terminal": "Terminal (attached)",
              "new": "New session dialog", "dialog": "Dialogs",
              "confirm": "Confirmation",
              "suggest": "Suggestions inbox",
              "help": "This screen"}
    for prefix, title in groups.items():
        lines.append(Content.assemble((title, "bold $primary")))
        for bid, keys in effective.items():
            if bid.split(".")[0] == prefix:
                lines.append(Content.assemble(
                    (f"  {key_label(keys):<18}", "bold"), (f"{bid:<{width}}  ", "$text-muted"),
                    DESCRIPTIONS.get(bid, "")))
        lines.append(Content(""))
    return Content("\n").join(lines)


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 110; height: 90%; border: round $primary;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", id="help.close")]

    def __init__(self, keymap: dict[str, str], detach_key: str) -> None:
        super().__init__()
        self.effective = {**DEFAULT_KEYS, **keymap, "terminal.detach": detach_key}

    def compose(self) -> Any:
        with VerticalScroll():
            yield Static(help_content(self.effective), id="help-keys")

    def action_close(self) -> None:
        self.dismiss(None)
