"""The snapshot helper (`session_side/snapshot.py`) on real repositories: what it records,
how few git processes and modules a diff costs it, and its own JSON and spawning code.

Unsandboxed (`LocalSession`): what runs here runs the same inside bubblewrap, which
test_host_boundary_attacks.py and test_sessions_sandboxed.py drive end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git
from tests.session_git_fixtures import LocalSession
from workbench.daemon import session_git
from workbench.session_side import gitcmd, launch
from workbench.session_side.snapshot import KEPT_INDEX, MAX_LISTED_ADD, to_json

REAL_GIT = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True, check=True).stdout.strip()


def _files(n: int) -> dict[str, str]:
    return {f"d{i % 5}/f{i}.txt": f"file {i}\n" * 3 for i in range(n)}


@pytest.fixture
def git_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every git run, as `cwd|argv` a line (a `git` first on PATH that logs)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "git.log"
    wrapper = bindir / "git"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s|%s\\n" "$PWD" "$*" >> {log}\nexec {REAL_GIT} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    return log


def _subcommands(log: Path, cwd: Path) -> list[str]:
    """The git subcommand of each call logged in `cwd` (past the `-c key=value` options):
    the helper's, which runs in the worktree (the host's run in the user's repository)."""
    out = []
    for line in log.read_text().splitlines():
        where, _, argv = line.partition("|")
        if where != str(cwd):
            continue
        words = argv.split()
        i = 0
        while i < len(words) and words[i] == "-c":
            i += 2
        out.append(words[i] if i < len(words) else "")
    return out


def _tree_files(ls: LocalSession, tree: str) -> dict[str, str]:
    raw = git(ls.repo, "ls-tree", "-r", "-z", tree)
    entries = {}
    for e in raw.split("\0"):
        if e:
            meta, _, path = e.partition("\t")
            entries[path] = meta
    return entries


