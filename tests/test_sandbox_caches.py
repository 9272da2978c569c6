"""What the sandbox remembers between spawns, and that it never hides less for it.

Every tool call of the built-in agent builds its bwrap argv again; the `.env*` scan of the
main checkout and the session's pids cgroup are remembered between calls. A cache must
never let a secret created later into a sandbox, and must notice a cgroup that vanished.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest

from workbench.agent.command_run import collect_output, spawn
from workbench.core import limits, sandbox_paths
from workbench.daemon import sandboxing


def _age(root: Path, seconds: float = 30) -> None:
    """Date every directory under `root` back, so the scan's cache may trust them."""
    old = time.time() - seconds
    for d, _dirs, _files in os.walk(root):
        os.utime(d, (old, old))


def _count_scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = os.scandir

    def counting(path: str) -> object:
        seen.append(str(path))
        return real(path)

    monkeypatch.setattr(sandbox_paths.os, "scandir", counting)
    return seen


def test_dotenv_scan_is_reused_while_nothing_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "repo"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / ".env").write_text("SECRET=1")
    _age(root)
    first = sandbox_paths.find_dotenv(root)
    scans = _count_scans(monkeypatch)
    assert sandbox_paths.find_dotenv(root) == first == [root / "a" / ".env"]
    assert scans == []  # answered from the cache: no directory listed again


@pytest.mark.parametrize("where", ["", "a", "a/b"])
def test_a_dotenv_created_after_the_scan_is_found(tmp_path: Path, where: str) -> None:
    root = tmp_path / "repo"
    (root / "a" / "b").mkdir(parents=True)
    _age(root)
    assert sandbox_paths.find_dotenv(root) == []
    (root / where / ".env.local").write_text("TOKEN=x")
    assert sandbox_paths.find_dotenv(root) == [root / where / ".env.local"]


def test_a_new_directory_holding_a_dotenv_is_found(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "a").mkdir(parents=True)
    _age(root)
    assert sandbox_paths.find_dotenv(root) == []
    # Made elsewhere and moved in whole: only the parent's mtime moves.
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / ".env").write_text("X=1")
    _age(staged)
    staged.rename(root / "a" / "conf")
    assert sandbox_paths.find_dotenv(root) == [root / "a" / "conf" / ".env"]


def test_a_directory_changed_within_the_last_second_is_rescanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Timestamps move in clock ticks: a change right after the scan could keep the mtime.
    root = tmp_path / "repo"
    root.mkdir()
    sandbox_paths.find_dotenv(root)
    scans = _count_scans(monkeypatch)
    sandbox_paths.find_dotenv(root)
    assert scans == [str(root)]


