"""Host paths a sandbox hides or binds: secrets, `.env*` files, workbench state, user binds.

Also prepares a session's private $HOME. `bwrap_argv` turns these paths into mounts.
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import glob
import os
import pwd
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from workbench import paths
from workbench.core import safe_fs
from workbench.errors import SandboxError

# How far `find_dotenv` looks: repos can be huge, and these dirs hold no project secrets.
DOTENV_SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache"}
DOTENV_MAX_DEPTH = 3
DOTENV_MAX_DIRS = 2000


@functools.lru_cache(maxsize=8)
def _passwd_home(uid: int) -> str | None:
    """The passwd entry's home (reading the passwd database is ~0.1 ms; it was asked per
    hidden pattern on every spawn)."""
    try:
        return pwd.getpwuid(uid).pw_dir
    except KeyError:
        return None


def _real_homes() -> list[Path]:
    """$HOME and the passwd home: tools differ in which they use to find ~/.ssh."""
    homes: list[Path] = []
    env_home = os.environ.get("HOME")
    if env_home:
        homes.append(Path(env_home))
    pw_home = _passwd_home(os.getuid())
    if pw_home is not None:
        homes.append(Path(pw_home))
    out: list[Path] = []
    for h in homes:
        if h not in out:
            out.append(h)
    return out


def expand_hidden(patterns: Iterable[str]) -> list[Path]:
    """Hidden-path patterns -> existing absolute paths (~ is the real user's home; globs ok)."""
    found: list[Path] = []
    homes = _real_homes()
    for pat in patterns:
        if pat.startswith("~"):
            rest = pat[1:].lstrip("/")
            candidates = [str(h / rest) if rest else str(h) for h in homes]
        else:
            candidates = [pat]
        for cand in candidates:
            matches = glob.glob(cand) if glob.has_magic(cand) else [cand]
            for m in matches:
                if not os.path.lexists(m):  # most listed secrets are absent: one syscall each
                    continue
                p = Path(m)
                if p.exists() or p.is_symlink():
                    for q in (p.absolute(), p.resolve()):
                        if q not in found:
                            found.append(q)
    return found


# root -> (the directories scanned with their mtimes, what was found). A directory's mtime
# changes whenever an entry in it is added, removed or renamed, so re-checking the mtimes
# (a stat per directory) tells whether a rescan could find anything new; the scan itself
# was ~3 ms of every tool call on a small repository.
_DOTENV_CACHE: dict[Path, tuple[list[tuple[str, int]], list[Path]]] = {}
_DOTENV_CACHE_MAX = 256


def _unchanged(dirs: list[tuple[str, int]]) -> bool:
    for d, mtime in dirs:
        try:
            if os.stat(d, follow_symlinks=False).st_mtime_ns != mtime:
                return False
        except OSError:
            return False
    return True


def find_dotenv(root: Path) -> list[Path]:
    """`.env*` files and dirs in `root`, a few levels deep (bounded: repos can be huge)."""
    cached = _DOTENV_CACHE.get(root)
    if cached is not None and _unchanged(cached[0]):
        return list(cached[1])
    out: list[Path] = []
    scanned: list[tuple[str, int]] = []
    # Timestamps are coarse (a clock tick): a directory changed within the last second
    # could change again without its mtime moving, so it is never trusted (git's "racy" rule).
    recent = time.time_ns() - 1_000_000_000
    queue: list[tuple[str, int]] = [(str(root), 0)]
    while queue and len(scanned) < DOTENV_MAX_DIRS:
        d, depth = queue.pop(0)
        try:
            # The mtime before the listing: a change during the scan shows up next time.
            mtime = os.stat(d, follow_symlinks=False).st_mtime_ns
            scanned.append((d, mtime if mtime < recent else -1))
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if fnmatch.fnmatch(e.name, ".env*"):
                out.append(Path(e.path))
                continue
            if depth < DOTENV_MAX_DEPTH and e.name not in DOTENV_SKIP_DIRS:
                with contextlib.suppress(OSError):
                    if e.is_dir(follow_symlinks=False):
                        queue.append((e.path, depth + 1))
    if len(_DOTENV_CACHE) >= _DOTENV_CACHE_MAX:
        _DOTENV_CACHE.clear()
    _DOTENV_CACHE[root] = (scanned, out)
    return list(out)


# (name, PATH) -> where `shutil.which` found it: a PATH walk is ~10 stats, and every spawn
# looks up bwrap and prlimit. A hit is re-checked with one access(); a miss is not kept.
_WHICH: dict[tuple[str, str], str] = {}


def which(name: str) -> str | None:
    """`shutil.which(name)`, remembered while the file stays executable and PATH the same."""
    key = (name, os.environ.get("PATH", ""))
    hit = _WHICH.get(key)
    if hit is not None and os.access(hit, os.X_OK) and not os.path.isdir(hit):
        return hit
    found = shutil.which(name)
    if found is None:
        _WHICH.pop(key, None)
    else:
        if len(_WHICH) > 64:
            _WHICH.clear()
        _WHICH[key] = found
    return found


def workbench_dirs() -> list[Path]:
    """Where workbench and the daemon keep state: never visible inside a session."""
    dirs = [paths.runtime_dir(), paths.data_dir(), paths.state_dir(), paths.config_dir(),
            paths.cache_dir()]
    xdg_rt = os.environ.get("XDG_RUNTIME_DIR")
    if xdg_rt:
        dirs.append(Path(xdg_rt))
    return dirs


def is_within(p: Path, parent: Path) -> bool:
    """`p` is `parent` or lies under it (by name: resolve both first)."""
    return p == parent or p.is_relative_to(parent)


def is_within_name(p: str, parent: str) -> bool:
    """`is_within` for names: absolute and resolved, kept as strings on the per-spawn path."""
    return p == parent or parent == "/" or p.startswith(parent + "/")


def realpaths(names: Iterable[str]) -> list[str]:
    """`os.path.realpath` of each name, the same answer with fewer syscalls: many share a
    parent (other sessions' worktrees and homes), which is resolved once, and a name
    that is not itself a symlink resolves to the resolved parent joined with it. Nothing
    is kept between calls, so a path changed between two spawns is seen by the second."""
    parents: dict[str, str] = {}
    out: list[str] = []
    for name in names:
        norm = os.path.normpath(os.path.abspath(name))
        parent, leaf = os.path.split(norm)
        if not leaf or leaf == "..":
            out.append(os.path.realpath(norm))
            continue
        real_parent = parents.get(parent)
        if real_parent is None:
            real_parent = parents[parent] = os.path.realpath(parent)
        joined = os.path.join(real_parent, leaf)
        out.append(os.path.realpath(joined) if os.path.islink(joined) else joined)
    return out


def parse_bind(spec: str, what: str) -> tuple[Path, Path]:
    """One `extra_*_binds` entry, SRC or SRC:DEST, -> (resolved source, destination).

    `what` names the setting in error messages.
    """
    src_s, _, dst_s = spec.partition(":")
    src = Path(os.path.expanduser(src_s))
    dst = Path(os.path.expanduser(dst_s)) if dst_s else src
    if not src.is_absolute() or not dst.is_absolute():
        raise SandboxError(
            f"sandbox.{what}: {spec!r} is not an absolute path",
            hint="write SRC or SRC:DEST with absolute paths (~ allowed)",
        )
    if not src.exists():
        raise SandboxError(
            f"sandbox.{what}: {src} does not exist", hint="create it or remove it from the list"
        )
    return src.resolve(), dst


def prepare_home(home: Path, repo: Path | None = None) -> None:
    """Create a session's private $HOME with a .gitconfig carrying the user's identity.

    The home is session-writable: the file goes through `safe_fs`, which replaces a
    planted symlink instead of writing through it, and keeps a regular file the session
    edited.
    """
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    cfg = home / ".gitconfig"
    if cfg.exists() and not cfg.is_symlink():
        return
    lines = []
    ident = {}
    for key in ("user.name", "user.email"):
        cmd = ["git", "config", "--get", key]
        proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            ident[key.split(".")[1]] = proc.stdout.strip()
    if ident:
        lines.append("[user]")
        lines += [f"\t{k} = {v}" for k, v in ident.items()]
    lines += ["[gc]", "\tauto = 0", "[maintenance]", "\tauto = false"]
    safe_fs.write_text(home, ".gitconfig", "\n".join(lines) + "\n", mode=0o644)

