"""Sessions in the default workspace sandbox, through the real daemon."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import git
from tests.wb import Wb

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("needs_bwrap")]


def test_default_session_is_sandboxed_and_can_commit(wb: Wb, repo: Path) -> None:
    secret = Path(os.environ["HOME"]) / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True)
    secret.write_text("PRIVATE KEY\n")
    sid = wb.new(repo, "--name", "boxed")
    s = wb.wait_state(sid, "running")
    assert s["sandbox"] == "workspace"
    wb.run("keys", sid, r"cat ~/.ssh/id_rsa || echo no-secret-$((1+1))\r")
    wb.wait_screen(sid, "no-secret-2")
    wb.run("keys", sid, r"touch " + str(repo / "escape.txt") + r" || echo ro-$((2+2))\r")
    wb.wait_screen(sid, "ro-4")
    assert not (repo / "escape.txt").exists()
    wb.run("keys", sid, r"echo new > feature.txt && git add feature.txt && git commit -qm feat && echo ok-$((3+3))\r")
    wb.wait_screen(sid, "ok-6", timeout=20)
    assert git(Path(s["worktree"]), "log", "-1", "--format=%s", "wb/boxed").strip() == "feat"
    # the diff is read from the imported snapshot, through a helper in the sandbox
    assert "feature.txt" in wb.run("diff", sid, "--stat").stdout
    assert git(repo, "branch", "--list", "wb/boxed").strip() == ""


def test_daemon_socket_is_not_reachable_from_a_session(wb: Wb, repo: Path) -> None:
    sid = wb.new(repo)
    wb.wait_state(sid, "running")
    sock = wb.json("daemon", "status")["socket"]
    wb.run("keys", sid, rf"ls {sock} 2>/dev/null || echo hidden-$((5+5))\r")
    wb.wait_screen(sid, "hidden-10")


def test_in_place_default_becomes_strict(wb: Wb, repo: Path) -> None:
    res = wb.run("new", "--repo", str(repo), "--in-place")
    assert "strict" in res.stderr
    assert wb.session(res.stdout.strip())["sandbox"] == "strict"
    bad = wb.run("new", "--repo", str(repo), "--in-place", "--sandbox", "workspace", check=False)
    assert bad.returncode == 2 and "writable .git" in bad.stderr
