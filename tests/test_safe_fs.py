"""Files the host writes into a session's home or worktree never follow a planted link.

Each attack plants a symlink where host code later writes (the session controls its
home and worktree), then checks that the host target is byte-for-byte unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import make_repo
from tests.helpers import wait_for
from tests.wb import Wb
from workbench.config import Config
from workbench.core import safe_fs, sandbox_paths, sandbox_probe
from workbench.core import worktree as wt
from workbench.core.models import Session
from workbench.profiles import Profile, integrations

VICTIM = b"# the user's file\nexport PATH=/usr/bin\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    p = tmp_path / "host" / "victim.txt"
    p.parent.mkdir()
    p.write_bytes(VICTIM)
    return p


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "homes" / "s1"
    h.mkdir(parents=True)
    return h


def _session(tmp_path: Path) -> Session:
    return Session(id="s1", name="s", repo=str(tmp_path), branch="wb/s", worktree=str(tmp_path / "wt"),
                   base_commit="0" * 40, base_ref="main", agent="codex", command=[])


# ------------------------------------------------------------------- safe_fs itself


def test_write_replaces_a_planted_file_link_instead_of_following_it(home: Path, victim: Path) -> None:
    (home / "config.toml").symlink_to(victim)
    safe_fs.write_text(home, "config.toml", "ours\n")
    assert victim.read_bytes() == VICTIM
    assert not (home / "config.toml").is_symlink()
    assert (home / "config.toml").read_text() == "ours\n"


def test_write_refuses_a_linked_directory_at_any_depth(home: Path, victim: Path) -> None:
    host_dir = victim.parent
    (home / "a").mkdir()
    (home / "a" / "b").symlink_to(host_dir)
    with pytest.raises(safe_fs.UnsafePathError, match="symlink"):
        safe_fs.write_text(home, "a/b/victim.txt", "pwned\n")
    with pytest.raises(safe_fs.UnsafePathError):
        safe_fs.makedirs(home, "a/b/c")
    assert sorted(os.listdir(host_dir)) == ["victim.txt"]
    assert victim.read_bytes() == VICTIM


def test_dotdot_and_absolute_paths_are_refused(home: Path, victim: Path) -> None:
    for rel in ("../host/victim.txt", str(victim), "a/../../x"):
        with pytest.raises(safe_fs.UnsafePathError):
            safe_fs.write_text(home, rel, "x")
    assert victim.read_bytes() == VICTIM


def test_no_replace_keeps_whatever_is_there(home: Path, victim: Path) -> None:
    (home / "kept").write_text("session's\n")
    (home / "link").symlink_to(victim)
    assert safe_fs.write_text(home, "kept", "ours", replace=False) is False
    assert safe_fs.write_text(home, "link", "ours", replace=False) is False
    assert (home / "kept").read_text() == "session's\n" and victim.read_bytes() == VICTIM
    assert safe_fs.write_text(home, "new/file", "ours", replace=False) is True
    assert (home / "new" / "file").read_text() == "ours"
    assert oct((home / "new" / "file").stat().st_mode & 0o777) == oct(0o600)


def test_a_directory_at_the_target_is_refused(home: Path) -> None:
    (home / "d").mkdir()
    with pytest.raises(safe_fs.UnsafePathError, match="directory"):
        safe_fs.write_text(home, "d", "x")


# ----------------------------------------------------- the daemon's writers, by attack


def test_codex_config_is_not_written_through_a_planted_file_link(tmp_path: Path, home: Path,
                                                                 victim: Path) -> None:
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").symlink_to(victim)
    prep = integrations.prepare(Profile(name="codex", command=("codex",), hooks="codex"),
                                _session(tmp_path), resume=False, home=home, notify_path="/n")
    assert victim.read_bytes() == VICTIM
    assert 'notify = ["/bin/sh"' in (home / ".codex" / "config.toml").read_text()
    assert prep.env["CODEX_HOME"] == str(home / ".codex")


def test_codex_config_is_not_written_into_a_linked_codex_dir(tmp_path: Path, home: Path,
                                                             victim: Path) -> None:
    (home / ".codex").symlink_to(victim.parent)
    with pytest.raises(safe_fs.UnsafePathError):
        integrations.prepare(Profile(name="codex", command=("codex",), hooks="codex"),
                             _session(tmp_path), resume=False, home=home, notify_path="/n")
    assert sorted(os.listdir(victim.parent)) == ["victim.txt"]


def test_claude_settings_are_not_written_through_links(tmp_path: Path, home: Path, victim: Path) -> None:
    (home / ".workbench").mkdir()
    (home / ".workbench" / "claude-settings.json").symlink_to(victim)
    integrations.prepare(Profile(name="claude", command=("claude",), hooks="claude"),
                         _session(tmp_path), resume=False, home=home, notify_path="/n")
    assert victim.read_bytes() == VICTIM
    assert '"hooks"' in (home / ".workbench" / "claude-settings.json").read_text()


def test_credential_link_is_not_made_inside_a_linked_dir(tmp_path: Path, home: Path, victim: Path) -> None:
    real = Path(os.environ["HOME"]) / ".cred" / "token.json"
    real.parent.mkdir(parents=True)
    real.write_text("{}")
    (home / ".cred").symlink_to(victim.parent)
    prof = Profile(name="x", command=("x",), credential_paths=("~/.cred/token.json",))
    with pytest.raises(safe_fs.UnsafePathError):
        integrations.prepare(prof, _session(tmp_path), resume=False, home=home, notify_path="/n")
    assert sorted(os.listdir(victim.parent)) == ["victim.txt"]


def test_home_gitconfig_is_not_written_through_a_link(home: Path, victim: Path) -> None:
    (home / ".gitconfig").symlink_to(victim)
    sandbox_paths.prepare_home(home)
    assert victim.read_bytes() == VICTIM
    assert "[gc]" in (home / ".gitconfig").read_text()


def test_copy_files_does_not_follow_a_committed_link(tmp_path: Path, victim: Path) -> None:
    root = make_repo(tmp_path / "r", {"README.md": "x\n"})
    (root / "local.cfg").write_text("user setting\n")
    (root / "sub").mkdir()
    (root / "sub" / "x.cfg").write_text("nested\n")
    dest = tmp_path / "wt"
    dest.mkdir()
    (dest / "local.cfg").symlink_to(victim)  # as a checked-out tree can hold
    (dest / "sub").symlink_to(victim.parent)
    assert wt.copy_files(root, dest, ["local.cfg", "sub/x.cfg"]) == []
    assert victim.read_bytes() == VICTIM
    assert sorted(os.listdir(victim.parent)) == ["victim.txt"]


# ----------------------------------------------------------- .env and copy_files


def test_nothing_is_copied_into_worktrees_by_default() -> None:
    assert Config().worktree.copy_files == []


def test_dotenv_files_are_not_copied_while_hidden(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "r", {"README.md": "x\n"})
    for name in (".env", ".env.local", "settings.ini"):
        (root / name).write_text(f"{name}\n")
    dest = tmp_path / "wt"
    dest.mkdir()
    names = [".env", ".env.local", "settings.ini"]
    assert wt.copy_files(root, dest, names, skip_dotenv=True) == ["settings.ini"]
    assert not (dest / ".env").exists() and not (dest / ".env.local").exists()
    assert wt.copy_files(root, dest, names) == [".env", ".env.local"]


def test_a_sandboxed_session_gets_no_dotenv_copy(wb: Wb, tmp_path: Path) -> None:
    if not sandbox_probe.probe().ok:
        pytest.skip(f"bubblewrap cannot run here: {sandbox_probe.probe().reason}")
    repo = make_repo(tmp_path / "r", {"README.md": "x\n", ".gitignore": ".env\n"})
    (repo / ".env").write_text("SECRET=1\n")
    (repo / ".workbench.toml").write_text('[worktree]\ncopy_files = [".env"]\n')
    wb.run("trust", str(repo))  # copying more than the default needs the user's trust
    res = wb.run("new", "--repo", str(repo))
    assert "not copied while sandbox.hide_dotenv is on: .env" in res.stderr
    s = wb.wait_state(res.stdout.strip(), "running")
    assert not (Path(s["worktree"]) / ".env").exists()


# ------------------------------------------------------------ through the real daemon


FAKE_CODEX_CONFIG = """
[profiles.fakecodex]
command = ["/bin/sh", "-c", "{script}"]
hooks = "codex"
detect_silence = false
"""


@pytest.mark.sandbox
@pytest.mark.parametrize("plant", ["file", "dir"])
def test_daemon_does_not_write_agent_config_through_a_session_link(
    wb: Wb, repo: Path, tmp_path: Path, isolated_env: Path, plant: str
) -> None:
    if not sandbox_probe.probe().ok:
        pytest.skip(f"bubblewrap cannot run here: {sandbox_probe.probe().reason}")
    target = tmp_path / "host"
    target.mkdir()
    victim = target / "config.toml"
    victim.write_bytes(VICTIM)
    # Inside the sandbox: replace the generated config (or its directory) with a link
    # to the host path, then idle. The target need not be visible inside.
    if plant == "file":
        step = f'rm -f $CODEX_HOME/config.toml; ln -s {victim} $CODEX_HOME/config.toml'
    else:
        step = f'rm -rf $CODEX_HOME; ln -s {target} $CODEX_HOME'
    script = f"{step} && echo planted-$((1+1)); exec sleep 600"
    cfg = isolated_env / "config" / "workbench" / "config.toml"
    cfg.write_text(FAKE_CODEX_CONFIG.format(script=script))
    sid = wb.new(repo, "--agent", "fakecodex")
    wb.wait_screen(sid, "planted-2", timeout=20)
    wb.run("stop", sid)
    wait_for(lambda: wb.session(sid)["state"] in ("stopped", "error", "review"), 20, what="stop")
    wb.run("restart", sid, check=False)
    wait_for(lambda: wb.session(sid)["state"] != "starting", 20, what="restart settles")
    assert victim.read_bytes() == VICTIM
    assert sorted(os.listdir(target)) == ["config.toml"]
