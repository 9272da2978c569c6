"""Inside the sandbox: an ACP agent's `fs/read_text_file` and `fs/write_text_file`.

The daemon sends one JSON request on stdin and reads one JSON reply. This runs as the
session (its sandbox, its rules), never as the daemon, so it can read and write only what
the session's own commands can; the checks below keep the agent inside its worktree (the
current directory), symlinks resolved.

  {"op": "read", "path": rel, "line": int|null, "limit": int|null} -> {"ok": true, "content": str}
  {"op": "write", "path": rel, "content": str}                      -> {"ok": true}
Failures reply {"ok": false, "error": str}.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

MAX_READ = 8 << 20


def _inside(rel: Any) -> str:
    root = os.path.realpath(".")
    if not isinstance(rel, str) or not rel or os.path.isabs(rel):
        raise ValueError(f"not a path relative to the worktree: {rel!r}")
    full = os.path.realpath(os.path.join(root, rel))
    if full != root and not full.startswith(root + os.sep):
        raise ValueError(f"{rel} leads outside the worktree")
    parts = os.path.relpath(full, root).split(os.sep)
    if parts[0] == ".git":
        raise ValueError(f"{rel} is in the repository's .git")
    return full


def _read(req: dict[str, Any]) -> dict[str, Any]:
    path = _inside(req.get("path"))
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read(MAX_READ + 1)
    if len(text) > MAX_READ:
        raise ValueError(f"{req.get('path')} is larger than {MAX_READ} characters")
    line, limit = req.get("line"), req.get("limit")
    if isinstance(line, int) or isinstance(limit, int):
        lines = text.splitlines(keepends=True)
        start = max((line or 1) - 1, 0)
        end = start + limit if isinstance(limit, int) else None
        text = "".join(lines[start:end])
    return {"ok": True, "content": text}


def _write(req: dict[str, Any]) -> dict[str, Any]:
    path = _inside(req.get("path"))
    content = req.get("content")
    if not isinstance(content, str):
        raise ValueError("content must be a string")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)
    return {"ok": True}


def main(args: list[str]) -> int:
    try:
        req = json.loads(sys.stdin.read())
        if not isinstance(req, dict):
            raise ValueError("the request is not an object")
        op = req.get("op")
        reply = _read(req) if op == "read" else _write(req) if op == "write" else None
        if reply is None:
            raise ValueError(f"unknown op {op!r}")
    except (OSError, ValueError, UnicodeError) as e:
        reply = {"ok": False, "error": f"{type(e).__name__}: {e}" if isinstance(e, OSError) else str(e)}
    sys.stdout.write(json.dumps(reply))
    return 0
