"""The one way the daemon runs git: hooks and fsmonitor off, environment cleaned, errors as GitError.

A session's repository config and environment are in the agent's reach, so every git call
the workbench makes goes through `run_git`: `SAFE_GIT` turns off hooks and any fsmonitor the
repo configures, `git_env` drops the variables that would point git at another repository,
index or config and pins the editors and prompts, and a failure is raised as `GitError` in
git's own words (`stderr_text`). `ADD_OPTS` and `DIFF_FLAGS` pin the output shape the diff
parsers expect whatever the user's config.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from workbench.core.background import niced
from workbench.errors import GitError, NotFound, UsageError

# Hardened invocation: never run hooks or an fsmonitor configured by the repo (the agent
# may have written that config), and print non-ASCII paths as they are.
SAFE_GIT = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.quotePath=false",
)
# Inherited variables that would redirect git to another repo, index or config.
_DROP_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_LITERAL_PATHSPECS",
    "GIT_GLOB_PATHSPECS",
    "GIT_ICASE_PATHSPECS",
    "GIT_EXTERNAL_DIFF",
    "GIT_DIFF_OPTS",
)
# Config that makes `git diff` print the shape the parser expects whatever the user's config,
# and keeps `git add` quiet about line endings.
ADD_OPTS = (
    "-c",
    "diff.noprefix=false",
    "-c",
    "diff.mnemonicPrefix=false",
    "-c",
    "diff.suppressBlankEmpty=false",
    "-c",
    "core.safecrlf=false",
)
DIFF_FLAGS = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-relative",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)



def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _DROP_ENV
        and not k.startswith("GIT_CONFIG_KEY_")
        and not k.startswith("GIT_CONFIG_VALUE_")
    }
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_EDITOR=":",
        GIT_SEQUENCE_EDITOR=":",
        GIT_MERGE_AUTOEDIT="no",
        GIT_OPTIONAL_LOCKS="0",
    )
    if extra:
        env.update(extra)
    return env


def run_git(
    cwd: Path,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    background: bool = False,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git SAFE_GIT args` in `cwd`; a failure becomes GitError with git's own words.
    `background`: at a lower CPU priority (core/background.py)."""
    argv = ["git", *SAFE_GIT, *args]
    try:
        proc = subprocess.run(
            niced(argv) if background else argv,
            cwd=cwd,
            env=git_env(env),
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except FileNotFoundError as e:
        if not cwd.is_dir():
            raise NotFound(f"directory {cwd} does not exist") from e
        raise GitError("git is not installed or not on PATH", hint="install git") from e
    if check and proc.returncode != 0:
        raise GitError(f"git {_subcommand(args)} failed in {cwd}: {stderr_text(proc)}")
    return proc


def _subcommand(args: Sequence[str]) -> str:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] == "-c" else 1
    return args[i] if i < len(args) else "command"


def stderr_text(proc: subprocess.CompletedProcess[bytes]) -> str:
    text = (
        proc.stderr.decode("utf-8", "replace").strip()
        or proc.stdout.decode("utf-8", "replace").strip()
    )
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("hint:")]
    return "; ".join(lines[-4:]) or f"exit status {proc.returncode}"


def git_out(cwd: Path, *args: str) -> str:
    return run_git(cwd, args).stdout.decode("utf-8", "surrogateescape").strip()


def check_ref(ref: str, what: str = "ref") -> str:
    if not isinstance(ref, str) or not ref or ref.startswith("-"):
        raise UsageError(f"invalid {what} {ref!r}: may not be empty or start with '-'")
    if any(ord(c) < 32 or ord(c) == 127 for c in ref):
        raise UsageError(f"invalid {what} {ref!r}: contains control characters")
    return ref
