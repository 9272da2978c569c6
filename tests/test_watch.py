"""core.watch: inotify (and polling) watching of a worktree, debounced."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tests.conftest import make_repo
from workbench.core.watch import TreeWatcher, ignored_dirs


async def wait_calls(calls: list[float], n: int, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while len(calls) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {n} callbacks, got {len(calls)}")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("inotify", [True, False], ids=["inotify", "poll"])
def test_changes_anywhere_in_the_tree_call_back(tmp_path: Path, inotify: bool) -> None:
    root = tmp_path / "tree"
    (root / "a" / "b").mkdir(parents=True)

    async def main() -> None:
        calls: list[float] = []
        w = TreeWatcher(root, lambda: calls.append(time.monotonic()), use_inotify=inotify, poll_interval=0.1)
        await w.start()
        assert w.mode == ("inotify" if inotify else "poll")
        t0 = time.monotonic()
        (root / "a" / "b" / "f.txt").write_text("x")
        await wait_calls(calls, 1)
        latency = calls[0] - t0
        assert latency < (0.5 if inotify else 1.0)
        # a new directory, then a file inside it
        (root / "new").mkdir()
        await wait_calls(calls, 2)
        await asyncio.sleep(0.05)
        (root / "new" / "g.txt").write_text("y")
        await wait_calls(calls, 3)
        os.unlink(root / "a" / "b" / "f.txt")
        await wait_calls(calls, 4)
        w.close()
        n = len(calls)
        (root / "after.txt").write_text("z")
        await asyncio.sleep(0.4)
        assert len(calls) == n and w.mode == "off"

    asyncio.run(main())


def test_debounce_coalesces_but_a_stream_still_reports(tmp_path: Path) -> None:
    async def main() -> None:
        calls: list[float] = []
        w = TreeWatcher(tmp_path, lambda: calls.append(time.monotonic()), quiet=0.1, max_delay=0.3)
        await w.start()
        for i in range(20):  # a burst: one callback
            (tmp_path / f"f{i}").write_text("x")
        await asyncio.sleep(0.4)
        assert len(calls) == 1
        t0 = time.monotonic()  # a steady stream for 1 s: reported every max_delay or so
        while time.monotonic() - t0 < 1.0:
            (tmp_path / "stream").write_text(str(time.monotonic()))
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert 2 <= len(calls) - 1 <= 8
        w.close()

    asyncio.run(main())


def test_git_dir_and_ignored_dirs_are_not_watched(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {".gitignore": "build/\n", "src/a.py": "x\n"})
    (repo / "build" / "deep").mkdir(parents=True)
    assert ignored_dirs(repo) == {"build"}

    async def main() -> None:
        calls: list[float] = []
        w = TreeWatcher(repo, lambda: calls.append(time.monotonic()), skip=ignored_dirs(repo))
        await w.start()
        (repo / "build" / "deep" / "out.o").write_text("obj")
        (repo / ".git" / "scratch").write_text("x")
        (repo / "src" / "__pycache__").mkdir()
        (repo / "src" / "__pycache__" / "a.pyc").write_text("x")
        await asyncio.sleep(0.4)
        assert calls == []
        (repo / "src" / "a.py").write_text("y\n")
        await wait_calls(calls, 1)
        w.close()

    asyncio.run(main())


def test_ignored_dirs_reads_no_config_of_the_watched_repo(tmp_path: Path) -> None:
    """The worktree's .git is the session's: only .gitignore patterns are read from it."""
    repo = make_repo(tmp_path / "repo", {".gitignore": "build/\n", "src/a.py": "x\n"})
    (repo / "build").mkdir()
    (repo / "build" / "out.o").write_text("obj")
    pwned = tmp_path / "pwned"
    with (repo / ".git" / "config").open("a") as f:
        f.write(f"[core]\n\tbare = true\n\tfsmonitor = touch {pwned}\n\texcludesFile = /nonexistent\n")
    assert ignored_dirs(repo) == {"build"}
    assert not pwned.exists()
