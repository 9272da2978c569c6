"""Review noise: build artefacts a session created (`__pycache__/`, `node_modules/`, ...)
that the repository does not track. The diff lists them apart (`Diff.ignored`, shown as
one "ignored: N files" line), their hunks are not reviewed, and a merge leaves them out.

A pattern is matched the way .gitignore reads it, simplified: `name/` matches a directory
of that name anywhere (`*.egg-info/` too), a pattern without `/` matches a file's name
anywhere (`*.pyc`), and one with a `/` inside matches the path from the top (`docs/_build/`,
`docs/*.html`).

Only files the session added are candidates (a file the base commit has is never hidden),
and a `name/` pattern does not apply where the base commit has that directory: a repo
that tracks `build/` keeps every new file under it in review.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
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
    """Why a path is noise: the outermost directory a `name/` pattern matched
    ("pkg/__pycache__", "" if none), and whether a file pattern matched it too (then it is
    noise even where the base tracks that directory)."""

    directory: str
    by_name: bool = False


class _Patterns:
    """Patterns compiled into three regexes, directory names remembered (a diff asks about
    thousands of paths under a few directories)."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        inner = [p for p in patterns if "/" in p.rstrip("/")]  # from the top ("docs/_build/")
        self.dir = _either(p.rstrip("/") for p in patterns if p.endswith("/") and p not in inner)
        self.path = _either(p.lstrip("/") + ("*" if p.endswith("/") else "") for p in inner)
        self.name = _either(p for p in patterns if "/" not in p)
        self.dirs_seen: dict[str, bool] = {}

    def is_dir(self, name: str) -> bool:
        hit = self.dirs_seen.get(name)
        if hit is None:
            if len(self.dirs_seen) > 100_000:
                self.dirs_seen.clear()
            hit = self.dirs_seen[name] = self.dir is not None and self.dir(name) is not None
        return hit

    def match(self, path: str) -> Match | None:
        parts = path.split("/")
        directory = ""
        if self.dir is not None:
            for i, part in enumerate(parts[:-1]):
                if self.is_dir(part):
                    directory = "/".join(parts[: i + 1])
                    break
        by_name = bool((self.name is not None and self.name(parts[-1]))
                       or (self.path is not None and self.path(path)))
        return Match(directory, by_name) if directory or by_name else None


def _either(patterns: Iterable[str]) -> Callable[[str], object] | None:
    pats = list(patterns)
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in pats)).match if pats else None


_compiled: dict[tuple[str, ...], _Patterns] = {}


def match(path: str, patterns: Sequence[str]) -> Match | None:
    """Whether `path` (a file, relative to the top) matches any of `patterns`, and how."""
    key = tuple(patterns)
    pats = _compiled.get(key)
    if pats is None:
        if len(_compiled) > 16:
            _compiled.clear()
        pats = _compiled[key] = _Patterns(key)
    return pats.match(path)


def split(repo: Path, base: str, added: Iterable[str], patterns: Sequence[str]) -> dict[str, Match]:
    """Of the paths the session `added` (not in `base`), the ones that are noise, with why."""
    if not patterns:
        return {}
    found = {p: m for p in added if (m := match(p, patterns)) is not None}
    dirs = sorted({m.directory for m in found.values() if m.directory})
    tracked = _tracked_dirs(repo, base, dirs) if dirs else set()
    return {p: m for p, m in found.items() if m.by_name or not m.directory or m.directory not in tracked}


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
