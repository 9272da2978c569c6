"""Running git inside the sandbox, for the session-side helpers (stdlib only)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

# The helpers' own invocations: no pager, no prompts; hooks stay the session's business
# (they run as the session, inside the sandbox) but none of ours needs them.
_BASE = ("git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "core.quotePath=false")


class HelperError(Exception):
    """A failure to report to the host as {"error": ...}."""


def git(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    full = dict(os.environ)
    full.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", GIT_EDITOR=":")
    if env:
        full.update(env)
    proc = subprocess.run(
        [*_BASE, *args],
        env=full,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    if check and proc.returncode != 0:
        raise HelperError(f"git {args[0]} failed: {tail(proc.stderr)}")
    return proc


def out(*args: str, env: Mapping[str, str] | None = None) -> str:
    return git(args, env=env).stdout.decode("utf-8", "surrogateescape").strip()


def tail(raw: bytes) -> str:
    lines = [ln for ln in raw.decode("utf-8", "replace").splitlines() if ln.strip()]
    return "; ".join(lines[-3:])[:500] or "no message"


def fail(message: str) -> int:
    sys.stderr.write(message[:2000] + "\n")
    return 2
