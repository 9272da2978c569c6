"""The host's checks of an imported snapshot (`session_repo.check_imported`): the tip is
complete and the `head` the helper names is the tip or the tip's parent, whatever the
helper claims."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import git, make_repo
from workbench.core import session_repo
from workbench.core.session_repo import Snapshot
from workbench.errors import GitError


def _repo(tmp_path: Path) -> tuple[Path, str, str, str]:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "a.txt").write_text("b\n")
    git(repo, "commit", "-qam", "second")
    second = git(repo, "rev-parse", "HEAD").strip()
    (repo / "a.txt").write_text("c\n")
    git(repo, "commit", "-qam", "third")
    third = git(repo, "rev-parse", "HEAD").strip()
    return repo, base, second, third


def test_head_must_be_the_tip_or_its_parent(tmp_path: Path) -> None:
    repo, base, second, third = _repo(tmp_path)
    tree = git(repo, "rev-parse", f"{third}^{{tree}}").strip()
    session_repo.check_imported(repo, Snapshot(tip=third, tree=tree, head=second), [base])
    session_repo.check_imported(repo, Snapshot(tip=third, tree=tree, head=third), [base])
    session_repo.check_imported(repo, Snapshot(tip=third, tree=tree, head=None), [base])
    for wrong in (base, "0" * 40):
        with pytest.raises(GitError, match="not the snapshot's parent"):
            session_repo.check_imported(repo, Snapshot(tip=third, tree=tree, head=wrong), [base])


def test_an_incomplete_tip_is_refused_before_its_head_is_looked_at(tmp_path: Path) -> None:
    repo, base, _second, third = _repo(tmp_path)
    tree = git(repo, "rev-parse", f"{third}^{{tree}}").strip()
    blob = git(repo, "rev-parse", f"{third}:a.txt").strip()
    path = repo / ".git" / "objects" / blob[:2] / blob[2:]
    path.unlink()
    with pytest.raises(GitError, match="incomplete"):
        session_repo.check_imported(repo, Snapshot(tip=third, tree=tree, head="1" * 40), [base])
