"""Every key, by binding id: what `[keymap]` in config.toml can change."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.keys import key_to_character
from textual.screen import ModalScreen
from textual.widgets import Static

from workbench.ui.keymap import DEFAULT_KEYS, DESCRIPTIONS

# Names Textual gives keys that a person reads better as a symbol (arrows; `+` and `-`,
# which key_to_character does not map).
_SYMBOLS = {"plus": "+", "minus": "-", "down": "↓", "up": "↑", "left": "←", "right": "→"}


def _one_key(key: str) -> str:
    """`ctrl+right_square_bracket` -> `ctrl+]`, `exclamation_mark` -> `!`."""
    *mods, base = key.strip().split("+")
    char = _SYMBOLS.get(base)
    if char is None and len(base) > 1:
        found = key_to_character(base)
        # space, tab, escape and delete map to control characters: keep their names.
        char = found if found is not None and found.isprintable() and not found.isspace() else None
    return "+".join([*mods, char or base])


def key_label(keys: str) -> str:
    return ", ".join(_one_key(k) for k in keys.split(",") if k.strip())


def help_content(effective: dict[str, str]) -> Content:
    lines = [Content.assemble(("Keys", "bold"), ("   set any of them in config.toml [keymap]: "
                                                 "\"main.grid\" = \"G\"", "dim")), Content("")]
    width = max(len(k) for k in effective)
    # The widest key list sets the column (`ctrl+space, ctrl+@` ran into its binding id).
    key_width = max(len(key_label(k)) for k in effective.values())
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
                    (f"  {key_label(keys):<{key_width}}  ", "bold"), (f"{bid:<{width}}  ", "$text-muted"),
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