def _git_add_all(ls: LocalSession, tmp_path: Path, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """What `git add --all` makes of the worktree, with an index of our own."""
    env = {**os.environ, "GIT_INDEX_FILE": str(tmp_path / "ref-index")}
    subprocess.run(["git", "read-tree", "HEAD"], cwd=ls.wt, env=env, check=True)
    subprocess.run(["git", "add", "--all", "--", ".", *(f":(exclude){p}" for p in exclude)],
                   cwd=ls.wt, env=env, check=True, capture_output=True)
    tree = subprocess.run(["git", "write-tree"], cwd=ls.wt, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()
    raw = subprocess.run(["git", "ls-tree", "-r", "-z", tree], cwd=ls.wt, env=env, check=True,
                         capture_output=True, text=True).stdout
    return {e.partition("\t")[2]: e.partition("\t")[0] for e in raw.split("\0") if e}


# ----------------------------------------------------------------------- what is recorded


def test_a_file_git_cannot_store_does_not_mark_the_other_changes_unreadable(tmp_path: Path) -> None:
    ls = LocalSession.make(tmp_path, {"a.txt": "a\n", "b.txt": "b\n"})
    (ls.wt / "a.txt").write_text("a changed\n")
    (ls.wt / "new.txt").write_text("cannot be stored\n")
    blob = git(ls.wt, "hash-object", "new.txt").strip()
    assert blob[:2] != git(ls.wt, "hash-object", "a.txt").strip()[:2]
    # The session broke its own object store for that one blob (a file where git wants
    # a directory): `git add` stores a.txt and fails new.txt.
    objdir = ls.wt / ".git" / "objects" / blob[:2]
    if objdir.exists():
        for p in objdir.iterdir():
            p.unlink()
        objdir.rmdir()
    objdir.write_text("not a directory\n")
    snap = ls.snapshot()
    assert snap.skipped == [("new.txt", -1)]
    assert snap.skipped_count == 1
    files = _tree_files(ls, snap.tip)
    assert "new.txt" not in files
    assert git(ls.repo, "show", f"{snap.tip}:a.txt") == "a changed\n"
    diff = ls.git.tree_diff(ls.session, snap)
    assert [f.path for f in diff.files] == ["a.txt"]


@pytest.mark.parametrize("many", [False, True])
def test_snapshot_records_what_git_add_all_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  many: bool) -> None:
    """Edits, deletions, new files in new directories, a mode change, a symlink, a file
    staged in the session's own index, ignored files and a file over the size limit; with
    few changed paths (each given to `git add`) and with many (`git add .`)."""
    monkeypatch.setattr(session_git, "MAX_IMPORT_FILE", 1000)
    ls = LocalSession.make(tmp_path, {**_files(20), ".gitignore": "*.log\n", "run.sh": "echo\n"})
    ls.snapshot()
    (ls.wt / "d0" / "f0.txt").write_text("edited\n")
    (ls.wt / "d1" / "f1.txt").unlink()
    (ls.wt / "new" / "deep").mkdir(parents=True)
    (ls.wt / "new" / "deep" / "n.txt").write_text("new\n")
    (ls.wt / "run.sh").chmod(0o755)
    (ls.wt / "link").symlink_to("d0/f0.txt")
    (ls.wt / "skip.log").write_text("ignored\n")
    (ls.wt / "big.bin").write_bytes(b"x" * 5000)
    (ls.wt / "d2" / "f2.txt").write_text("staged by the session\n")
    git(ls.wt, "add", "d2/f2.txt")
    (ls.wt / "d2" / "f2.txt").write_text("staged, then edited again\n")
    if many:
        for i in range(MAX_LISTED_ADD + 5):
            (ls.wt / "bulk" / f"b{i}.txt").parent.mkdir(exist_ok=True)
            (ls.wt / "bulk" / f"b{i}.txt").write_text(f"bulk {i}\n")
    snap = ls.snapshot()
    assert snap.skipped == [("big.bin", 5000)]
    assert _tree_files(ls, snap.tip) == _git_add_all(ls, tmp_path, exclude=("big.bin",))
    # And again, unchanged: the same commit, nothing sent.
    assert ls.snapshot().tip == snap.tip


def test_a_directory_replaced_by_a_symlink_is_recorded_as_git_add_all_would(tmp_path: Path) -> None:
    """`git add d/f` is refused outright once `d` is a symlink ("beyond a symbolic link"):
    the helper then adds `.`, and the snapshot holds the link, not a file marked unreadable
    (found by the endpoint audit's planted links)."""
    outside = tmp_path / "victim"
    outside.mkdir()
    (outside / "secret.txt").write_text("SECRET\n")
    ls = LocalSession.make(tmp_path, _files(3))
    ls.snapshot()
    for f in (ls.wt / "d0").iterdir():
        f.unlink()
    (ls.wt / "d0").rmdir()
    (ls.wt / "d0").symlink_to(outside)
    (ls.wt / "leak.txt").symlink_to(outside / "secret.txt")
    snap = ls.snapshot()
    assert snap.skipped == []
    files = _tree_files(ls, snap.tip)
    assert files == _git_add_all(ls, tmp_path)
    assert "d0" in files and "leak.txt" in files and "d0/f0.txt" not in files


def test_a_corrupt_kept_index_is_not_trusted(tmp_path: Path) -> None:
    ls = LocalSession.make(tmp_path, _files(5))
    ls.snapshot()
    (ls.wt / "d0" / "f0.txt").write_text("edited\n")
    (ls.wt / ".git" / KEPT_INDEX).write_bytes(b"DIRC garbage, not an index")
    snap = ls.snapshot()
    assert _tree_files(ls, snap.tip) == _git_add_all(ls, tmp_path)
    assert git(ls.repo, "show", f"{snap.tip}:d0/f0.txt") == "edited\n"


def test_a_git_file_in_place_of_the_git_directory_is_followed(tmp_path: Path) -> None:
    """`.git` a file naming the repository elsewhere (the session may do that; the host
    then refuses the session, but the helper must not guess): git says where the indexes
    are, and the snapshot is still what `git add --all` makes."""
    ls = LocalSession.make(tmp_path, _files(5))
    moved = tmp_path / "moved-git"
    (ls.wt / ".git").rename(moved)
    (ls.wt / ".git").write_text(f"gitdir: {moved}\n")
    (ls.wt / "d0" / "f0.txt").write_text("edited\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    proc = subprocess.run(launch.argv("snapshot", "--max-file", "1000000"), cwd=ls.wt, env=env,
                          capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    tree = json.loads(proc.stdout.partition(b"\n")[0])["tree"]
    ref = _git_add_all(ls, tmp_path)
    mine = subprocess.run(["git", "ls-tree", "-r", "-z", tree], cwd=ls.wt, capture_output=True, text=True,
                          check=True).stdout
    assert {e.partition("\t")[2]: e.partition("\t")[0] for e in mine.split("\0") if e} == ref
    assert (moved / KEPT_INDEX).is_file()
    assert not (ls.wt / KEPT_INDEX).exists()


def test_a_touched_but_unchanged_file_is_refreshed_in_the_kept_index(tmp_path: Path) -> None:
    """The kept index is a stat cache: a file rewritten with the same bytes is hashed
    once, not on every diff (git status writes its refreshed stat data)."""
    ls = LocalSession.make(tmp_path, _files(5))
    ls.snapshot()
    path = ls.wt / "d3" / "f3.txt"
    os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    ls.snapshot()
    env = {**os.environ, "GIT_INDEX_FILE": str(ls.wt / ".git" / KEPT_INDEX)}
    debug = subprocess.run(["git", "ls-files", "--debug", "--", "d3/f3.txt"], cwd=ls.wt, env=env,
                           check=True, capture_output=True, text=True).stdout
    assert "mtime: 1700000000:0" in debug, debug


# ----------------------------------------------------------------------- what it costs


def test_one_changed_file_costs_few_git_processes(tmp_path: Path, git_log: Path) -> None:
    ls = LocalSession.make(tmp_path, _files(30))
    ls.snapshot()
    (ls.wt / "d0" / "f5.txt").write_text("edited\n")
    git_log.write_text("")
    ls.snapshot()
    calls = _subcommands(git_log, ls.wt)
    # cat-file (HEAD, its tree, the --have commits), status, add (that one file),
    # write-tree, commit-tree, pack-objects.
    assert calls == ["cat-file", "status", "add", "write-tree", "commit-tree", "pack-objects"], calls

    git_log.write_text("")
    ls.snapshot()  # unchanged: nothing to add, the same commit again, no pack
    calls = _subcommands(git_log, ls.wt)
    assert calls == ["cat-file", "status", "write-tree", "commit-tree"], calls


def test_the_helper_loads_no_module_beyond_os_and_sys() -> None:
    """subprocess, json, re, shutil and tempfile each cost milliseconds at every diff."""
    heavy = ("subprocess", "json", "re", "shutil", "tempfile", "typing", "collections", "contextlib", "selectors")
    code = launch.bootstrap("snapshot").replace(
        "sys.exit(main(sys.argv[1:]))",
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


# ----------------------------------------------------------------------- its own plumbing


@pytest.mark.parametrize("value", [
    {"tip": "a" * 40, "head": None, "pack": True, "skipped": [], "skipped_count": 0},
    {"skipped": [["quote\" back\\slash \n\t\r\x00\x1f\x7f", 5], ["é ü 日本 😀", -1], ["\udcff\udc80 bad utf-8", 3]]},
    [True, False, None, 0, -1, 2**40, ""],
])
def test_its_json_is_what_json_reads_back(value: object) -> None:
    text = to_json(value)
    assert text.isascii()
    assert json.loads(text) == value


def test_unknown_have_commits_are_ignored(tmp_path: Path) -> None:
    """A --have the session's repository lacks (say, a snapshot ref it never saw) is
    left out of the pack's negative revisions instead of failing pack-objects."""
    ls = LocalSession.make(tmp_path, _files(3))
    (ls.wt / "d0" / "f0.txt").write_text("edited\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    proc = subprocess.run(
        launch.argv("snapshot", "--max-file", "1000000", "--have", ls.base, "--have", "0123456789" * 4),
        cwd=ls.wt, env=env, capture_output=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    line, _, pack = proc.stdout.partition(b"\n")
    meta = json.loads(line)
    assert meta["pack"] is True and meta["head"] == ls.base
    assert pack[:4] == b"PACK"


def test_spawn_reads_big_output_with_big_input_and_stderr(tmp_path: Path) -> None:
    """Output, input and stderr each well over a pipe's buffer: no deadlock, all read."""
    big = b"y" * 300_000
    script = "import sys; d=sys.stdin.buffer.read(); sys.stderr.write('e'*200000); " \
             "sys.stdout.buffer.write(d*2); sys.exit(3)"
    proc = gitcmd.spawn([sys.executable, "-c", script], dict(os.environ), input=big)
    assert proc.returncode == 3
    assert proc.stdout == big * 2
    assert proc.stderr == b"e" * 200_000

    target = tmp_path / "out"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        proc = gitcmd.spawn([sys.executable, "-c", "print('to the fd')"], dict(os.environ), stdout_fd=fd)
    finally:
        os.close(fd)
    assert proc.returncode == 0 and proc.stdout == b""
    assert target.read_text() == "to the fd\n"
    with pytest.raises(OSError):
        gitcmd.spawn(["/nonexistent/program"], dict(os.environ))


def test_have_commits_can_come_on_stdin(tmp_path: Path) -> None:
    """The host looks up the commits it has while the sandbox starts, and sends them on
    stdin: a worktree at one of them sends no pack; anything but a sha is ignored."""
    ls = LocalSession.make(tmp_path, _files(3))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    argv = launch.argv("snapshot", "--max-file", "1000000", "--have-stdin")
    proc = subprocess.run(argv, cwd=ls.wt, env=env, capture_output=True, check=False,
                          input=f"not-a-sha\n{ls.base}\n../../etc\n".encode())
    assert proc.returncode == 0, proc.stderr
    meta = json.loads(proc.stdout)
    assert meta["tip"] == ls.base and meta["pack"] is False
    (ls.wt / "d0" / "f0.txt").write_text("edited\n")
    proc = subprocess.run(argv, cwd=ls.wt, env=env, capture_output=True, check=False, input=f"{ls.base}\n".encode())
    assert proc.returncode == 0, proc.stderr
    line, _, pack = proc.stdout.partition(b"\n")
    assert json.loads(line)["pack"] is True and pack[:4] == b"PACK"


def test_a_second_snapshot_sends_only_what_the_first_did_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's commits (base, last snapshot) reach the helper on its stdin: the pack of
    a one-file change after 20 new files holds that change's objects only."""
    from workbench.core import session_repo

    counts: list[int] = []
    real = session_repo.import_pack
    monkeypatch.setattr(session_repo, "import_pack", lambda repo, pack, n: (counts.append(n), real(repo, pack, n))[1])
    ls = LocalSession.make(tmp_path, _files(3))
    for i in range(20):
        (ls.wt / "new" / f"n{i}.txt").parent.mkdir(exist_ok=True)
        (ls.wt / "new" / f"n{i}.txt").write_text(f"new {i}\n")
    first = ls.snapshot()
    (ls.wt / "new" / "n0.txt").write_text("edited\n")
    second = ls.snapshot()
    assert counts[0] >= 20
    assert counts[1:] == [4], counts  # commit, root tree, new/, the blob
    assert git(ls.repo, "rev-parse", "refs/workbench/s1/snapshot").strip() == second.tip != first.tip
    assert ls.snapshot().tip == second.tip and counts[2:] == []  # unchanged: no pack at all


def test_a_helper_that_dies_at_once_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It never reads the commits written to its stdin: its own message, not a broken pipe."""
    ls = LocalSession.make(tmp_path, _files(2))
    dead = [sys.executable, "-c", "import sys; sys.stderr.write('helper broke\\n'); sys.exit(3)"]
    monkeypatch.setattr(session_git.launch, "argv", lambda module, *args: dead)
    with pytest.raises(Exception, match="helper broke"):
        ls.snapshot()
