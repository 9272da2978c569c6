"""The host boundary, by attack: nothing a session writes makes the host act for it.

Each attack runs from inside a real sandboxed session (a shell in a PTY, driven through
the CLI), in `workspace` and in `strict` mode, and then the user does what the attack
waits for: diff, merge, discard, a pull request. Afterwards the user's repository, its
branches and every file outside the worktree must be as they were, except for exactly
the merge the user asked for. Before the private-repository layout (issue 12), each of
these wrote a host file, moved `main`, or corrupted the repository.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

from tests.conftest import git, make_repo
from tests.wb import Wb
from workbench import paths

pytestmark = [pytest.mark.sandbox, pytest.mark.usefixtures("needs_bwrap")]
MODES = ["workspace", "strict"]
_marks = count(11)


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Path]:
    """A host file an attack aims at (think ~/.gitconfig or ~/.bashrc)."""
    p = tmp_path / "host" / "dotfile"
    p.parent.mkdir()
    p.write_text("[user]\n\tname = Host\n")
    yield p


def inside(wb: Wb, sid: str, script: str, timeout: float = 30) -> None:
    """Run `script` in the session's shell (inside its sandbox) and wait for it to end."""
    home = paths.data_dir() / "homes" / sid
    n = next(_marks)
    (home / f"attack{n}.sh").write_text(script)
    wb.run("keys", sid, f"sh ~/attack{n}.sh >/dev/null 2>&1; echo END-$(({n}*3))\\r")
    wb.wait_screen(sid, f"END-{n * 3}", timeout=timeout)


def start(wb: Wb, repo: Path, mode: str, name: str = "s") -> tuple[str, Path]:
    sid = wb.new(repo, "--name", name, "--sandbox", mode)
    s = wb.wait_state(sid, "running", timeout=20)
    return sid, Path(s["worktree"])


def repo_state(repo: Path) -> dict[str, object]:
    """What no attack may change in the user's repository (imports only add objects and
    refs/workbench/*)."""
    gitdir = repo / ".git"
    files = {}
    for p in sorted(repo.rglob("*")):
        rel = p.relative_to(repo)
        if rel.parts[0] == ".git":
            continue
        files[str(rel)] = os.readlink(p) if p.is_symlink() else (p.read_bytes() if p.is_file() else "<dir>")
    meta = {}
    for name in ("config", "HEAD", "index", "packed-refs", "hooks", "info"):
        p = gitdir / name
        if p.is_dir():
            meta[name] = sorted(str(q.relative_to(p)) for q in p.rglob("*"))
        elif p.exists():
            meta[name] = p.read_bytes()
    return {
        "files": files,
        "meta": meta,
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads", "refs/tags",
                    "refs/remotes"),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
    }


