"""The host side of a suggestions scan: what git and the file system say about a repository.

Only read-only git (`grep`, `blame`, `rev-parse`, `remote get-url`) through the safe runner
(hooks and fsmonitor off, environment cleaned): the repository is treated as hostile and
nothing here writes to it. Commands the repository chooses or configures (its check, its
linters' plugins, a log command) run elsewhere, in a sandbox (daemon/suggest_service.py).
Blocking: the daemon calls these in a thread.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from workbench.core import suggest_parse as sp
from workbench.core.git_runner import run_git
from workbench.errors import UsageError

TODO_PATTERN = r"(^|[^A-Za-z0-9_])(TODO|FIXME|XXX)([^A-Za-z0-9_]|$)"
TODO_HITS = 5000  # hits read from the grep (the rest are only counted)
BLAME_HITS = 200  # hits whose age blame looks up (the newest-first order)
LOG_BYTES = 256 * 1024  # the end of a log file that is read


def head(repo: Path) -> str:
    proc = run_git(repo, ["rev-parse", "--verify", "--quiet", "HEAD"], check=False)
    return proc.stdout.decode("ascii", "replace").strip() if proc.returncode == 0 else ""


def todo_hits(repo: Path) -> tuple[list[sp.TodoHit], int]:
    """TODO/FIXME/XXX lines of the tracked files, the first BLAME_HITS dated by blame."""
    proc = run_git(repo, ["grep", "-n", "-z", "-I", "-E", "--no-color", "-e", TODO_PATTERN], check=False)
    if proc.returncode not in (0, 1):
        return [], 0
    hits, total = sp.parse_grep(proc.stdout, TODO_HITS)
    by_file: dict[str, list[sp.TodoHit]] = {}
    for h in hits[:BLAME_HITS]:
        by_file.setdefault(h.path, []).append(h)
    for path, items in by_file.items():
        # Blame of the working tree: a line not committed yet gets the current time.
        ranges = [a for h in items for a in ("-L", f"{h.line},{h.line}")]
        out = run_git(repo, ["blame", "--porcelain", "--no-textconv", *ranges, "--", path], check=False)
        times = sp.blame_times(out.stdout) if out.returncode == 0 else {}
        for h in items:
            h.time = times.get(h.line, 0.0)
    return hits, total


@dataclass
class Linter:
    name: str  # ruff | mypy | eslint
    argv: list[str]


def _pyproject(root: Path) -> dict[str, object]:
    try:
        data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    tool = data.get("tool")
    return tool if isinstance(tool, dict) else {}


def _is_file(root: Path, *names: str) -> bool:
    return any((root / n).is_file() and not (root / n).is_symlink() for n in names)


def linters(root: Path, node_root: Path) -> list[Linter]:
    """The linters `root` (a checkout) configures and this machine has, as commands to run
    in `root`; eslint comes from `node_root`'s node_modules (the main checkout's)."""
    tool = _pyproject(root)
    out: list[Linter] = []
    ruff = shutil.which("ruff")
    if ruff and ("ruff" in tool or _is_file(root, "ruff.toml", ".ruff.toml")):
        out.append(Linter("ruff", [ruff, "check", "--output-format=json", "--no-cache", "--exit-zero", "."]))
    mypy = shutil.which("mypy")
    setup_cfg = root / "setup.cfg"
    in_setup = setup_cfg.is_file() and "[mypy]" in setup_cfg.read_text(encoding="utf-8", errors="replace")
    if mypy and ("mypy" in tool or _is_file(root, "mypy.ini", ".mypy.ini") or in_setup):
        cfg = tool.get("mypy")
        files = cfg.get("files") if isinstance(cfg, dict) else None
        targets = [] if files else ["."]
        out.append(Linter("mypy", [mypy, "--no-error-summary", "--no-color-output", "--cache-dir=/tmp/mypy",
                                   *targets]))
    eslint = node_root / "node_modules" / ".bin" / "eslint"
    configured = _is_file(root, "eslint.config.js", "eslint.config.mjs", "eslint.config.cjs", ".eslintrc",
                          ".eslintrc.js", ".eslintrc.cjs", ".eslintrc.json", ".eslintrc.yml", ".eslintrc.yaml")
    if configured and eslint.is_file() and os.access(eslint, os.X_OK):
        out.append(Linter("eslint", [str(eslint), "-f", "json", "."]))
    return out


_GITHUB = re.compile(r"github\.com[:/]+([\w.-]+)/([\w.-]+?)(?:\.git)?/?$")


def github_repo(repo: Path) -> str | None:
    """owner/name of the `origin` remote when it is on GitHub (gh then needs no git)."""
    proc = run_git(repo, ["remote", "get-url", "origin"], check=False)
    m = _GITHUB.search(proc.stdout.decode("utf-8", "replace").strip()) if proc.returncode == 0 else None
    return f"{m.group(1)}/{m.group(2)}" if m else None


def log_path(repo: Path, name: str, from_repo_file: bool) -> Path:
    """The log file `name` (relative to the repo); a repository's own setting may only name
    a file inside the repository."""
    p = Path(os.path.expanduser(name))
    p = p if p.is_absolute() else repo / p
    if from_repo_file:
        real, root = p.resolve(), repo.resolve()
        if not real.is_relative_to(root) or real == root:
            raise UsageError(f"suggest.log_file {name!r} of the repository's .workbench.toml is outside it")
    return p


def read_log(path: Path) -> str:
    """The end of a log file (a partial first line dropped)."""
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - LOG_BYTES))
        data = f.read(LOG_BYTES)
    if size > LOG_BYTES:
        data = data.split(b"\n", 1)[-1]
    return data.decode("utf-8", "replace")


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
