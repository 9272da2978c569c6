"""Inside the sandbox: the review's edits to a session's worktree.

The host asks for an edit as one JSON object on stdin and reads one JSON object back.
Everything here runs as the session, so a symlink it planted can only lead where the
session itself can write; the checks below keep honest mistakes inside the worktree.

Ops:
  {"op": "apply", "patch": str, "reverse": bool, "zero": bool}   git apply [-R] a hunk
  {"op": "restore", "base": sha, "paths": [str]}                  paths back as in base
  {"op": "put", "files": [snapshot], "expect": {path: digest}}    write saved contents back
  {"op": "digest", "paths": [str]}                                what each path holds now
  {"op": "reset", "commit": sha, "keep": bool, "from": sha}       discard (hard) / follow a merge
Each reply carries "after": {path: digest} for the paths it touched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from typing import Any

from workbench.session_side.gitcmd import HelperError, git

_LITERAL = {"GIT_LITERAL_PATHSPECS": "1"}


def _rel(path: Any) -> str:
    if not isinstance(path, str) or not path or path.startswith("/") or "\0" in path:
        raise HelperError(f"invalid path {path!r}")
    if ".." in path.split("/"):
        raise HelperError(f"invalid path {path!r}")
    parent = os.path.dirname(path)
    if parent and not os.path.realpath(parent).startswith(os.path.realpath(".") + os.sep):
        raise HelperError(f"refusing to touch {path}: it lies outside the worktree")
    return path


def digest(path: str) -> str:
    if os.path.islink(path):
        return "link:" + os.readlink(path)
    if os.path.isfile(path):
        h = hashlib.sha1()
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return "file:" + h.hexdigest()
    return "other" if os.path.lexists(path) else "absent"


def _unlink(path: str) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)


def _prune_dirs(path: str) -> None:
    d = os.path.dirname(path)
    while d:
        try:
            os.rmdir(d)
        except OSError:
            return
        d = os.path.dirname(d)


def _apply(req: dict[str, Any]) -> dict[str, Any]:
    args = ["apply", "--whitespace=nowarn", "--recount"]
    if req.get("reverse"):
        args.append("-R")
    if req.get("zero"):
        args.append("--unidiff-zero")
    patch = req.get("patch")
    if not isinstance(patch, str):
        raise HelperError("apply needs a patch")
    proc = git(args, input=patch.encode("utf-8", "surrogateescape"), check=False)
    if proc.returncode != 0:
        raise HelperError("the patch does not apply: " + proc.stderr.decode("utf-8", "replace")[-400:])
    return {}


def _restore(req: dict[str, Any]) -> dict[str, Any]:
    base = str(req.get("base") or "")
    paths = [_rel(p) for p in req.get("paths") or []]
    for path in paths:
        in_base = git(["cat-file", "-e", f"{base}:{path}"], check=False).returncode == 0
        _unlink(path)
        if in_base:
            git(["restore", "--source", base, "--worktree", "--", path], env=_LITERAL)
        else:
            _prune_dirs(path)
    return {"after": {p: digest(p) for p in paths}}


def _put(req: dict[str, Any]) -> dict[str, Any]:
    expect = req.get("expect") or {}
    changed = [p for p, d in expect.items() if digest(_rel(p)) != d]
    if changed:
        raise HelperError(f"{', '.join(changed)} changed since it was reverted; nothing changed")
    files = req.get("files") or []
    for snap in files:
        path = _rel(snap.get("path"))
        kind = snap.get("kind")
        _unlink(path)
        if kind in ("file", "symlink"):
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if kind == "symlink":
            os.symlink(str(snap.get("target")), path)
        elif kind == "file":
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(base64.b64decode(str(snap.get("data") or "")))
            os.chmod(path, int(snap.get("mode") or 0o644) & 0o777)
        elif kind == "absent":
            _prune_dirs(path)
    return {"after": {snap["path"]: digest(snap["path"]) for snap in files}}


def _reset(req: dict[str, Any]) -> dict[str, Any]:
    commit = str(req.get("commit") or "")
    if req.get("keep"):
        return _follow(commit, str(req.get("from") or ""))
    git(["reset", "--quiet", "--hard", commit])
    git(["clean", "-f", "-d", "--quiet"])
    return {}


def _follow(merged: str, snapshot: str) -> dict[str, Any]:
    """Follow a merge: HEAD and index move to the merged commit, files the merge brought
    in (the base branch's own changes) are checked out, and whatever the session changed
    since the merged snapshot stays as it is, so the diff shows exactly that."""
    if snapshot:
        # From the snapshot, `--keep` updates only files that differ between the snapshot
        # and the merge, and refuses (changing nothing) if the session edited one since.
        step = git(["reset", "--quiet", "--mixed", snapshot], check=False)
        if step.returncode == 0:
            step = git(["reset", "--quiet", "--keep", merged], check=False)
            if step.returncode == 0:
                return {}
    proc = git(["reset", "--quiet", "--mixed", merged], check=False)
    if proc.returncode != 0:
        return {"warning": proc.stderr.decode("utf-8", "replace").strip()[-300:]}
    return {"warning": "files changed on the base branch were not checked out; the session changed them too"}


OPS = {
    "apply": _apply,
    "restore": _restore,
    "put": _put,
    "digest": lambda req: {"after": {p: digest(_rel(p)) for p in req.get("paths") or []}},
    "reset": _reset,
}


def main(argv: list[str]) -> int:
    try:
        req = json.loads(sys.stdin.buffer.read())
        if not isinstance(req, dict) or req.get("op") not in OPS:
            raise HelperError("unknown edit request")
        reply = {"ok": True, **OPS[req["op"]](req)}
    except HelperError as e:
        reply = {"ok": False, "error": str(e)}
    except (OSError, ValueError) as e:
        reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    sys.stdout.write(json.dumps(reply))
    return 0
