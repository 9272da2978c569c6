"""Keys: binding ids and defaults, the user's keymap, and Textual keys -> terminal bytes."""

from __future__ import annotations

import unicodedata

from textual.keys import KEY_TO_UNICODE_NAME, Keys

from workbench.core.escapes import one_line

# Every action's binding id and default key; `[keymap]` in config.toml overrides them.
DEFAULT_KEYS: dict[str, str] = {
    "app.quit": "ctrl+q",
    "app.palette": "ctrl+p",
    "app.help": "question_mark,f1",
    "app.attention": "ctrl+space,ctrl+@",
    "app.new_session": "ctrl+n",
    "app.theme": "f9",
    "app.restart_daemon": "f5",
    "app.suggestions": "exclamation_mark",
    "main.quit": "q",
    "main.attention": "space",
    "main.attach": "enter",
    "main.focus_list": "escape",
    "main.grid": "g",
    "main.pin": "p",
    "main.zoom": "z",
    "main.grow": "plus,equals_sign",
    "main.shrink": "minus",
    "main.next_pane": "right_square_bracket",
    "main.prev_pane": "left_square_bracket",
    "main.sidebar": "b",
    "main.view_terminal": "1",
    "main.view_transcript": "2",
    "main.view_diff": "3",
    "main.view_split": "4",
    "main.approve": "y",
    "main.deny": "n",
    "main.send": "m",
    "main.interrupt": "i",
    "main.stop": "s",
    "main.restart": "r",
    "main.remove": "d",
    "main.undo": "u",
    "main.send_review": "S",
    "main.merge": "M",
    "main.discard": "D",
    "main.check": "C",
    "main.send_check": "E",
    "main.compare": "P",
    "list.down": "j",
    "list.up": "k",
    "diff.down": "j,down",
    "diff.up": "k,up",
    "diff.page_down": "pagedown",
    "diff.page_up": "pageup",
    "diff.next_hunk": "n",
    "diff.prev_hunk": "p",
    "diff.next_file": "right_square_bracket",
    "diff.prev_file": "left_square_bracket",
    "diff.select_down": "shift+down,J",
    "diff.select_up": "shift+up,K",
    "diff.toggle_split": "v",
    "diff.open": "enter",
    "diff.mark": "a",
    "diff.mark_file": "A",
    "diff.reject": "x",
    "diff.revert_file": "X",
    "diff.comment": "c",
    "merge.submit": "ctrl+s",
    "merge.cancel": "escape",
    "compare.next": "right,l,tab",
    "compare.prev": "left,h,shift+tab",
    "compare.pick": "enter,p",
    "compare.close": "escape,q",
    "approval.approve": "y",
    "approval.always": "a",
    "approval.deny": "n",
    "approval.deny_reason": "r",
    "approval.close": "escape",
    "new.submit": "ctrl+s",
    "new.cancel": "escape",
    "new.attempt": "ctrl+t",
    "dialog.cancel": "escape",
    "confirm.yes": "y",
    "confirm.no": "n,escape",
    "help.close": "escape,q,question_mark",
    "suggest.start": "enter",
    "suggest.attempts": "a",
    "suggest.edit": "e",
    "suggest.dismiss": "x",
    "suggest.refresh": "r",
    "suggest.close": "escape,q",
}

