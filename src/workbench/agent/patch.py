"""Apply a `*** Begin Patch` patch (Codex `apply_patch`) all-or-nothing: the public entry.

The format and its parser live in `patch_parse`, finding and splicing hunks in
`patch_match`, and writing without following symlinks in `patch_write`; the names callers
use are re-exported here, so they import only this module.

The built-in agent applies patches inside the session's sandbox, through
`workbench.session_side.apply_patch`, which imports this module: it and those three must
need nothing but the standard library. The applier refuses absolute paths, `..`, `.git`
and symlinks, and opens every path component relative to its parent directory with
`O_NOFOLLOW`, so even a session without a sandbox cannot race it into writing outside the
workspace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workbench.agent.patch_match import apply_chunks
from workbench.agent.patch_parse import (
    DELETE,
    AddFile,
    Chunk,
    DeleteFile,
    FileOp,
    PatchError,
    UpdateFile,
    check_path,
    extract_patch_from_argv,
    extract_patch_with_cwd,
    parse_patch,
)
from workbench.agent.patch_write import Workspace, remove_file

__all__ = [
    "AddFile",
    "Chunk",
    "DeleteFile",
    "FileOp",
    "PatchError",
    "PatchResult",
    "UpdateFile",
    "apply_patch",
    "check_path",
    "extract_patch_from_argv",
    "extract_patch_with_cwd",
    "parse_patch",
    "remove_file",
]


@dataclass
class PatchResult:
    """Paths are relative to the workspace root, with `/` separators."""

    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"A {p}" for p in self.added]
        lines += [f"M {p}" for p in self.modified]
        lines += [f"R {a} -> {b}" for a, b in self.moved]
        lines += [f"D {p}" for p in self.deleted]
        return "\n".join(lines)

    def paths(self) -> list[str]:
        """Every path touched, each once (both ends of a move)."""
        out: list[str] = []
        for p in [*self.added, *self.modified, *(x for m in self.moved for x in m), *self.deleted]:
            if p not in out:
                out.append(p)
        return out


def apply_patch(text: str, root: Path, *, cwd: Path | None = None, tag: int | None = None) -> PatchResult:
    """Apply a patch to files under `root` (paths relative to `cwd`, default `root`).

    Temporary files are named `.NAME.wb-patch-TAG.tmp`, TAG defaulting to this process's id
    (the sandboxed helper is given the daemon's, so a restarted daemon can tell them stale).

    Every file's new content is computed before anything is written, so a hunk that does not
    apply leaves the workspace untouched. Symlinks are never followed (see
    `patch_write.Workspace`).
    """
    ops = parse_patch(text)
    ws = Workspace(root, cwd, tag)
    try:
        result = _apply_ops(ops, ws)
        ws.commit()
    finally:
        ws.close()
    return result


def _apply_ops(ops: list[FileOp], ws: Workspace) -> PatchResult:
    result = PatchResult()
    for op in ops:
        if isinstance(op, AddFile):
            rel = ws.rel(op.path)
            existed = ws.exists(rel, op.path)
            ws.stage(rel, op.content, op.path)
            (result.modified if existed else result.added).append(rel)
        elif isinstance(op, DeleteFile):
            rel = ws.rel(op.path)
            if not ws.exists(rel, op.path):
                raise PatchError(f"cannot delete {op.path}: it does not exist")
            ws.stage(rel, None, op.path)
            result.deleted.append(rel)
        else:
            rel = ws.rel(op.path)
            updated = apply_chunks(ws.read(rel, op.path), op.chunks, op.path)
            if op.move_to is None or ws.rel(op.move_to) == rel:
                ws.stage(rel, updated, op.path)
                result.modified.append(rel)
                continue
            dest = ws.rel(op.move_to)
            if ws.exists(dest, op.move_to):
                raise PatchError(
                    f"cannot move {op.path} to {op.move_to}: the destination exists; "
                    f"delete it first with '{DELETE}{op.move_to}'"
                )
            ws.stage(dest, updated, op.move_to)
            ws.stage(rel, None, op.path)
            result.moved.append((rel, dest))
    return result