def tree_files(root: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        key = str(p.relative_to(root))
        if p.is_symlink():
            out[key] = "link:" + os.readlink(p)
        elif p.is_file():
            out[key] = p.read_bytes()
        else:
            out[key] = "<dir>"
    return out


# ---------------------------------------------------------------- gitdir symlinks + merge


@pytest.mark.parametrize("mode", MODES)
def test_symlinked_git_state_files_never_receive_the_merge(
    wb: Wb, repo: Path, canary: Path, tmp_path: Path, mode: str
) -> None:
    before = canary.read_bytes()
    home_gitconfig = Path.home() / ".gitconfig"
    home_before = home_gitconfig.read_bytes() if home_gitconfig.exists() else None
    sid, _wt = start(wb, repo, mode)
    inside(wb, sid, f"""
        GD=$(git rev-parse --absolute-git-dir)
        echo feature > feature.txt
        for f in COMMIT_EDITMSG ORIG_HEAD MERGE_MSG SQUASH_MSG FETCH_HEAD AUTO_MERGE; do
            rm -f $GD/$f; ln -s {canary} $GD/$f
        done
        mkdir -p $GD/logs/refs/heads/wb
        rm -f $GD/logs/HEAD $GD/logs/refs/heads/wb/s
        ln -s {canary} $GD/logs/HEAD
        ln -s {home_gitconfig} $GD/logs/refs/heads/wb/s
    """)
    message = "feature\n\n[core]\n\tfsmonitor = touch " + str(tmp_path / "pwned")
    out = wb.run("merge", sid, "--squash", "-m", message).stdout
    assert "(squash)" in out
    assert (repo / "feature.txt").read_text() == "feature\n"
    assert git(repo, "log", "-1", "--format=%s").strip() == "feature"
    assert canary.read_bytes() == before
    assert (home_gitconfig.read_bytes() if home_gitconfig.exists() else None) == home_before
    assert not (tmp_path / "pwned").exists()
    git(repo, "status")  # would run a planted fsmonitor
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("mode", MODES)
def test_symlinked_index_is_never_written_by_the_host(
    wb: Wb, repo: Path, canary: Path, mode: str
) -> None:
    before = canary.read_bytes()
    main = git(repo, "rev-parse", "main").strip()
    sid, _wt = start(wb, repo, mode)
    inside(wb, sid, f"GD=$(git rev-parse --absolute-git-dir); echo x > x.txt; rm -f $GD/index; "
                    f"ln -s {canary} $GD/index")
    for args in (("diff", sid, "--stat"), ("reject", sid, "000000000000"), ("discard", sid)):
        res = wb.run(*args, check=False)
        assert "Traceback" not in res.stderr, res.stderr
    assert canary.read_bytes() == before
    assert git(repo, "rev-parse", "main").strip() == main


# ---------------------------------------------------------------- planted rebase state


@pytest.mark.parametrize("mode", MODES)
def test_planted_rebase_state_cannot_move_main(wb: Wb, repo: Path, mode: str) -> None:
    sid, _wt = start(wb, repo, mode)
    before = repo_state(repo)
    # An unreviewed commit, and rebase state that would make `rebase --abort` reset to it.
    inside(wb, sid, """
        GD=$(git rev-parse --absolute-git-dir)
        echo evil > evil.txt
        git add evil.txt && git commit -qm unreviewed
        evil=$(git rev-parse HEAD)
        git reset -q --hard HEAD~1
        rm -f evil.txt  # (strict: the commit failed; the file must not ride along)
        mkdir -p $GD/rebase-merge $GD/rebase-apply
        echo refs/heads/main > $GD/rebase-merge/head-name
        echo $evil > $GD/rebase-merge/orig-head
        echo $evil > $GD/rebase-merge/onto
        echo $evil > $GD/ORIG_HEAD
        touch $GD/index.lock
    """)
    inside(wb, sid, "echo reviewed > ok.txt")
    for args in (("diff", sid, "--stat"), ("revert", sid, "ok.txt")):
        res = wb.run(*args, check=False)
        assert "Traceback" not in res.stderr, res.stderr
    assert repo_state(repo) == before
    # The merge the user asks for lands the reviewed file and nothing else.
    inside(wb, sid, "echo reviewed > ok.txt")
    main = git(repo, "rev-parse", "main").strip()
    res = wb.run("merge", sid, "--squash", "-m", "reviewed work", check=False)
    assert "Traceback" not in res.stderr, res.stderr
    assert "unreviewed" not in git(repo, "log", "--all", "--format=%s")
    assert "evil.txt" not in git(repo, "ls-tree", "-r", "--name-only", "main")
    if res.returncode == 0:
        assert git(repo, "rev-parse", "main~1").strip() == main
        assert git(repo, "show", "main:ok.txt") == "reviewed\n"
    else:
        assert git(repo, "rev-parse", "main").strip() == main
    res = wb.run("discard", sid, check=False)
    assert "Traceback" not in res.stderr, res.stderr
    assert "unreviewed" not in git(repo, "log", "--all", "--format=%s")


# ---------------------------------------------------------------- HEAD pointed at main


@pytest.mark.parametrize("mode", MODES)
def test_head_pointed_at_main_cannot_touch_users_main(
    wb: Wb, repo: Path, tmp_path: Path, mode: str
) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    sid, _wt = start(wb, repo, mode)
    # The user's newest commit, made after the session started: the old `discard` (a
    # reset to the session's base through its HEAD) dropped it from main.
    (repo / "user.txt").write_text("mine\n")
    git(repo, "add", "user.txt")
    git(repo, "commit", "-qm", "user's newest")
    inside(wb, sid, """
        git symbolic-ref HEAD refs/heads/main
        echo agent > agent.txt
        git add agent.txt && git commit -qm 'agent on main'
    """)
    before = repo_state(repo)
    wb.run("discard", sid)
    assert repo_state(repo) == before
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "user's newest"

    # A pull request pushes the imported snapshot as the session's branch, nothing else.
    inside(wb, sid, "git symbolic-ref HEAD refs/heads/main; echo pr > pr.txt")
    fake = tmp_path / "bin"
    fake.mkdir()
    gh = fake / "gh"
    gh.write_text("#!/bin/sh\necho https://example.invalid/pr/1\n")
    gh.chmod(0o755)
    wb.stop()
    wb.env["PATH"] = f"{fake}:{wb.env['PATH']}"
    wb.run("restart", sid)
    wb.wait_state(sid, "running", timeout=20)
    remote_main = git(remote, "rev-parse", "main").strip()
    out = wb.run("merge", sid, "--pr", "-m", "a pull request").stdout
    assert "example.invalid/pr/1" in out
    assert git(remote, "rev-parse", "main").strip() == remote_main
    assert git(remote, "show", "wb/s:pr.txt") == "pr\n"
    assert git(repo, "rev-parse", "main").strip() == before["refs"].split()[1]  # type: ignore[union-attr]


# ---------------------------------------------------------------- object-store symlinks


@pytest.mark.parametrize("mode", MODES)
def test_object_dir_symlinks_never_make_the_host_write_elsewhere(
    wb: Wb, repo: Path, tmp_path: Path, mode: str
) -> None:
    target = tmp_path / "host" / "victim-dir"
    target.mkdir(parents=True)
    (target / "keep.txt").write_text("mine\n")
    before = tree_files(target)
    sid, _wt = start(wb, repo, mode)
    inside(wb, sid, f"""
        OD=$(git rev-parse --git-path objects); LD=$(git rev-parse --git-path logs/refs/heads)
        for a in 0 1 2 3 4 5 6 7 8 9 a b c d e f; do for b in 0 1 2 3 4 5 6 7 8 9 a b c d e f; do
            [ -e $OD/$a$b ] || ln -s {target} $OD/$a$b
        done; done
        mkdir -p $LD; ln -s {target} $LD/wb2
        echo new content > new.txt
    """)
    stat_out = wb.run("diff", sid, "--stat").stdout
    assert "new.txt" in stat_out
    merged = wb.run("merge", sid, "--squash", "-m", "new content", check=False)
    assert tree_files(target) == before
    assert git(repo, "fsck", "--connectivity-only", "--no-dangling").strip() == ""
    if mode == "workspace":
        # The session broke its own object store: its new file cannot be stored, the diff
        # says so, and what was not imported cannot be merged.
        assert "could not be read inside the session" in stat_out
        assert merged.returncode != 0 and "could not be imported" in merged.stderr
    else:  # strict: the plant failed (.git is read-only to the session)
        assert merged.returncode == 0, merged.stderr
    assert tree_files(target) == before
    assert git(repo, "fsck", "--connectivity-only", "--no-dangling").strip() == ""
    # Later sessions of the same repository still start.
    _sid2, wt2 = start(wb, repo, mode, name="later")
    assert (wt2 / "new.txt").exists() == (mode == "strict")


# ---------------------------------------------------------------- config inside the session


@pytest.mark.parametrize("mode", MODES)
def test_session_git_config_and_hooks_never_run_on_the_host(
    wb: Wb, repo: Path, tmp_path: Path, mode: str
) -> None:
    pwned = tmp_path / "host-pwned"
    sid, _wt = start(wb, repo, mode)
    inside(wb, sid, f"""
        git config core.fsmonitor 'touch {pwned}'
        git config core.hooksPath .git/hooks
        git config filter.evil.clean 'touch {pwned}; cat'
        git config filter.evil.smudge 'touch {pwned}; cat'
        git config alias.status '!touch {pwned}'
        HD=$(git rev-parse --git-path hooks); mkdir -p $HD
        for h in pre-commit post-commit post-checkout post-merge reference-transaction; do
            printf '#!/bin/sh\\ntouch {pwned}\\n' > $HD/$h; chmod +x $HD/$h
        done
        echo '* filter=evil' > .gitattributes
        echo change > change.txt
    """)
    assert "change.txt" in wb.run("diff", sid, "--stat").stdout
    wb.run("merge", sid, "--squash", "-m", "change")
    git(repo, "status")
    assert (repo / "change.txt").read_text() == "change\n"
    assert not pwned.exists()
    assert "evil" not in (repo / ".git" / "config").read_text()


# ---------------------------------------------------------------- bounded resources


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.timeout(900)
def test_huge_file_and_many_files_keep_the_daemon_small(wb: Wb, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "big-repo", {"README.md": "# big\n"})
    sid, wt = start(wb, repo, "workspace", name="big")
    # A 2 GB file (sparse: the disk does not fill) and 200,000 small files, as an agent
    # that ran a build might leave them.
    inside(wb, sid, "truncate -s 2G huge.bin")
    for d in range(200):
        sub = wt / "gen" / f"d{d:03}"
        sub.mkdir(parents=True)
        for i in range(1000):
            (sub / f"f{i}.txt").write_bytes(b"x\n")
    pid = wb.daemon_pid()
    assert pid is not None
    res = wb.run("diff", sid, "--stat", timeout=300)
    assert "huge.bin" in res.stdout and "too large" in res.stdout
    assert "200000 files" in res.stdout.replace(",", "") or "200001 files" in res.stdout.replace(",", "")
    assert _peak_rss_mb(pid) < 200
    # merging what could not be reviewed is refused, and nothing changes
    main = git(repo, "rev-parse", "main").strip()
    refused = wb.run("merge", sid, "--squash", "-m", "x", check=False, timeout=300)
    assert refused.returncode != 0 and "too large" in refused.stderr
    assert git(repo, "rev-parse", "main").strip() == main
    assert stat.S_ISREG(os.stat(wt / "huge.bin").st_mode)