DESCRIPTIONS: dict[str, str] = {
    "app.quit": "Quit the UI (sessions keep running)",
    "app.palette": "Command palette",
    "app.help": "Show all keys",
    "app.attention": "Jump to the session that needs you (in a terminal: pressed twice, sent to the program)",
    "app.new_session": "New session",
    "app.theme": "Next theme",
    "app.restart_daemon": "Reconnect to (or start) the daemon",
    "app.suggestions": "Suggestions: work workbench found in the repository",
    "main.quit": "Quit the UI (sessions keep running)",
    "main.attention": "Jump to the session that needs you",
    "main.attach": "Attach: type into the session's terminal",
    "main.focus_list": "Back to the session list",
    "main.grid": "Grid mode on/off",
    "main.pin": "Pin / unpin the session in the grid",
    "main.zoom": "Zoom the pane to full screen / back",
    "main.grow": "Make the focused pane bigger",
    "main.shrink": "Make the focused pane smaller",
    "main.next_pane": "Next pane",
    "main.prev_pane": "Previous pane",
    "main.sidebar": "Show / hide the session list",
    "main.view_terminal": "View: terminal",
    "main.view_transcript": "View: transcript",
    "main.view_diff": "View: diff",
    "main.view_split": "View: side by side",
    "main.approve": "Open the approval card (then y to approve)",
    "main.deny": "Open the approval card (then n to deny)",
    "main.send": "Send a one-line message",
    "main.interrupt": "Interrupt the session",
    "main.stop": "Stop the session",
    "main.restart": "Restart the session",
    "main.remove": "Remove the session (asks first)",
    "main.undo": "Undo the last review action not sent yet",
    "main.send_review": "Send the review (rejections and comments) to the agent",
    "main.merge": "Merge the session (message, strategy, or a pull request)",
    "main.discard": "Discard every change of the session (asks first)",
    "main.check": "Run the repo's check command now",
    "main.send_check": "Send the failing check's output to the agent",
    "main.compare": "Compare attempts side by side; pick the winner",
    "list.down": "Next session (besides down)",
    "list.up": "Previous session (besides up)",
    "diff.down": "Next line",
    "diff.up": "Previous line",
    "diff.page_down": "Page down",
    "diff.page_up": "Page up",
    "diff.next_hunk": "Next hunk",
    "diff.prev_hunk": "Previous hunk",
    "diff.next_file": "Next file",
    "diff.prev_file": "Previous file",
    "diff.select_down": "Extend the line selection down (for a comment)",
    "diff.select_up": "Extend the line selection up",
    "diff.toggle_split": "Unified / side by side",
    "diff.open": "Open or close a collapsed file or hunk",
    "diff.mark": "Mark the hunk reviewed (again: unmark), then on to the next",
    "diff.mark_file": "Mark the whole file reviewed",
    "diff.reject": "Reject the hunk: reversed in the worktree (asks for a reason)",
    "diff.revert_file": "Revert the whole file to the base version",
    "diff.comment": "Comment on the hunk or the selected lines",
    "merge.submit": "Merge",
    "merge.cancel": "Cancel",
    "compare.next": "Next attempt",
    "compare.prev": "Previous attempt",
    "compare.pick": "Pick this attempt (asks first)",
    "compare.close": "Close",
    "approval.approve": "Approve (card focused)",
    "approval.always": "Approve always (card focused)",
    "approval.deny": "Deny (card focused)",
    "approval.deny_reason": "Deny with a reason the agent reads (card focused)",
    "approval.close": "Leave the card",
    "new.submit": "Start the session (Enter in a text field too)",
    "new.cancel": "Cancel",
    "new.attempt": "Add an attempt with the next agent (best-of-N; P compares them)",
    "dialog.cancel": "Cancel",
    "confirm.yes": "Yes",
    "confirm.no": "No",
    "help.close": "Close",
    "terminal.detach": "Detach from the terminal (the one key never sent to it)",
    "suggest.start": "Start a session on the suggestion (the agent last used)",
    "suggest.attempts": "Start several attempts on it (asks how many)",
    "suggest.edit": "Edit the prompt first (the new-session dialog)",
    "suggest.dismiss": "Dismiss it for good",
    "suggest.refresh": "Scan again, the repository's check included",
    "suggest.close": "Close",
}

# Keys a terminal multiplexer or the shell needs; never accepted as the detach key.
RESERVED_DETACH = {
    "ctrl+b", "ctrl+a", "ctrl+c", "ctrl+d", "ctrl+z", "ctrl+l", "ctrl+r", "ctrl+u", "ctrl+w",
    "ctrl+e", "ctrl+k", "ctrl+p", "ctrl+n", "ctrl+f", "ctrl+h", "ctrl+i", "ctrl+j", "ctrl+m",
    "enter", "tab", "escape", "backspace", "space", "up", "down", "left", "right",
}
DEFAULT_DETACH = "ctrl+right_square_bracket"


_MODIFIERS = {"ctrl", "shift", "alt", "meta", "super", "hyper"}
_KEY_NAMES = {k.value.rpartition("+")[2] for k in Keys if not k.value.startswith("<")} | {
    "minus", "plus", "comma", "colon", "semicolon", "at", "ctrl-at", "newline"}


def _valid_base(name: str) -> bool:
    if len(name) == 1:
        return name.isprintable() and not name.isspace()
    if name in _KEY_NAMES:
        return True
    try:  # Textual names punctuation after its Unicode name: question_mark, equals_sign, ...
        unicodedata.lookup(KEY_TO_UNICODE_NAME.get(name, name.replace("_", " ").upper()))
    except KeyError:
        return False
    return True


def bad_key(spec: str) -> str | None:
    """The first key of a comma-separated key spec that Textual would never match, or None."""
    for key in spec.split(","):
        key = key.strip()
        *mods, base = key.split("+") if key not in ("+", "") else [key]
        if not key or not base or any(m not in _MODIFIERS for m in mods) or not _valid_base(base):
            return key
    return None


