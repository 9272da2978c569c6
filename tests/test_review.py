"""Diff review end to end: the real CLI against a real daemon, real git repos and PTYs."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import git, make_repo
from tests.helpers import wait_for
from tests.wb import Wb
from workbench.core import sandbox_probe
from workbench.daemon.client import Client

SANDBOX = () if sandbox_probe.probe().ok else ("--sandbox", "off")
LINES = [f"line {i}" for i in range(1, 41)]


def text(lines: list[str]) -> str:
    return "".join(x + "\n" for x in lines)


def start(wb: Wb, repo: Path, name: str = "s", agent: str = "sleep 1000") -> tuple[str, Path]:
    sid = wb.new(repo, "--name", name, "--agent", agent, *SANDBOX)
    s = wb.wait_state(sid, "running")
    return sid, Path(s["worktree"])


def call(method: str, **params: Any) -> Any:
    """Straight to the daemon: the many look-ups do not need a CLI process each."""
    with Client("test") as c:
        return c.call(method, **params)


def diff_json(wb: Wb, sid: str) -> dict[str, Any]:
    return dict(call("diff", id=sid))


def session(sid: str) -> dict[str, Any]:
    return dict(call("get", id=sid))


def hunks_of(d: dict[str, Any], path: str) -> list[dict[str, Any]]:
    return next(f for f in d["files"] if f["path"] == path)["hunks"]


def events(wb: Wb, sid: str) -> list[dict[str, Any]]:
    return list(call("events", id=sid))


@pytest.fixture
def big_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {
        "a.txt": text(LINES), "b.txt": "one\ntwo\n", "old name.txt": text(LINES[:10]),
        "crlf.txt": "x\r\ny\r\n", "img.png": "\x89PNG\0\0", "gone.txt": "bye\n",
    })


def test_diff_recognises_every_kind_of_change(wb: Wb, big_repo: Path) -> None:
    sid, wt = start(wb, big_repo)
    lines = list(LINES)
    lines[4] = "changed 5"
    (wt / "a.txt").write_text(text(lines))
    (wt / "b.txt").write_text("one\ntwo\nno newline")
    os.rename(wt / "old name.txt", wt / "new name.txt")
    (wt / "crlf.txt").write_bytes(b"x\r\nY\r\n")
    (wt / "img.png").write_bytes(b"\x89PNG\0\1")
    (wt / "gone.txt").unlink()
    (wt / "dossier").mkdir()
    (wt / "dossier" / "résumé ✓.md").write_text("unicode\n")
    index_before = git(wt, "ls-files", "--stage")
    d = diff_json(wb, sid)
    by = {f["path"]: f for f in d["files"]}
    assert by["a.txt"]["status"] == "modified" and (by["a.txt"]["added"], by["a.txt"]["removed"]) == (1, 1)
    assert by["new name.txt"]["status"] == "renamed" and by["new name.txt"]["old_path"] == "old name.txt"
    assert by["img.png"]["binary"] and by["img.png"]["hunks"] == []
    assert by["gone.txt"]["status"] == "deleted"
    assert by["dossier/résumé ✓.md"]["status"] == "added"
    crlf = [ln for ln in hunks_of(d, "crlf.txt")[0]["lines"] if ln[0] == "+"]
    assert crlf[0][1] == "Y" and crlf[0][4]["cr"]
    tail = hunks_of(d, "b.txt")[0]["lines"][-1]
    assert tail[:2] == ["+", "no newline"] and tail[4]["no_newline"]
    for f in d["files"]:
        for h in f["hunks"]:
            assert re.fullmatch(r"[0-9a-f]{12}", h["id"]) and h["reviewed"] is False
        assert f["review_status"] == "unreviewed"
    assert d["stat"]["files"] == 7
    cli = wb.json("diff", sid)
    assert cli["files"] == d["files"] and set(cli) >= {"base", "stat", "files", "review"}
    # the agent's index is never written by the diff
    assert git(wt, "ls-files", "--stage") == index_before
    stat = wb.run("diff", sid, "--stat").stdout
    assert "7 files changed" in stat and re.search(r"img.png +\| Bin", stat)
    unified = wb.run("diff", sid).stdout
    assert "rename from old name.txt" in unified and "Binary files a/img.png and b/img.png differ" in unified
    assert "\\ No newline at end of file" in unified and "+++ b/dossier/résumé ✓.md" in unified
    # ls carries the counts
    s = session(sid)
    assert s["files_changed"] == 7 and s["added"] == d["stat"]["added"] and s["check"] == "none"


def test_reject_two_hunks_comment_and_the_agent_receives_them(wb: Wb, repo: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r10", {f"f{i}.txt": text(LINES) for i in range(10)})
    sid, wt = start(wb, repo, agent="cat")
    for i in range(10):
        lines = list(LINES)
        lines[2], lines[30] = f"f{i} top", f"f{i} bottom"
        (wt / f"f{i}.txt").write_text(text(lines))
    d = diff_json(wb, sid)
    assert len(d["files"]) == 10 and all(len(f["hunks"]) == 2 for f in d["files"])
    # review: mark the first file, reject a hunk in f3 and in f7, comment on f5
    wb.run("mark", sid, "f0.txt")
    top3 = hunks_of(d, "f3.txt")[0]["id"]
    bottom7 = hunks_of(d, "f7.txt")[1]["id"]
    assert "rejected hunk" in wb.run("reject", sid, top3, "--reason", "keep the old top line").stdout
    wb.run("reject", sid, bottom7, "--reason", "bottom must stay")
    wb.run("comment", sid, "f5.txt:31", "rename this please")
    f3 = (wt / "f3.txt").read_text()
    assert "line 3\n" in f3 and "f3 bottom\n" in f3  # the other hunk stays
    d2 = diff_json(wb, sid)
    assert len(hunks_of(d2, "f3.txt")) == 1 and hunks_of(d2, "f7.txt")[0]["lines"]
    assert next(f for f in d2["files"] if f["path"] == "f0.txt")["review_status"] == "reviewed"
    assert [r["reason"] for r in d2["review"]["rejections"]] == ["keep the old top line", "bottom must stay"]
    preview = wb.run("review", sid).stdout
    assert "2 rejected changes and 1 comment" in preview and "f3.txt:3: rejected" in preview
    res = json.loads(wb.run("review", sid, "--send", "--json").stdout)
    assert res["sent"] and res["via"] == "typed"
    wb.wait_screen(sid, "Reason: keep the old top line")
    wb.wait_screen(sid, "rename this please")
    again = wb.run("review", sid, "--send", check=False)
    assert again.returncode == 2 and "nothing to send" in again.stderr
    kinds = [e["kind"] for e in events(wb, sid)]
    for k in ("review_mark", "review_reject", "review_comment", "review_sent"):
        assert k in kinds
    assert kinds.count("review_reject") == 2
    # accept the rest and merge
    out = wb.run("merge", sid, "--squash", "-m", "ten files").stdout
    assert "merged into main (squash)" in out and "10 file(s)" in out
    assert git(repo, "log", "-1", "--format=%s").strip() == "ten files"
    assert "line 3\n" in (repo / "f3.txt").read_text() and "f4 top" in (repo / "f4.txt").read_text()
    assert diff_json(wb, sid)["files"] == []
    assert "merge" in [e["kind"] for e in events(wb, sid)]


def test_undo_reapplies_and_file_changed_during_review(wb: Wb, big_repo: Path) -> None:
    sid, wt = start(wb, big_repo)
    lines = list(LINES)
    lines[1], lines[30] = "A", "B"
    (wt / "a.txt").write_text(text(lines))
    d = diff_json(wb, sid)
    first, second = hunks_of(d, "a.txt")
    wb.run("mark", sid, first["id"])
    # the agent edits the second hunk again while we review
    lines[30] = "B2"
    (wt / "a.txt").write_text(text(lines))
    d2 = diff_json(wb, sid)
    h = hunks_of(d2, "a.txt")
    assert h[0]["id"] == first["id"] and h[0]["reviewed"] and not h[1]["reviewed"]
    assert h[1]["id"] != second["id"]
    stale = wb.run("reject", sid, second["id"], check=False)
    assert stale.returncode == 2 and "no longer exists" in stale.stderr
    wb.run("reject", sid, h[1]["id"], "--reason", "no")
    assert "line 31\n" in (wt / "a.txt").read_text()
    assert "undid reject" in wb.run("undo", sid).stdout
    assert "B2\n" in (wt / "a.txt").read_text()
    wb.run("undo", sid)  # the mark
    assert not hunks_of(diff_json(wb, sid), "a.txt")[0]["reviewed"]
    res = wb.run("undo", sid, check=False)
    assert res.returncode == 2 and "nothing to undo" in res.stderr
    kinds = [e["kind"] for e in events(wb, sid)]
    assert kinds.count("review_undo") == 2


def test_revert_file_and_bad_input(wb: Wb, repo: Path) -> None:
    sid, wt = start(wb, repo)
    (wt / "new.txt").write_text("hello\n")
    (wt / "README.md").write_text("# changed\n")
    assert "reverted new.txt" in wb.run("revert", sid, "new.txt", "--reason", "not needed").stdout
    assert not (wt / "new.txt").exists()
    wb.run("undo", sid)
    assert (wt / "new.txt").read_text() == "hello\n"
    for args, msg in [
        (("comment", sid, "README.md", "x"), "FILE:LINE"),
        (("comment", sid, "README.md:9", "x"), "past its end"),
        (("comment", sid, "../x:1", "x"), "invalid path"),
        (("reject", sid, "0123456789ab"), "no longer exists"),
        (("revert", sid, "nope.txt"), "no changes"),
        (("merge", sid, "--pr"), "gh"),
        (("diff", "nosuch"), "no session"),
    ]:
        res = wb.run(*args, check=False)
        assert res.returncode in (1, 2) and msg in res.stderr, (args, res.stderr)
        assert "Traceback" not in res.stderr


@pytest.mark.parametrize("strategy", ["ff", "squash", "rebase"])
def test_merge_strategies(wb: Wb, repo: Path, strategy: str) -> None:
    sid, wt = start(wb, repo)
    (wt / "feature.txt").write_text("feature\n")
    if strategy != "ff":  # the base branch moves on meanwhile
        (repo / "other.txt").write_text("other\n")
        git(repo, "add", "other.txt")
        git(repo, "commit", "-qm", "other work")
    before = git(repo, "rev-parse", "HEAD").strip()
    message = ("-m", f"merge by {strategy}") if strategy != "ff" else ()
    out = wb.run("merge", sid, f"--{strategy}", *message).stdout
    assert f"({strategy})" in out
    assert (repo / "feature.txt").read_text() == "feature\n"
    assert git(repo, "merge-base", "--is-ancestor", before, "HEAD") == ""
    assert git(repo, "status", "--porcelain") == ""
    subject = git(repo, "log", "-1", "--format=%s").strip()
    assert subject == ("workbench: s" if strategy == "ff" else f"merge by {strategy}")
    # the session now starts from the merged commit: nothing left to review
    assert diff_json(wb, sid)["files"] == []
    ev = [e for e in events(wb, sid) if e["kind"] == "merge"]
    assert ev and ev[-1]["data"]["strategy"] == strategy


def test_merge_conflict_and_dirty_checkout_lose_nothing(wb: Wb, repo: Path) -> None:
    sid, wt = start(wb, repo)
    (wt / "README.md").write_text("# session\n")
    (wt / "extra.txt").write_text("keep me\n")
    (repo / "README.md").write_text("# main\n")
    git(repo, "commit", "-qam", "main edits README")
    main_head = git(repo, "rev-parse", "HEAD").strip()
    branch_tip = git(wt, "rev-parse", "HEAD").strip()
    for flag in ("--rebase", "--squash", "--ff"):
        res = wb.run("merge", sid, flag, "-m", "m", check=False)
        assert res.returncode == 1, res.stderr
        assert ("conflicts in: README.md" in res.stderr) or ("fast-forward is not possible" in res.stderr)
        assert git(repo, "rev-parse", "HEAD").strip() == main_head
        assert git(wt, "rev-parse", "HEAD").strip() == branch_tip
        assert (wt / "README.md").read_text() == "# session\n" and (wt / "extra.txt").read_text() == "keep me\n"
    # a dirty main checkout
    (repo / "src" / "app.py").write_text("print('dirty')\n")
    res = wb.run("merge", sid, "--squash", "-m", "m", check=False)
    assert res.returncode == 1 and "uncommitted changes" in res.stderr and "src/app.py" in res.stderr
    assert (repo / "src" / "app.py").read_text() == "print('dirty')\n"
    assert git(repo, "rev-parse", "HEAD").strip() == main_head
    assert diff_json(wb, sid)["stat"]["files"] == 2


def test_discard(wb: Wb, repo: Path) -> None:
    sid, wt = start(wb, repo)
    (wt / "README.md").write_text("# changed\n")
    (wt / "untracked.txt").write_text("x\n")
    git(wt, "add", "README.md")
    git(wt, "commit", "-qm", "agent commit")
    (wt / "more.txt").write_text("y\n")
    out = wb.run("discard", sid).stdout
    assert "discarded 3 file(s)" in out
    assert (wt / "README.md").read_text() == "# demo\n"
    assert not (wt / "untracked.txt").exists() and not (wt / "more.txt").exists()
    assert diff_json(wb, sid)["files"] == []
    assert any(e["kind"] == "discard" for e in events(wb, sid))


def test_live_diff_events_within_a_second(wb: Wb, repo: Path) -> None:
    sid, wt = start(wb, repo)
    wait_for(lambda: "files_changed" in session(sid), 10, what="first diff stat")
    with Client("test") as c:
        c.call("subscribe", ids=[sid])
        latencies = []
        for i in range(3):
            t0 = time.monotonic()
            (wt / f"live{i}.txt").write_text("a\nb\n")
            while True:
                ev = c.next_event(timeout=5)
                assert ev is not None, "no diff event within 5 s"
                if ev["event"] == "diff" and ev["data"]["session"] == sid:
                    break
            latencies.append(time.monotonic() - t0)
            assert ev["data"]["stat"] == {"files": i + 1, "added": 2 * (i + 1), "removed": 0}
            assert re.fullmatch(r"[0-9a-f]{40}", ev["data"]["digest"])
    print(f"diff event latency: {[round(x * 1000) for x in latencies]} ms")
    assert max(latencies) < 1.0
    assert session(sid)["added"] == 6


def _write_check(repo: Path, command: str) -> None:
    (repo / ".workbench.toml").write_text(f"[check]\ncommand = {json.dumps(command)}\ntimeout_s = 30\n")
    if SANDBOX:  # no bubblewrap: the check runs unsandboxed, which an untrusted repo file may not ask
        from workbench.core import trust

        trust.trust(repo)


def test_check_on_demand_ls_and_send(wb: Wb, repo: Path) -> None:
    _write_check(repo, "test -f ok.txt && echo all good || { echo 'FAILED: ok.txt missing'; exit 1; }")
    sid, wt = start(wb, repo, agent="cat")
    res = wb.run("check", sid, check=False)
    assert res.returncode == 1 and "FAILED: ok.txt missing" in res.stdout and "check failed (exit 1" in res.stdout
    s = session(sid)
    assert s["check"] == "failed" and "ok.txt missing" in s["check_tail"] and s["check_exit_code"] == 1
    assert "sent the failing check output" in wb.run("check", sid, "--send").stdout
    wb.wait_screen(sid, "FAILED: ok.txt missing")
    (wt / "ok.txt").write_text("")
    res = json.loads(wb.run("check", sid, "--json").stdout)
    assert res["status"] == "passed" and res["tail"] == "all good"
    assert session(sid)["check"] == "passed"
    checks = [e["data"]["status"] for e in events(wb, sid) if e["kind"] == "check"]
    assert checks == ["failed", "passed"]
    no_check = wb.run("check", sid, "--send", check=False)
    assert no_check.returncode == 2 and "passed" in no_check.stderr


def test_check_runs_when_the_agent_finishes_with_changes(wb: Wb, repo: Path) -> None:
    _write_check(repo, "echo checked")
    sid, wt = start(wb, repo)
    (wt / "x.txt").write_text("change\n")
    wb.run("notify", sid, "done")
    wait_for(lambda: session(sid)["check"] == "passed", 15, what="automatic check")
    assert session(sid)["check_tail"] == "checked"


def test_attempts_compare_and_pick(wb: Wb, repo: Path) -> None:
    with Client("test") as c:
        res = c.call("new_attempts", repo=str(repo), agent="sleep 1000", name="try", attempts=3,
                     prompt="do it", **({"sandbox": "off"} if SANDBOX else {}))
    ids = [s["id"] for s in res["sessions"]]
    assert [s["name"] for s in res["sessions"]] == ["try-1", "try-2", "try-3"]
    assert {s["extra"]["attempt_group"] for s in res["sessions"]} == {res["group"]}
    for n, sid in enumerate(ids, 1):
        s = wb.wait_state(sid, "running")
        (Path(s["worktree"]) / "answer.txt").write_text("x\n" * n)
    cmp = json.loads(wb.run("compare", ids[0], "--json").stdout)
    assert [s["stat"]["added"] for s in cmp["sessions"]] == [1, 2, 3]
    assert cmp["sessions"][1]["files"][0]["path"] == "answer.txt"
    out = wb.run("pick", ids[1]).stdout
    assert "removed try-1, try-3" in out
    left = [s["id"] for s in wb.json("ls")]
    assert left == [ids[1]]
    # The user's repository holds refs only for the winner (its base and imported work).
    refs = git(repo, "for-each-ref", "--format=%(refname)", "refs/workbench/").split()
    assert {r.split("/")[2] for r in refs} == {ids[1]}
    with Client("test") as c:
        with pytest.raises(Exception, match="taken"):
            c.call("new_attempts", repo=str(repo), agent="sleep 1000", name="try", attempts=2)
        with pytest.raises(Exception, match="from 1 to 10"):
            c.call("new_attempts", repo=str(repo), agent="sleep 1000", attempts=11)


def test_big_diff_comes_in_pages(wb: Wb, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "bigrepo", {"README.md": "x\n"})
    sid, wt = start(wb, repo)
    payload = "".join(f"{i:06d} " + "y" * 90 + "\n" for i in range(1000))  # ~100 KB a file
    for i in range(40):
        (wt / f"big{i:02d}.txt").write_text(payload)
    with Client("test") as c:
        first = c.call("diff", id=sid)
    assert first["next"] is not None and first["stat"]["files"] == 40
    assert first["files"][-1]["hunks"] is None and first["files"][0]["hunks"]
    with Client("test") as c:
        small = c.call("diff", id=sid, max_bytes=250_000)
    assert 1 <= small["next"] <= 3 and len(small["files"]) == 40
    full = wb.json("diff", sid)  # the CLI follows the pages
    assert all(f["hunks"] and len(f["hunks"][0]["lines"]) == 1000 for f in full["files"])
    unified = wb.run("diff", sid).stdout
    assert unified.count("diff --git ") == 40
