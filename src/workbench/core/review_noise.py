"""Review noise: build artefacts a session created (`__pycache__/`, `node_modules/`, ...)
that the repository does not track. The diff lists them apart (`Diff.ignored`, shown as
one "ignored: N files" line), their hunks are not reviewed, and a merge leaves them out.

A pattern is matched the way .gitignore reads it, simplified: `name/` matches a directory
of that name anywhere (`*.egg-info/` too), a pattern without `/` matches a file's name
anywhere (`*.pyc`), and one with a `/` inside matches the path from the top (`docs/_build/*`).

Only files the session added are candidates (a file the base commit has is never hidden),
and a directory pattern does not apply where the base commit has that directory: a repo
that tracks `build/` keeps every file under it in review.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TYPE_CHECKING = False  # (not from typing: the CLI's fast path loads this module)
if TYPE_CHECKING:
    from pathlib import Path

# The usual artefacts of Python, Node and packaging tools; `[review] ignore` replaces it.
DEFAULT_IGNORE: tuple[str, ...] = (
    "__pycache__/", "*.pyc", "*.pyo", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/",
    ".tox/", ".nox/", ".hypothesis/", "*.egg-info/", ".eggs/", "node_modules/", ".venv/",
    "dist/", "build/", ".coverage", "htmlcov/", ".DS_Store",
)
MAX_GROUPS = 20  # places named in the summary line (the count is always whole)


@dataclass(frozen=True, slots=True)
class Match:
    """Why a path is noise: the directory a `name/` pattern matched ("pkg/__pycache__"),
    or "" for a file pattern."""

    directory: str


def match(path: str, patterns: Sequence[str]) -> Match | None:
    """The first pattern `path` (a file, relative to the top) matches, or None."""
    parts = path.split("/")
    for pat in patterns:
        if pat.endswith("/"):
            name = pat.rstrip("/")
            for i, part in enumerate(parts[:-1]):
                if fnmatch.fnmatchcase(part, name):
                    return Match("/".join(parts[: i + 1]))
        elif "/" in pat:
            if fnmatch.fnmatchcase(path, pat.lstrip("/")):
                return Match("")
        elif fnmatch.fnmatchcase(parts[-1], pat):
            return Match("")
    return None


def split(repo: Path, base: str, added: Iterable[str], patterns: Sequence[str]) -> dict[str, Match]:
    """Of the paths the session `added` (not in `base`), the ones that are noise, with why."""
    if not patterns:
        return {}
    found = {p: m for p in added if (m := match(p, patterns)) is not None}
    dirs = sorted({m.directory for m in found.values() if m.directory})
    tracked = _tracked_dirs(repo, base, dirs) if dirs else set()
    return {p: m for p, m in found.items() if not m.directory or m.directory not in tracked}


def groups(found: dict[str, Match]) -> list[str]:
    """Where the noise is, for the summary line: its directories (with a `/`) and files."""
    out = dict.fromkeys(m.directory + "/" if m.directory else p for p, m in sorted(found.items()))
    return list(out)[:MAX_GROUPS]


def summary(count: int, where: Sequence[str], shown: int = 3) -> str:
    """"ignored: 2 files (node_modules/, pkg/__pycache__/)", or "" with nothing ignored."""
    if not count:
        return ""
    places = ", ".join(where[:shown]) + (", ..." if len(where) > shown else "")
    return f"ignored: {count} file{'s' if count != 1 else ''}" + (f" ({places})" if places else "")


def added_between(repo: Path, base: str, tip: str) -> list[str]:
    """Files `tip` adds to `base`, as the diff lists them (renames detected, so a file moved
    from a tracked one is a rename, not an addition)."""
    # Imported here: the CLI's fast path prints `summary` without git's plumbing.
    from workbench.core.git_runner import run_git

    out = run_git(repo, ["diff", "--no-ext-diff", "--no-textconv", "-M", "-z", "--name-only",
                         "--diff-filter=A", base, tip, "--"]).stdout
    return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]


def _tracked_dirs(repo: Path, base: str, dirs: Sequence[str]) -> set[str]:
    """Those of `dirs` that are directories in commit `base` (one `cat-file` for all)."""
    from workbench.core.git_runner import run_git

    names = [d for d in dirs if "\n" not in d]
    lines = "".join(f"{base}:{d}\n" for d in names).encode("utf-8", "surrogateescape")
    out = run_git(repo, ["cat-file", "--batch-check=%(objecttype)"], input=lines).stdout.splitlines()
    # A name cat-file cannot be asked about (a newline in it) counts as tracked: shown.
    tracked = {d for d in dirs if "\n" in d}
    tracked.update(d for d, kind in zip(names, out, strict=False) if kind.strip() == b"tree")
    return tracked