def keymap_errors(user: dict[str, object]) -> list[str]:
    """One line per `[keymap]` entry that cannot work: an unknown id, or a key no terminal sends."""
    known = set(DEFAULT_KEYS) | {"terminal.detach"}
    errors: list[str] = []
    for bid, keys in user.items():
        name = one_line(str(bid), 60)
        if bid not in known:
            errors.append(f"keymap: unknown binding id {name!r} (`?` in the UI lists the ids)")
        elif not isinstance(keys, str) or not keys.strip():
            errors.append(f"keymap: {name} needs a key such as \"ctrl+k\"")
        elif (bad := bad_key(keys)) is not None:
            errors.append(f"keymap: {name} = {one_line(keys, 60)!r}: {one_line(bad, 40)!r} is not a key"
                          " (keys look like \"ctrl+k\", \"f5\", \"question_mark\"; several: \"a,b\")")
    return errors


def startup_keymap_errors() -> list[str]:
    """The keymap errors of config.toml as it is now (none when the file itself is bad: the
    UI reports that on its own and starts with the defaults)."""
    from workbench import config
    from workbench.errors import WorkbenchError

    try:
        return keymap_errors(dict(config.load().keymap))
    except (WorkbenchError, OSError):
        return []


def resolve_keymap(user: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The user's valid keymap entries, plus one notice per entry that cannot work."""
    known = set(DEFAULT_KEYS) | {"terminal.detach"}
    good = {bid: keys.strip() for bid, keys in user.items()
            if bid in known and isinstance(keys, str) and keys.strip() and bad_key(keys) is None}
    return good, keymap_errors(dict(user))


def detach_key(configured: str, keymap: dict[str, str]) -> tuple[str, str | None]:
    """The detach key (keymap `terminal.detach` wins over `ui.detach_key`) and a notice if refused."""
    key = (keymap.get("terminal.detach") or configured or DEFAULT_DETACH).strip()
    if key in RESERVED_DETACH or (len(key) == 1 and key.isprintable()):
        return DEFAULT_DETACH, f"detach key {key!r} is needed by the shell or tmux; using ctrl+]"
    return key, None


_CURSOR = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
_TILDE = {"insert": 2, "delete": 3, "pageup": 5, "pagedown": 6, "f5": 15, "f6": 17, "f7": 18,
          "f8": 19, "f9": 20, "f10": 21, "f11": 23, "f12": 24}
_SS3 = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}
_PLAIN = {"enter": b"\r", "tab": b"\t", "escape": b"\x1b", "backspace": b"\x7f",
          "shift+tab": b"\x1b[Z", "space": b" ", "ctrl+space": b"\x00", "ctrl+@": b"\x00",
          "ctrl+backslash": b"\x1c", "ctrl+right_square_bracket": b"\x1d",
          "ctrl+circumflex_accent": b"\x1e", "ctrl+underscore": b"\x1f",
          "ctrl+left_square_bracket": b"\x1b", "ctrl+h": b"\x08", "ctrl+i": b"\t",
          "ctrl+j": b"\n", "ctrl+m": b"\r", "shift+enter": b"\r"}
_MODS = {"shift": 1, "alt": 2, "ctrl": 4}


def key_to_bytes(key: str, character: str | None, app_cursor: bool = False) -> bytes | None:
    """What a terminal sends for a Textual key event; None when it sends nothing."""
    if key in _PLAIN:
        return _PLAIN[key]
    *mods, base = key.split("+") if key != "+" else ["+"]
    mod = 0
    for m in mods:
        if m not in _MODS:
            break
        mod += _MODS[m]
    else:
        if base in _CURSOR:
            if mod:
                return f"\x1b[1;{mod + 1}{_CURSOR[base]}".encode()
            return f"\x1b{'O' if app_cursor else '['}{_CURSOR[base]}".encode()
        if base in _TILDE:
            n = _TILDE[base]
            return f"\x1b[{n};{mod + 1}~".encode() if mod else f"\x1b[{n}~".encode()
        if base in _SS3:
            return f"\x1b[1;{mod + 1}{_SS3[base]}".encode() if mod else f"\x1bO{_SS3[base]}".encode()
        if mods == ["alt"]:
            inner = key_to_bytes(base, character[-1] if character else None, app_cursor)
            return b"\x1b" + inner if inner else None
        if mods == ["ctrl"] and len(base) == 1 and base.isalpha():
            return bytes([ord(base.lower()) & 0x1F])
    if character:
        return character.encode("utf-8", "surrogateescape")
    return None


def paste_bytes(text: str, bracketed: bool) -> bytes:
    """A paste as the terminal would send it; an embedded end marker cannot end the paste early."""
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    if bracketed:
        text = text.replace("\x1b[201~", "")
        return b"\x1b[200~" + text.encode("utf-8", "surrogateescape") + b"\x1b[201~"
    return text.encode("utf-8", "surrogateescape")
