"""Inside the sandbox: apply one `*** Begin Patch` patch to the worktree.

The built-in agent's `apply_patch` tool runs this in the session's sandbox, as the session,
like Codex re-invokes its own binary for it: a patch can write only where the session's
shell could. The patch comes on stdin (UTF-8), paths are relative to the current directory
(the worktree) or to `--cwd DIR` inside it. Output on stdout: one JSON object, either
`{"ok": true, "added": [...], "modified": [...], "deleted": [...], "moved": [[a, b]...]}`
or `{"ok": false, "error": "message for the model"}`; exit status 0 in both cases, non-zero
(with a message on stderr) only when the helper itself could not run.

The applier (`workbench.agent.patch`, standard library only) never follows a symlink, so
even with the sandbox off a session cannot race it out of the worktree.

Temporary files carry `--tag` (the daemon passes its pid) instead of the helper's pid,
which inside the sandbox's pid namespace means nothing to the host.

Usage: apply_patch [--cwd DIR] [--tag N] < PATCH
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from workbench.agent.patch import PatchError, apply_patch

MAX_PATCH = 64 << 20


def _parse(argv: list[str]) -> tuple[str, int | None]:
    cwd, tag = ".", None
    it = iter(argv)
    for a in it:
        if a == "--cwd":
            cwd = next(it, "")
        elif a == "--tag":
            value = next(it, "")
            if not value.isdigit():
                raise SystemExit(f"apply_patch: --tag must be a number, not {value!r}")
            tag = int(value)
        else:
            raise SystemExit(f"apply_patch: unknown argument {a!r}")
    if not cwd or os.path.isabs(cwd) or ".." in cwd.split("/"):
        raise SystemExit(f"apply_patch: --cwd must be a relative path inside the worktree, not {cwd!r}")
    return cwd, tag


def main(argv: list[str]) -> int:
    cwd, tag = _parse(argv)
    data = sys.stdin.buffer.read(MAX_PATCH + 1)
    if len(data) > MAX_PATCH:
        reply: dict[str, object] = {"ok": False, "error": f"the patch is over {MAX_PATCH >> 20} MB"}
    else:
        try:
            result = apply_patch(data.decode("utf-8", "surrogatepass"), Path("."), cwd=Path(cwd), tag=tag)
        except PatchError as e:
            reply = {"ok": False, "error": str(e)}
        except UnicodeError as e:
            reply = {"ok": False, "error": f"the patch is not valid text: {e}"}
        else:
            reply = {"ok": True, "added": result.added, "modified": result.modified,
                     "deleted": result.deleted, "moved": [list(m) for m in result.moved]}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
    return 0
