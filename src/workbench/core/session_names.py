"""Session names people can tell apart: made from the task's prompt, short and unique.

`builtin-2`, `builtin-3` say which agent runs, not what it does; the list already shows
the agent. A name from the prompt's first words ("fix flaky login test") is what a person
scans for. Names stay valid session names (core/worktree.validate_name) and are editable
with `workbench rename`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

MAX_WORDS = 4
MAX_CHARS = 32

# Words that carry no meaning in a task's title.
_FILLER = frozenset({
    "a", "an", "the", "to", "in", "on", "of", "for", "and", "or", "with", "from", "into", "at",
    "by", "is", "are", "be", "this", "that", "it", "its", "please", "can", "could", "would",
    "you", "we", "i", "me", "my", "our", "let", "lets", "let's", "just", "some",
})


def name_from_prompt(prompt: str) -> str:
    """A short name from the prompt's first meaningful words, or '' when it has none."""
    first = next((line for line in prompt.splitlines() if line.strip()), "")
    ascii_text = unicodedata.normalize("NFKD", first).encode("ascii", "ignore").decode()
    words = [w for w in re.findall(r"[A-Za-z0-9]+(?:['.][A-Za-z0-9]+)*", ascii_text)]
    kept = [w.lower() for w in words if w.lower() not in _FILLER] or [w.lower() for w in words]
    out = ""
    for w in kept[:MAX_WORDS]:
        candidate = f"{out} {w}".strip()
        if len(candidate) > MAX_CHARS:
            break
        out = candidate
    if not out and kept:
        out = kept[0][:MAX_CHARS]
    # A name starts with a letter or digit and has no '..' (validate_name's rules).
    return re.sub(r"\.{2,}", ".", out).strip(" .-_")


def unique(base: str, taken: Callable[[str], bool]) -> str:
    """`base`, or `base 2`, `base 3`, ... whichever is free first."""
    if not taken(base):
        return base
    n = 2
    while taken(f"{base} {n}"):
        n += 1
    return f"{base} {n}"
