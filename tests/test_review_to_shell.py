"""Review feedback is never typed into a plain shell: it would run as commands (before,
`S` on a shell session ran "Reason: ..." lines in bash)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_repo
from tests.wb import Wb

OFF = ("--sandbox", "off")


@pytest.mark.parametrize("agent", ["shell", "bash"])
def test_review_send_to_a_shell_is_refused_and_kept(wb: Wb, tmp_path: Path, agent: str) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "one\ntwo\n"})
    sid = wb.new(repo, "--name", "sh", "--agent", agent, *OFF)
    wt = Path(wb.wait_state(sid, "running")["worktree"])
    (wt / "a.txt").write_text("one\nTWO\n")
    marker = wt / "ran"
    wb.run("comment", sid, "a.txt:2", f"touch {marker}")
    res = wb.run("review", sid, "--send", check=False)
    assert res.returncode == 2
    assert "runs a shell, not an agent" in res.stderr and "Traceback" not in res.stderr
    assert not marker.exists()
    # Nothing lost: the comment is still pending, and shown by `review`.
    assert f"touch {marker}" in wb.run("review", sid).stdout
