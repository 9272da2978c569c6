"""Helpers shared by the diff tests. No tests here."""

from __future__ import annotations

import hashlib

from workbench.core.diff_hunk import DiffLine


def expected_id(path: str, lines: list[DiffLine], n: int) -> str:
    """The documented hunk id: sha1 of the path, then NUL, kind, bytes and a backslash if
    marked for each changed line, then NUL "#n" for the n-th repeat of an identical hunk."""
    parts = [path]
    for ln in lines:
        if ln.kind != " ":
            parts += ("\0", ln.kind, ln.raw(), "\\" if ln.no_newline else "")
    if n:
        parts.append(f"\0#{n}")
    return hashlib.sha1("".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:12]
