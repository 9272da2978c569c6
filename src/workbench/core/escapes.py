"""Make untrusted text (model output, file names, PTY titles) inert before showing it
outside a terminal pane: no escape sequence may retitle, move or recolour the user's
terminal, or write their clipboard (OSC 52)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re

# CSI, OSC/DCS/SOS/PM/APC strings (terminated by BEL or ST), other ESC sequences, C1 controls.
_ESCAPES_RE = r"""
    \x1b\[[0-?]*[ -/]*[@-~]?          # CSI ... final
  | \x1b[\]PX^_].*?(?:\x07|\x1b\\|$)  # OSC / DCS / SOS / PM / APC strings
  | \x1b[ -/]*[0-~]?                  # other escapes (charset, keypad, ...)
  | [\x80-\x9f]                       # C1 controls (8-bit CSI/OSC)
    """
_CONTROLS_RE = r"[\x00-\x08\x0b-\x1f\x7f]"
# Compiled on first need: `re` (with enum) is a third of a one-shot CLI call's CPU, and most
# text (a screen, a session's name) has nothing to strip.
_compiled: tuple[re.Pattern[str], re.Pattern[str]] | None = None


def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    global _compiled
    if _compiled is None:
        import re

        _compiled = (re.compile(_ESCAPES_RE, re.VERBOSE | re.DOTALL), re.compile(_CONTROLS_RE))
    return _compiled


def strip_escapes(text: str, *, keep_newlines: bool = True) -> str:
    """Remove escape sequences and control characters (tab kept; newline kept if asked)."""
    if text.replace("\n", "").replace("\t", "").isprintable():
        # No ESC, C0 or C1 control (all are unprintable): nothing the patterns would remove.
        return text if keep_newlines else text.replace("\n", " ")
    escapes, controls = _patterns()
    text = escapes.sub("", text)
    if keep_newlines:
        return controls.sub("", text.replace("\r\n", "\n")).replace("\r", "")
    return controls.sub("", text.replace("\n", " ").replace("\r", ""))


def one_line(text: str, limit: int = 200) -> str:
    """A single inert line, cut to `limit` characters."""
    out = strip_escapes(text, keep_newlines=False)
    return out if len(out) <= limit else out[: limit - 1] + "…"

