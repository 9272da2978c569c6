"""Whether a widget already shows some Content: a repaint skipped is a keystroke not delayed."""

from __future__ import annotations

from textual.content import Content


def looks_the_same(shown: object, new: Content) -> bool:
    """Content's `==` compares the text only, not its styles."""
    return isinstance(shown, Content) and shown.plain == new.plain and shown.spans == new.spans
