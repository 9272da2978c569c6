"""core.review on real session repositories: marks, rejections, comments, undo, the message.

Reviews plan on the imported snapshot and edit the worktree through the session-side
helper, exactly as the daemon does (tests/session_git_fixtures.py runs them unsandboxed).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import git
from tests.session_git_fixtures import LocalSession
from workbench.core import review as rv
from workbench.errors import GitError, NotFound, UsageError

LINES = [f"line {i}" for i in range(1, 41)]


def text(lines: list[str]) -> str:
    return "".join(x + "\n" for x in lines)


@pytest.fixture
def ls(tmp_path: Path) -> LocalSession:
    return LocalSession.make(tmp_path, {"a.txt": text(LINES), "gone.txt": "old\ncontent\n",
                                        "img.bin": "\0\1\2old"})


def three_hunks(wt: Path) -> None:
    lines = list(LINES)
    lines[1], lines[19], lines[37] = "CHANGED 2", "CHANGED 20", "CHANGED 38"
    (wt / "a.txt").write_text(text(lines))


def test_reject_middle_hunk_keeps_others_and_undo_reapplies(ls: LocalSession) -> None:
    wt = ls.wt
    three_hunks(wt)
    git(wt, "add", "a.txt")  # the agent's staged work: the review must not touch its index
    staged = git(wt, "diff", "--cached", "--name-only")
    st = rv.ReviewState("s1")
    f = ls.diff().file("a.txt")
    assert len(f.hunks) == 3
    rej = ls.review(rv.reject, st, f.hunks[1].id, "keep line 20")
    assert rej.where == "20" and rej.reason == "keep line 20" and not rej.whole_file
    now = (wt / "a.txt").read_text()
    assert "CHANGED 2\n" in now and "CHANGED 38\n" in now and "line 20\n" in now and "CHANGED 20" not in now
    assert git(wt, "diff", "--cached", "--name-only") == staged
    res = ls.undo(st)
    assert res["undone"] == "reject" and not st.rejections
    assert "CHANGED 20\n" in (wt / "a.txt").read_text()
    with pytest.raises(UsageError, match="nothing to undo"):
        ls.undo(st)


def test_whole_file_rejections_restore_exactly(ls: LocalSession) -> None:
    wt = ls.wt
    (wt / "new.py").write_text("print('new')\n")
    (wt / "gone.txt").unlink()
    (wt / "img.bin").write_bytes(b"\0\1\2new binary")
    st = rv.ReviewState("s2")
    d = ls.diff()
    assert d.file("img.bin").binary and not d.file("img.bin").hunks
    assert ls.review(rv.reject, st, d.file("new.py").hunks[0].id, "no").whole_file
    assert ls.review(rv.reject, st, d.file("gone.txt").hunks[0].id, "keep it").whole_file
    ls.review(rv.revert_file, st, "img.bin", "binary edits are not wanted")
    assert not (wt / "new.py").exists()
    assert (wt / "gone.txt").read_text() == "old\ncontent\n"
    assert (wt / "img.bin").read_bytes() == b"\0\1\2old"
    assert ls.diff().files == []
    for _ in range(3):
        ls.undo(st)
    assert (wt / "new.py").read_text() == "print('new')\n"
    assert not (wt / "gone.txt").exists()
    assert (wt / "img.bin").read_bytes() == b"\0\1\2new binary"


def test_undo_of_revert_refuses_when_file_changed_since(ls: LocalSession) -> None:
    wt = ls.wt
    (wt / "new.py").write_text("v1\n")
    st = rv.ReviewState("s3")
    ls.review(rv.revert_file, st, "new.py", "")
    (wt / "new.py").write_text("the agent wrote this again\n")
    with pytest.raises(GitError, match="changed"):
        ls.undo(st)
    assert (wt / "new.py").read_text() == "the agent wrote this again\n"
    assert st.undo and st.rejections  # nothing changed, still undoable later


def test_marks_follow_hunk_content(ls: LocalSession) -> None:
    wt = ls.wt
    three_hunks(wt)
    st = rv.ReviewState("s4")
    d = ls.diff()
    h0, h1, _h2 = d.file("a.txt").hunks
    assert rv.mark(st, d, hunk=h0.id) == [h0.id]
    assert rv.file_status(d.file("a.txt"), st) == "partial"
    # the agent changes the second hunk again: the first one's mark survives
    lines = (wt / "a.txt").read_text().splitlines()
    lines[19] = "CHANGED 20 again"
    (wt / "a.txt").write_text(text(lines))
    d2 = ls.diff()
    ids = [h.id for h in d2.file("a.txt").hunks]
    assert ids[0] == h0.id and h1.id not in ids
    assert h0.id in st.reviewed
    rv.mark(st, d2, path="a.txt")
    assert rv.file_status(d2.file("a.txt"), st) == "reviewed"
    ls.undo(st)
    assert rv.file_status(d2.file("a.txt"), st) == "partial"
    with pytest.raises(NotFound):
        rv.mark(st, d2, hunk=h1.id)


def test_comments_validate_and_quote(ls: LocalSession) -> None:
    wt = ls.wt
    three_hunks(wt)
    (wt / "gone.txt").unlink()
    st = rv.ReviewState("s5")
    c = ls.comment(st, "a.txt", 2, "why \x1b[31mred\x1b[0m?", end_line=3)
    assert c.excerpt == ["CHANGED 2", "line 3"] and c.hunk is not None
    deleted = ls.comment(st, "gone.txt", 2, "keep this")
    assert deleted.excerpt == ["content"]
    with pytest.raises(UsageError, match="past its end"):
        ls.comment(st, "a.txt", 41, "x")
    with pytest.raises(UsageError, match="empty"):
        ls.comment(st, "a.txt", 1, "   ")
    with pytest.raises(UsageError, match="invalid path"):
        ls.comment(st, "../etc/passwd", 1, "x")
    with pytest.raises(NotFound):
        ls.comment(st, "nope.txt", 1, "x")
    # a symlink the session planted is quoted as the link it is, never followed on the host
    outside = wt.parent / "secret"
    outside.mkdir()
    (outside / "key.txt").write_text("TOPSECRET\n")
    os.symlink(outside, wt / "escape")
    with pytest.raises(NotFound):
        ls.comment(st, "escape/key.txt", 1, "x")
    msg = rv.build_message(st)
    assert "\x1b" not in msg and "why red?" in msg and "TOPSECRET" not in msg
    assert "a.txt:2-3: comment:" in msg and "   > CHANGED 2" in msg and "gone.txt:2" in msg


def test_message_and_sent_state_persist(ls: LocalSession) -> None:
    three_hunks(ls.wt)
    st = rv.ReviewState("s6")
    hunks = ls.diff().file("a.txt").hunks
    ls.review(rv.reject, st, hunks[0].id, "use the old wording")
    ls.review(rv.reject, st, hunks[2].id, "")
    ls.comment(st, "a.txt", 20, "good")
    st.save()
    again = rv.ReviewState.load("s6")
    assert [r.reason for r in again.rejections] == ["use the old wording", ""]
    msg = rv.build_message(again)
    assert msg.startswith("Review of your changes: 2 rejected changes and 1 comment.")
    order = [msg.index("a.txt:2:"), msg.index("a.txt:20: comment"), msg.index("a.txt:38:")]
    assert order == sorted(order)
    assert "Reason: use the old wording" in msg and "   | -line 2" in msg and "   | +CHANGED 2" in msg
    rv.mark_sent(again)
    assert rv.build_message(again) == "" and again.summary()["pending_rejections"] == 0
    with pytest.raises(UsageError, match="nothing to undo"):
        ls.undo(again)
    rv.ReviewState.delete("s6")
    assert rv.ReviewState.load("s6").rejections == []


def test_stale_hunk_id_is_a_clear_error(ls: LocalSession) -> None:
    wt = ls.wt
    three_hunks(wt)
    st = rv.ReviewState("s7")
    old = ls.diff().file("a.txt").hunks[0].id
    (wt / "a.txt").write_text(text(["different", *LINES[1:]]))
    with pytest.raises(NotFound, match="no longer exists"):
        ls.review(rv.reject, st, old, "x")
    assert (wt / "a.txt").read_text().startswith("different\n")
    assert st.rejections == [] and st.undo == []


def test_damaged_state_file_starts_over() -> None:
    path = rv.ReviewState.file("bad")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert rv.ReviewState.load("bad").comments == []
    assert path.with_suffix(".bad").exists()


def test_merge_message_defaults_to_the_agents_last_answer(tmp_path: Path) -> None:
    from workbench.core.models import Session
    from workbench.core.store import Store
    from workbench.daemon.review_merge import agent_summary

    store = Store(tmp_path / "db.sqlite")
    s = Session(id="x1", name="fix-bug", repo="", branch="", worktree="", base_commit="", base_ref="",
                agent="builtin", command=[])
    assert agent_summary(store, s) == "workbench: fix-bug"
    store.add_event(s.id, "assistant", {"text": "Fixed the parser\n\nIt now handles CRLF."})
    store.add_event(s.id, "tool_call", {"name": "shell"})
    assert agent_summary(store, s) == "Fixed the parser\n\nIt now handles CRLF."
    store.add_event(s.id, "assistant", {"text": "x" * 100})
    assert agent_summary(store, s).startswith("workbench: fix-bug\n\nxxx")
    s.agent = "claude"
    assert agent_summary(store, s) == "workbench: fix-bug"
    store.close()


def test_merge_message_is_the_task_and_the_agents_summary_never_a_placeholder(tmp_path: Path) -> None:
    from workbench.core.models import Session
    from workbench.core.store import Store
    from workbench.daemon.review_merge import agent_summary

    store = Store(tmp_path / "db.sqlite")
    s = Session(id="x1", name="builtin-2", repo="", branch="", worktree="", base_commit="", base_ref="",
                agent="builtin", command=[], prompt="\nFix the CSV parser\nit breaks on CRLF")
    assert agent_summary(store, s) == "Fix the CSV parser"
    store.add_event(s.id, "assistant", {"text": "Parser now strips \\r before splitting."})
    store.add_event(s.id, "assistant", {"text": "(script finished)"})
    store.add_event(s.id, "assistant", {"text": "half a sent", "interrupted": True})
    assert agent_summary(store, s) == "Fix the CSV parser\n\nParser now strips \\r before splitting."
    s.agent = "acp:gemini"  # ACP agents record their answers too
    assert agent_summary(store, s).endswith("Parser now strips \\r before splitting.")
    s.prompt = "x" * 200
    assert agent_summary(store, s).splitlines()[0] == "x" * 71 + "…"
    store.close()


def test_has_changes_reads_a_snapshot_not_the_sessions_git(ls: LocalSession, tmp_path: Path) -> None:
    """Whether a session has work to review is never asked of git in its repository on the
    host: its config is the session's (before: `git status` there ran its fsmonitor)."""
    import asyncio

    from workbench.daemon.session_git import has_changes

    pwned = tmp_path / "pwned"
    git(ls.wt, "config", "core.fsmonitor", f"touch {pwned}")
    assert asyncio.run(has_changes(ls.git, ls.session)) is False
    (ls.wt / "new.txt").write_text("n\n")
    assert asyncio.run(has_changes(ls.git, ls.session)) is True
    git(ls.wt, "-c", "core.fsmonitor=false", "add", "new.txt")  # (the session's own git)
    git(ls.wt, "-c", "core.fsmonitor=false", "commit", "-qm", "work")
    assert asyncio.run(has_changes(ls.git, ls.session)) is True
    assert not pwned.exists()