def test_session_cgroup_is_made_once_and_again_when_it_vanished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = tmp_path / "cgroups"
    monkeypatch.setattr(limits, "pids_cgroup_parent", lambda: parent)
    writes: list[Path] = []
    real_write = Path.write_text

    def counting(self: Path, text: str, *a: object, **kw: object) -> int:
        writes.append(self)
        return real_write(self, text, *a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", counting)
    procs = limits.session_cgroup("u-s1", 64)
    assert procs is not None and procs.parent.is_dir()
    assert (procs.parent / "pids.max").read_text() == "64\n"
    n = len(writes)
    assert limits.session_cgroup("u-s1", 64) == procs
    assert len(writes) == n  # remembered: no mkdir, no pids.max write
    assert limits.session_cgroup("u-s1", 32) == procs  # a new limit is written
    assert (procs.parent / "pids.max").read_text() == "32\n"
    (procs.parent / "pids.max").unlink()
    procs.parent.rmdir()  # pruned while the session was idle
    assert limits.session_cgroup("u-s1", 32) == procs
    assert (procs.parent / "pids.max").read_text() == "32\n"


def test_a_removed_sessions_cgroup_is_forgotten_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A daemon replacing sessions for hours kept an entry (and a cgroup) for every one.
    parent = tmp_path / "cgroups"
    monkeypatch.setattr(limits, "pids_cgroup_parent", lambda: parent)
    monkeypatch.setattr(limits, "_READY", {})
    groups = [sandboxing._process_group(f"s{n}") for n in range(20)]
    made = [limits.session_cgroup(g, 64) for g in groups]
    assert all(p is not None and p.parent.is_dir() for p in made) and len(limits._READY) == 20
    for n in range(20):
        (parent / limits._cgroup_name(groups[n]) / "pids.max").unlink()  # a real cgroup's files go with it
        sandboxing.forget(f"s{n}")
    assert limits._READY == {}
    assert list(parent.iterdir()) == []


def test_exit_is_noticed_while_a_background_child_holds_the_pipe(tmp_path: Path) -> None:
    # The command returns at once; its background child keeps stdout open for 30 s. The
    # result comes when the command exits (the group is then killed), not when the pipe closes.
    async def run() -> tuple[int | None, str]:
        spawned = await spawn(
            ["/bin/sh", "-c", "echo started; sleep 30 & exit 3"],
            cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        res = await asyncio.wait_for(collect_output(spawned, 60_000, 1 << 20, lambda: 0), 20)
        return res.exit_code, res.output

    code, out = asyncio.run(run())
    assert code == 3
    assert out == "started\n"


def _aged_write(p: Path, text: str) -> None:
    """Write `text` and date the file back, as a config edited a while ago is."""
    p.write_text(text)
    old = time.time() - 30
    os.utime(p, (old, old))


def test_the_config_is_reused_until_one_of_its_files_changes(tmp_path: Path, isolated_env: Path) -> None:
    from workbench import paths

    repo = tmp_path / "repo"
    repo.mkdir()
    user = paths.config_file()
    user.parent.mkdir(parents=True, exist_ok=True)
    _aged_write(user, '[sandbox]\nhidden_paths = ["~/.one"]\n')
    first = sandboxing.session_config(str(repo))
    assert first.sandbox.hidden_paths == ["~/.one"]
    assert sandboxing.session_config(str(repo)) is first  # unchanged files: not parsed again
    _aged_write(user, '[sandbox]\nhidden_paths = ["~/.two"]\n')  # same size, same age
    assert sandboxing.session_config(str(repo)).sandbox.hidden_paths == ["~/.two"]
    _aged_write(repo / ".workbench.toml", '[sandbox]\nhidden_paths = ["~/.two", "~/.three"]\n')
    assert sandboxing.session_config(str(repo)).sandbox.hidden_paths == ["~/.two", "~/.three"]
    # A file written within the last second is read every time (its mtime may not move).
    (repo / ".workbench.toml").write_text('[sandbox]\nhidden_paths = ["~/.four", "~/.two"]\n')
    assert sandboxing.session_config(str(repo)).sandbox.hidden_paths == ["~/.four", "~/.two"]
    (repo / ".workbench.toml").write_text('[sandbox]\nhidden_paths = ["~/.five", "~/.two"]\n')
    assert sandboxing.session_config(str(repo)).sandbox.hidden_paths == ["~/.five", "~/.two"]


def test_which_is_remembered_only_while_the_program_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for d in (first, second):
        d.mkdir()
        prog = d / "wb-test-tool"
        prog.write_text("#!/bin/sh\n")
        prog.chmod(0o755)
    monkeypatch.setenv("PATH", f"{first}:{second}")
    assert sandbox_paths.which("wb-test-tool") == str(first / "wb-test-tool")
    (first / "wb-test-tool").unlink()
    assert sandbox_paths.which("wb-test-tool") == str(second / "wb-test-tool")
    (second / "wb-test-tool").chmod(0o644)
    assert sandbox_paths.which("wb-test-tool") is None
    monkeypatch.setenv("PATH", str(first))  # another PATH is another lookup
    (first / "wb-test-tool").write_text("#!/bin/sh\n")
    (first / "wb-test-tool").chmod(0o755)
    assert sandbox_paths.which("wb-test-tool") == str(first / "wb-test-tool")
