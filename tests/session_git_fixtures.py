"""Sessions in their own private repositories, for tests below the daemon.

`LocalSession` drives the daemon's real `SessionGit` (snapshot import, tree diff, the
worktree-edit helper) with the helpers run unsandboxed, so core review and merge code can
be tested on real repositories without bubblewrap. Tests of the sandboxed path go through
the daemon (test_review.py, test_host_boundary_attacks.py).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import git, make_repo
from workbench.core import review as rv
from workbench.core import session_repo
from workbench.core.diff_model import Diff
from workbench.core.models import Session
from workbench.core.sandbox_policy import SandboxCommand
from workbench.daemon.session_git import SessionGit


class _Unsandboxed:
    """Stands in for SessionManager.sandboxed: runs helpers as plain processes."""

    def sandboxed(self, s: Session, argv: list[str], spec: Any = None, *, new_session: bool = False) -> SandboxCommand:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        return SandboxCommand(argv=argv, env=env)


@dataclass
class LocalSession:
    repo: Path
    wt: Path
    base: str
    session: Session
    git: SessionGit

    @classmethod
    def make(cls, tmp_path: Path, files: dict[str, str] | None = None, sid: str = "s1") -> LocalSession:
        repo = make_repo(tmp_path / "repo", files or {"a.txt": "a\n"})
        base = git(repo, "rev-parse", "HEAD").strip()
        wt = tmp_path / "wt"
        session_repo.create(repo, wt, sid, f"wb/{sid}", base)
        s = Session(id=sid, name=sid, repo=str(repo), branch=f"wb/{sid}", worktree=str(wt),
                    base_commit=base, base_ref="main", agent="shell", command=[])
        return cls(repo, wt, base, s, SessionGit(_Unsandboxed()))  # type: ignore[arg-type]

    def snapshot(self) -> session_repo.Snapshot:
        return asyncio.run(self.git.snapshot(self.session))

    def diff(self, context: int = 3) -> Diff:
        return asyncio.run(self.git.diff(self.session, context=context))

    def edit(self, request: dict[str, Any]) -> dict[str, Any]:
        return asyncio.run(self.git.edit(self.session, request))

    def tree(self, snap: session_repo.Snapshot) -> session_repo.SnapshotTree:
        return session_repo.SnapshotTree(self.repo, snap.tip)

    def review(self, plan: Any, st: rv.ReviewState, *args: Any) -> rv.Rejection:
        """What the daemon's reject / revert_file do: plan on the snapshot, edit, record."""
        snap = self.snapshot()
        diff = self.git.tree_diff(self.session, snap, rv.CONTEXT)
        rej, request = plan(st, diff, *args, self.tree(snap))
        rv.applied(st, rej, self.edit(request))
        return rej

    def undo(self, st: rv.ReviewState) -> dict[str, Any]:
        request = rv.undo_request(st)
        if request is not None:
            self.edit(request)
        return rv.undo(st)

    def comment(self, st: rv.ReviewState, path: str, line: int, text: str, end_line: int | None = None) -> rv.Comment:
        snap = self.snapshot()
        diff = self.git.tree_diff(self.session, snap, rv.CONTEXT, [path])
        return rv.comment(st, diff, path, line, text, end_line, self.tree(snap))
