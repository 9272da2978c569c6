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

With `--remove-stale` it applies nothing: it deletes the temporaries (`.NAME.wb-patch-TAG.tmp`,
untracked) of a patch cut off by a killed daemon, those tagged other than `--tag`, and
prints `{"ok": true, "removed": [...]}`.

Usage: apply_patch [--cwd DIR] [--tag N] < PATCH
       apply_patch --remove-stale --tag N
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from workbench.agent.patch import PatchError, apply_patch, remove_file

_TEMP = re.compile(r"(?:^|/)\.[^/]+\.wb-patch-(\d+)\.tmp$")

MAX_PATCH = 64 << 20


def _parse(argv: list[str]) -> tuple[str, int | None, bool]:
    cwd, tag, remove_stale = ".", None, False
    it = iter(argv)
    for a in it:
        if a == "--remove-stale":
            remove_stale = True
        elif a == "--cwd":
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
    return cwd, tag, remove_stale


def _remove_stale(keep: int | None) -> list[str]:
    """Delete `.NAME.wb-patch-TAG.tmp` files (untracked, not ignored) whose TAG is not `keep`."""
    from workbench.session_side.gitcmd import git  # only when cleaning up

    proc = git(["ls-files", "--others", "--exclude-standard", "-z"], check=False)
    removed = []
    for rel in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        m = _TEMP.search(rel)
        if m and int(m.group(1)) != keep and remove_file(Path("."), rel):
            removed.append(rel)
    return removed


def main(argv: list[str]) -> int:
    cwd, tag, remove_stale = _parse(argv)
    if remove_stale:
        sys.stdout.write(json.dumps({"ok": True, "removed": _remove_stale(tag)}) + "\n")
        return 0
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
