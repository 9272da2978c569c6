"""A session's diff is computed once per change and paged from there (daemon/diff_cache.py),
end to end: the real CLI and daemon, a real sandboxed session, real git."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tests.conftest import git, make_repo
from tests.wb import Wb
from workbench.core import sandbox_probe
from workbench.daemon.client import Client
from workbench.daemon.protocol import Encoded, encode, encode_value

SANDBOX = () if sandbox_probe.probe().ok else ("--sandbox", "off")


def call(method: str, **params: Any) -> Any:
    with Client("test") as c:
        return c.call(method, **params)


def start(wb: Wb, repo: Path) -> tuple[str, Path]:
    sid = wb.new(repo, "--name", "s", "--agent", "sleep 1000", *SANDBOX)
    s = wb.wait_state(sid, "running")
    return sid, Path(s["worktree"])


def paths_of(d: dict[str, Any]) -> set[str]:
    return {f["path"] for f in d["files"]}


def test_an_unchanged_session_is_diffed_once_for_every_kind_of_request(wb: Wb, repo: Path) -> None:
    sid, wt = start(wb, repo)
    (wt / "src" / "app.py").write_text("print('changed')\n")
    first = call("diff", id=sid)
    assert paths_of(first) == {"src/app.py"}
    n = first["computed"]
    # The CLI's pages, --stat, JSON, the UI's first page: all from the diff already made.
    unified = wb.run("diff", sid).stdout
    assert "+print('changed')" in unified
    assert "src/app.py" in wb.run("diff", sid, "--stat").stdout
    assert paths_of(wb.json("diff", sid)) == {"src/app.py"}
    again = call("diff", id=sid, max_bytes=32000)
    assert again["computed"] == n and again["digest"] == first["digest"]
    # Pages kept from the first request are the same reply, review marks included.
    hunk = first["files"][0]["hunks"][0]["id"]
    call("mark_reviewed", id=sid, hunk=hunk)
    marked = call("diff", id=sid)
    assert marked["files"][0]["hunks"][0]["reviewed"] is True and marked["computed"] == n


def test_a_change_to_the_worktree_or_its_head_makes_a_new_diff(wb: Wb, repo: Path) -> None:
    sid, wt = start(wb, repo)
    (wt / "one.txt").write_text("one\n")
    d1 = call("diff", id=sid, stat=True)
    assert paths_of(d1) == {"one.txt"}
    # Written just before the request: the request still sees it.
    (wt / "two.txt").write_text("two\n")
    d2 = call("diff", id=sid, stat=True)
    assert paths_of(d2) == {"one.txt", "two.txt"} and d2["computed"] > d1["computed"]
    (wt / "one.txt").unlink()
    assert paths_of(call("diff", id=sid, stat=True)) == {"two.txt"}
    # A commit moves HEAD and nothing in the tree: a new snapshot, a new digest.
    git(wt, "add", "-A")
    git(wt, "commit", "-q", "-m", "two")
    d3 = call("diff", id=sid, stat=True)
    assert paths_of(d3) == {"two.txt"} and d3["digest"] != d2["digest"]
    assert call("diff", id=sid, stat=True)["computed"] == d3["computed"]


def test_a_directory_git_stops_ignoring_is_watched_from_then_on(wb: Wb, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {".gitignore": "gen/\n", "a.txt": "a\n"})
    sid, wt = start(wb, repo)
    (wt / "gen").mkdir()
    (wt / "gen" / "out.txt").write_text("1\n")
    assert paths_of(call("diff", id=sid, stat=True)) == set()
    (wt / ".gitignore").write_text("")
    assert paths_of(call("diff", id=sid, stat=True)) == {".gitignore", "gen/out.txt"}
    call("diff", id=sid, stat=True)
    (wt / "gen" / "out.txt").write_text("1\n2\n")
    d = call("diff", id=sid, stat=True)
    assert d["stat"]["added"] == 2, d["text"]


def test_paging_gives_git_s_own_patch_whatever_the_page_size(wb: Wb, tmp_path: Path) -> None:
    body = "".join(f"line {j:04d} of a file long enough to page the reply\n" for j in range(1000))
    repo = make_repo(tmp_path / "repo", {f"f{i:02d}.txt": body for i in range(30)})
    sid, wt = start(wb, repo)
    for i in range(20):
        (wt / f"f{i:02d}.txt").write_text(body.replace("line 0", "LINE 0"))
    (wt / "new file.txt").write_text("new\n")
    out = wb.run("diff", sid).stdout
    base = git(repo, "rev-parse", f"refs/workbench/{sid}/base").strip()
    tip = git(repo, "rev-parse", f"refs/workbench/{sid}/snapshot").strip()
    assert out == git(repo, "diff", "-M", base, tip)
    first = call("diff", id=sid, format="unified")
    assert first["next"] is not None, "the change must need more than one page"

    def pages(**kw: Any) -> str:
        texts, offset = [], 0
        while offset is not None:
            page = call("diff", id=sid, format="unified", offset=offset, **kw)
            texts.append(page["text"])
            offset = page["next"]
        return "".join(texts)

    assert pages() == out
    assert pages(text_only=True, max_bytes=32000) == out
    assert call("diff", id=sid, format="unified", text_only=True)["files"] == []


def test_other_requests_are_answered_while_a_diff_is_computed(wb: Wb, repo: Path) -> None:
    sid, wt = start(wb, repo)
    # A clean filter that takes a while (run by the snapshot inside the sandbox).
    git(wt, "config", "filter.slow.clean", "sleep 3; cat")
    (wt / ".gitattributes").write_text("slow.txt filter=slow\n")
    (wt / "slow.txt").write_text("slow\n")
    done = threading.Event()
    result: list[Any] = []

    def slow_diff() -> None:
        result.append(call("diff", id=sid, stat=True))
        done.set()

    t = threading.Thread(target=slow_diff)
    t.start()
    with Client("test", timeout=30) as c:  # a hang bound, not a timing
        listed = c.call("ls")
        answered_before_diff = not done.is_set()
    t.join(60)
    assert any(s["id"] == sid for s in listed)
    assert answered_before_diff
    assert "slow.txt" in paths_of(result[0])


def test_a_pre_encoded_result_frames_like_any_other() -> None:
    value = {"text": "a\nb \u2028 é", "n": [1, None, True]}
    assert encode({"id": 7, "result": encode_value(value)}) == encode({"id": 7, "result": value})
    assert isinstance(encode_value(value), Encoded)


def test_kept_diffs_are_bounded_over_all_sessions_least_recently_used_first() -> None:
    from workbench.core.diff_model import Diff, FileDiff
    from workbench.daemon import diff_cache

    def diff_of(lines: int) -> Diff:
        return Diff("b" * 40, [FileDiff("f.txt", None, "added", False, lines, 0, [])])

    cache = diff_cache.DiffCache()
    each = diff_cache.MAX_KEPT_LINES // 3
    for sid in ("s1", "s2", "s3"):
        assert cache.put(sid, diff_of(each - 1), (1, 1), "b" * 40, "t") == [None]
    assert cache.get("s1", (1, 1), "b" * 40) is not None  # all three fit
    cache.touch("s1")  # s1 was just asked for: s2 is now the least recently used
    dropped = cache.put("s4", diff_of(each - 1), (1, 1), "b" * 40, "t")
    assert [e.diff.files[0].added for e in dropped if e is not None] == [each - 1]
    assert sorted(cache.entries) == ["s1", "s3", "s4"]
    assert cache.get("s2", (1, 1), "b" * 40) is None  # computed again when asked
    huge = cache.put("s5", diff_of(diff_cache.MAX_KEPT_LINES * 2), (1, 1), "b" * 40, "t")
    assert list(cache.entries) == ["s5"] and len(huge) == 4  # a diff alone over the bound is kept


def test_pages_nobody_asks_for_are_dropped_and_the_diff_kept() -> None:
    from workbench.core.diff_model import Diff, FileDiff
    from workbench.daemon import diff_cache

    cache = diff_cache.DiffCache()
    d1, d2 = (Diff("b" * 40, [FileDiff(f"f{i}.txt", None, "added", False, 3, 0, [])]) for i in (1, 2))
    cache.put("s1", d1, (1, 1), "b" * 40, "t")
    cache.put("s2", d2, (1, 1), "b" * 40, "t")
    cache.keep_page("s1", d1, ("cli", 0), b"x" * 1000)
    cache.keep_page("s2", d2, ("cli", 0), b"y" * 500)
    t0 = cache.entries["s1"].paged_at
    assert cache.drop_idle_pages(t0 + diff_cache.PAGE_IDLE_S / 2) == 0  # both asked for lately
    cache.entries["s2"].paged_at = t0 + diff_cache.PAGE_IDLE_S  # s2 paged again later
    assert cache.drop_idle_pages(t0 + diff_cache.PAGE_IDLE_S + 1) == 1000
    assert cache.page("s1", d1, ("cli", 0)) is None and cache.entries["s1"].page_bytes == 0
    assert cache.page("s2", d2, ("cli", 0)) == b"y" * 500
    assert cache.get("s1", (1, 1), "b" * 40) is d1  # the diff itself stays: pages are encoded again
