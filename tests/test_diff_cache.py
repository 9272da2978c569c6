"""A session's diff is computed once per change and paged from there (daemon/diff_cache.py),
end to end: the real CLI and daemon, a real sandboxed session, real git."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tests.conftest import git, make_repo
from tests.wb import Wb
from workbench.core import sandbox_probe
from workbench.core.session_repo import Snapshot
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
    snap = Snapshot("t", "tree", None)
    each = diff_cache.MAX_KEPT_LINES // 3
    for sid in ("s1", "s2", "s3"):
        assert cache.put(sid, diff_of(each - 1), (1, 1), "b" * 40, snap) == [None]
    assert cache.get("s1", (1, 1), "b" * 40) is not None  # all three fit
    cache.touch("s1")  # s1 was just asked for: s2 is now the least recently used
    dropped = cache.put("s4", diff_of(each - 1), (1, 1), "b" * 40, snap)
    assert [e.diff.files[0].added for e in dropped if e is not None] == [each - 1]
    assert sorted(cache.entries) == ["s1", "s3", "s4"]
    assert cache.get("s2", (1, 1), "b" * 40) is None  # computed again when asked
    huge = cache.put("s5", diff_of(diff_cache.MAX_KEPT_LINES * 2), (1, 1), "b" * 40, snap)
    assert list(cache.entries) == ["s5"] and len(huge) == 4  # a diff alone over the bound is kept


def test_a_diff_nobody_asks_for_shrinks_to_its_snapshot() -> None:
    from workbench.core.diff_model import Diff, FileDiff
    from workbench.daemon import diff_cache

    cache = diff_cache.DiffCache()
    d1, d2, d3 = (Diff("b" * 40, [FileDiff(f"f{i}.txt", None, "added", False, 3, 0, [])]) for i in (1, 2, 3))
    snap1, snap2 = Snapshot("t1", "tree1", None), Snapshot("t2", "tree2", None)
    cache.put("s1", d1, (1, 1), "b" * 40, snap1)
    cache.put("s2", d2, (1, 1), "b" * 40, snap2)
    cache.put("s3", d3, (1, 1), "b" * 40, None)  # in place: no snapshot to shrink to
    cache.keep_page("s1", d1, ("cli", 0), b"x" * 1000)
    t0 = max(e.used_at for e in cache.entries.values())
    assert cache.shrink_idle(t0 + diff_cache.IDLE_S / 2) == []  # all used lately
    cache.entries["s2"].used_at = t0 + diff_cache.IDLE_S  # s2 asked for again later
    freed = cache.shrink_idle(t0 + diff_cache.IDLE_S + 1)
    assert sorted(f[0].files[0].path for f in freed) == ["f1.txt", "f3.txt"]
    assert {("cli", 0): b"x" * 1000} in [f[1] for f in freed]  # its pages went with it
    # s1 keeps only what to diff again: its snapshot, while nothing changed since.
    assert cache.get("s1", (1, 1), "b" * 40) is None and cache.page("s1", d1, ("cli", 0)) is None
    assert cache.shrunk_snapshot("s1", (1, 1), "b" * 40) is snap1
    assert cache.shrunk_snapshot("s1", (1, 2), "b" * 40) is None  # the worktree changed: a new snapshot
    assert cache.previous("s1", "b" * 40) is None and cache.entries["s1"].lines == 0
    assert "s3" not in cache.entries
    assert cache.get("s2", (1, 1), "b" * 40) is d2 and cache.shrunk_snapshot("s2", (1, 1), "b" * 40) is None


def test_a_shrunk_diff_is_diffed_again_from_its_snapshot_without_a_new_one(tmp_path: Path) -> None:
    """After IDLE_S the next request pays the tree diff only; once the worktree changed, a
    new snapshot again."""
    import asyncio

    from workbench.core.diff_model import Diff, FileDiff
    from workbench.core.models import Session
    from workbench.daemon import diff_cache

    calls: list[str] = []
    snap = Snapshot("t1", "tree1", None)

    class Git:  # what whole_diff asks of SessionGit, counted
        async def snapshot(self, s: Session) -> Snapshot:
            calls.append("snapshot")
            return snap

        def tree_diff(self, s: Session, sn: Snapshot, *args: Any) -> Diff:
            calls.append(f"tree_diff {sn.tip}")
            return Diff("b" * 40, [FileDiff("f.txt", None, "added", False, 3, 0, [])])

    class Watch:
        gen = (1, 1)
        started = asyncio.Event()
        started.set()

        def generation(self) -> tuple[int, int]:
            return self.gen

    s = Session(id="s1", name="s", repo=str(make_repo(tmp_path / "r")), branch="b", worktree=str(tmp_path),
                base_commit="b" * 40, base_ref="main", agent="sh", command=[])
    cache, watch, git_ = diff_cache.DiffCache(), Watch(), Git()

    async def run() -> None:
        first = await cache.whole_diff(s, watch, git_)  # type: ignore[arg-type]
        assert await cache.whole_diff(s, watch, git_) is first  # type: ignore[arg-type]
        assert calls == ["snapshot", "tree_diff t1"]
        cache.shrink_idle(cache.entries["s1"].used_at + diff_cache.IDLE_S)
        again = await cache.whole_diff(s, watch, git_)  # type: ignore[arg-type]
        assert again is not first and again.files == first.files
        assert calls == ["snapshot", "tree_diff t1", "tree_diff t1"]
        cache.shrink_idle(cache.entries["s1"].used_at + diff_cache.IDLE_S)
        watch.gen = (1, 2)  # a file changed while it was shrunk
        await cache.whole_diff(s, watch, git_)  # type: ignore[arg-type]
        assert calls[3:] == ["snapshot", "tree_diff t1"]

    asyncio.run(run())


def test_a_diff_asked_for_while_the_watch_starts_is_made_once(tmp_path: Path) -> None:
    """Right after a session starts its watch may still be walking the tree (longer under
    load): the first diff waits for it, so it is kept and the next request reuses it."""
    import asyncio

    from workbench.core.diff_model import Diff, FileDiff
    from workbench.core.models import Session
    from workbench.daemon import diff_cache

    calls: list[str] = []

    class Git:  # what whole_diff asks of SessionGit, counted
        async def snapshot(self, s: Session) -> Snapshot:
            calls.append("snapshot")
            return Snapshot("t1", "tree1", None)

        def tree_diff(self, s: Session, sn: Snapshot, *args: Any) -> Diff:
            return Diff("b" * 40, [FileDiff("f.txt", None, "added", False, 3, 0, [])])

    wt = tmp_path / "wt"
    for i in range(50):
        (wt / f"d{i}").mkdir(parents=True)
    (wt / ".git" / "refs").mkdir(parents=True)  # a private session's own git dir
    s = Session(id="s1", name="s", repo=str(make_repo(tmp_path / "r")), branch="b", worktree=str(wt),
                base_commit="b" * 40, base_ref="main", agent="sh", command=[])
    cache = diff_cache.DiffCache()

    async def run() -> None:
        watch = diff_cache.SessionWatch(wt, lambda: None)
        starting = asyncio.get_running_loop().create_task(watch.start())
        try:
            first = await cache.whole_diff(s, watch, Git())  # type: ignore[arg-type]
            assert await cache.whole_diff(s, watch, Git()) is first  # type: ignore[arg-type]
            assert calls == ["snapshot"]
        finally:
            await starting
            watch.close()

    asyncio.run(run())
