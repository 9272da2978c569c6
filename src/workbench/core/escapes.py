"""Make untrusted text (model output, file names, PTY titles) inert before showing it
outside a terminal pane: no escape sequence may retitle, move or recolour the user's
terminal, or write their clipboard (OSC 52)."""

from __future__ import annotations

import re

# CSI, OSC/DCS/SOS/PM/APC strings (terminated by BEL or ST), other ESC sequences, C1 controls.
_ESCAPES = re.compile(
    r"""
    \x1b\[[0-?]*[ -/]*[@-~]?          # CSI ... final
  | \x1b[\]PX^_].*?(?:\x07|\x1b\\|$)  # OSC / DCS / SOS / PM / APC strings
  | \x1b[ -/]*[0-~]?                  # other escapes (charset, keypad, ...)
  | [\x80-\x9f]                       # C1 controls (8-bit CSI/OSC)
    """,
    re.VERBOSE | re.DOTALL,
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def strip_escapes(text: str, *, keep_newlines: bool = True) -> str:
    """Remove escape sequences and control characters (tab kept; newline kept if asked)."""
    text = _ESCAPES.sub("", text)
    if keep_newlines:
        return _CONTROLS.sub("", text.replace("\r\n", "\n")).replace("\r", "")
    return _CONTROLS.sub("", text.replace("\n", " ").replace("\r", ""))


def one_line(text: str, limit: int = 200) -> str:
    """A single inert line, cut to `limit` characters."""
    out = strip_escapes(text, keep_newlines=False)
    return out if len(out) <= limit else out[: limit - 1] + "…"

