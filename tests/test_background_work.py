"""A diff is background work (core/background.py): its git processes and the session's
snapshot helper run at a lower CPU priority, and the helper is started off the event loop,
so the sessions being typed into keep their echo while a big diff is computed."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from tests.session_git_fixtures import LocalSession
from workbench.core import background
from workbench.daemon.session_git import SessionGit


def git_recording_its_niceness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `git` first on PATH that notes the nice value it runs at, then runs the real git."""
    real = shutil.which("git")
    assert real is not None
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "nice.log"
    wrapper = bindir / "git"
    wrapper.write_text(f"#!/bin/sh\necho \"$(awk '{{print $19}}' /proc/$$/stat) $*\" >> {log}\n"
                       f"exec {real} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return log


def test_a_diffs_git_and_snapshot_helper_run_at_a_lower_priority(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if background.niced(["x"]) == ["x"]:
        pytest.skip("coreutils' nice is not installed")
    ls = LocalSession.make(tmp_path, {"a.txt": "a\n", "b.txt": "b\n"})
    (ls.wt / "a.txt").write_text("changed\n")
    (ls.wt / "new.txt").write_text("new\n")
    log = git_recording_its_niceness(tmp_path, monkeypatch)
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    diff = ls.diff()
    assert sorted(f.path for f in diff.files) == ["a.txt", "new.txt"]
    calls = [line.split() for line in log.read_text().splitlines()]
    niced = min(19, ours + background.NICE)
    # Everything that walks the work: the helper's git (status, add, write-tree, pack), the
    # import and its connectivity check, the tree diff. Only reading and moving a ref is not.
    normal = [c for c in calls if int(c[0]) != niced]
    assert all(c[0] == str(ours) and {"rev-parse", "update-ref"} & set(c) for c in normal), normal
    for verb in ("add", "write-tree", "pack-objects", "unpack-objects", "rev-list", "diff"):
        assert any(verb in c[1:] and int(c[0]) == niced for c in calls), (verb, calls)


def test_the_snapshot_helper_is_started_off_the_event_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ls = LocalSession.make(tmp_path)
    (ls.wt / "a.txt").write_text("changed\n")
    threads: list[threading.Thread] = []
    spawn = SessionGit._spawn

    def recording(self: SessionGit, *args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread())
        return spawn(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(SessionGit, "_spawn", recording)
    snap = ls.snapshot()
    assert snap.tip != ls.base
    assert threads and threading.main_thread() not in threads  # the loop runs in the main thread
