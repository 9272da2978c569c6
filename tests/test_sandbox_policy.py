"""The bubblewrap policy as data: exact argv properties, probe diagnostics, seccomp program.

These tests need no working bubblewrap: a fake `bwrap` script on PATH stands in where
the argv is built, and the seccomp program is checked with a small BPF interpreter, for
both architectures.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git
from tests.sandbox_fixtures import World, build_world
from workbench import paths
from workbench.core import limits, sandbox_net, sandbox_paths, sandbox_probe, seccomp
from workbench.core.bwrap_argv import wrap
from workbench.core.sandbox_policy import SandboxCommand, SandboxSpec
from workbench.errors import SandboxError


def _script(d: Path, name: str, body: str) -> Path:
    p = d / name
    p.write_text("#!/bin/sh\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return p


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH with a fake bwrap (and the usual tools) in front."""
    d = tmp_path / "fakebin"
    d.mkdir()
    _script(d, "bwrap", 'echo "bubblewrap 0.8.0"\nexit 0\n')
    monkeypatch.setenv("PATH", f"{d}:/usr/local/bin:/usr/bin:/bin")
    return d


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path)


@pytest.fixture
def cmd(world: World, fake_bin: Path) -> Iterator[SandboxCommand]:
    c = wrap(world.spec(), ["bash", "-l"])
    yield c
    c.close()


def world_spec_nproc() -> int:
    return SandboxSpec.__dataclass_fields__["max_processes"].default  # type: ignore[no-any-return]


def idx(argv: list[str], *seq: str) -> int:
    """Index of the first occurrence of the consecutive items `seq` in argv."""
    for i in range(len(argv) - len(seq) + 1):
        if argv[i : i + len(seq)] == list(seq):
            return i
    raise AssertionError(f"{seq} not in argv")


def has(argv: list[str], *seq: str) -> bool:
    try:
        idx(argv, *seq)
    except AssertionError:
        return False
    return True


def bwrap_part(argv: list[str]) -> list[str]:
    return argv[: argv.index("--")]


# ------------------------------------------------------------------------ flags


def test_privilege_and_namespace_flags(cmd: SandboxCommand, fake_bin: Path) -> None:
    argv = cmd.argv
    assert argv[0] == str(fake_bin / "bwrap")
    opts = bwrap_part(argv)
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                 "--clearenv"):
        assert flag in opts
    assert has(opts, "--cap-drop", "ALL")
    assert "--share-net" not in opts  # --unshare-all includes the network namespace
    assert "--new-session" not in opts  # PTY job control needs the controlling terminal
    # The command runs under the RLIMIT_NPROC setter (core/limits.py), then as given.
    inner = argv[argv.index("--") + 1 :]
    assert inner[-2:] == ["bash", "-l"] and inner[:-2] == limits.nproc_prefix(world_spec_nproc())


def test_new_session_for_non_interactive_commands(world: World, fake_bin: Path) -> None:
    with wrap(world.spec(), ["true"], new_session=True) as c:
        assert "--new-session" in bwrap_part(c.argv)


def test_seccomp_fd_is_passed_and_holds_the_program(cmd: SandboxCommand) -> None:
    fd = int(cmd.argv[idx(cmd.argv, "--seccomp") + 1])
    assert fd in cmd.pass_fds
    assert os.pread(fd, 1 << 16, 0) == seccomp.program_bytes()


def test_base_mounts_and_private_dirs(cmd: SandboxCommand) -> None:
    a = cmd.argv
    root = idx(a, "--ro-bind", "/", "/")
    assert root < idx(a, "--dev", "/dev") < idx(a, "--proc", "/proc")
    assert idx(a, "--proc", "/proc") < idx(a, "--remount-ro", "/proc")
    assert idx(a, "--tmpfs", "/tmp") > root
    if Path("/run").is_dir() and not Path("/run").is_symlink():
        assert has(a, "--tmpfs", "/run")


def test_env_is_cleared_allowlisted_and_secrets_never_in_argv(
    world: World, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("WB_DAEMON_SECRET", "daemon-secret-1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-key")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/ssh-agent.sock")
    spec = world.spec(env={"AGENT_TOKEN": "agent-secret-2"}, env_allowlist=("PATH", "TERM", "LANG"))
    with wrap(spec, ["true"]) as c:
        text = "\0".join(c.argv)
        for secret in ("daemon-secret-1", "sk-host-key", "agent-secret-2", "SSH_AUTH_SOCK"):
            assert secret not in text
            assert secret not in "\0".join(f"{k}={v}" for k, v in c.env.items())
        opts = bwrap_part(c.argv)
        assert opts.index("--clearenv") < opts.index("--setenv")
        assert has(opts, "--setenv", "TERM", "xterm-256color")
        assert has(opts, "--setenv", "HOME", str(world.me.home.resolve()))
        assert has(opts, "--setenv", "TMPDIR", "/tmp")
        assert has(opts, "--setenv", "GIT_CONFIG_KEY_0", "gc.auto")
        assert has(opts, "--setenv", "GIT_CONFIG_VALUE_0", "0")
        # The bwrap process itself gets nothing but PATH.
        assert set(c.env) == {"PATH"}
        # The agent's own variables travel through an fd (/proc/PID/cmdline is public).
        fd = int(opts[idx(opts, "--args") + 1])
        assert fd in c.pass_fds
        assert os.pread(fd, 4096, 0) == b"--setenv\0AGENT_TOKEN\0agent-secret-2\0"


def test_off_mode_returns_the_bare_command(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no bwrap needed at all
    with wrap(world.spec(mode="off", env={"X_AGENT": "1"}), ["codex", "--yolo"]) as c:
        assert c.argv == ["codex", "--yolo"]
        assert c.pass_fds == ()
        assert c.env["X_AGENT"] == "1" and c.env["WORKBENCH_SANDBOX"] == "off"
        assert c.cwd == world.me.worktree.resolve()


# --------------------------------------------------------------------- ordering


def test_hidden_paths_win_over_broad_binds(world: World, fake_bin: Path) -> None:
    netrc = world.real_home / ".netrc"
    netrc.write_text("machine x password y\n")
    spec = world.spec(extra_ro_binds=(str(world.real_home),), extra_rw_binds=(str(world.tmp),))
    with wrap(spec, ["true"]) as c:
        a = bwrap_part(c.argv)
        ssh = str(world.secret.parent.resolve())
        hide_ssh = idx(a, "--tmpfs", ssh)
        assert hide_ssh > idx(a, "--ro-bind", "/", "/")
        assert hide_ssh > idx(a, "--ro-bind", str(world.real_home.resolve()), str(world.real_home))
        assert hide_ssh > idx(a, "--bind", str(world.tmp.resolve()), str(world.tmp))
        assert idx(a, "--ro-bind", "/dev/null", str(netrc.resolve())) > idx(
            a, "--bind", str(world.tmp.resolve()), str(world.tmp))
        assert has(a, "--remount-ro", ssh)
        # Nothing later binds over (and so re-exposes) the secret.
        later = a[hide_ssh + 2 :]
        for i, x in enumerate(later[:-2]):
            if x in ("--bind", "--ro-bind", "--ro-bind-try"):
                dest = later[i + 2]
                assert not (dest == ssh or dest.startswith(ssh + "/")), later[i : i + 3]


def test_dotenv_of_main_checkout_hidden_after_repo_bind(cmd: SandboxCommand, world: World) -> None:
    a = cmd.argv
    repo = str(world.repo.resolve())
    assert idx(a, "--ro-bind", "/dev/null", str(world.dotenv.resolve())) > idx(
        a, "--ro-bind", repo, repo
    )


def test_protected_paths_hidden_before_the_session_binds(world: World, fake_bin: Path) -> None:
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    with wrap(world.spec(), ["true"]) as c:
        a = c.argv
    data = str(paths.data_dir().resolve())
    hide_data = idx(a, "--tmpfs", data)
    wt = str(world.me.worktree.resolve())
    home = str(world.me.home.resolve())
    assert hide_data < idx(a, "--bind", wt, wt) and hide_data < idx(a, "--bind", home, home)
    for p in (Path(os.environ["XDG_RUNTIME_DIR"]), paths.config_dir(), world.sibling.worktree):
        assert has(a, "--tmpfs", str(p.resolve()))
    # Sealed read-only once everything inside is bound, and never re-exposed.
    assert idx(a, "--remount-ro", data) > idx(a, "--bind", home, home)
    sib = str(world.sibling.worktree.resolve())
    assert not has(a, "--bind", sib, sib) and not has(a, "--ro-bind", sib, sib)


def test_git_write_set_in_workspace_mode(cmd: SandboxCommand, world: World) -> None:
    """The session writes its worktree and its private .git; nothing of the user's repo."""
    a = cmd.argv
    c = str(world.common.resolve())
    wt = str(world.me.worktree.resolve())
    assert has(a, "--bind", wt, wt)
    assert idx(a, "--ro-bind", str(world.repo.resolve()), str(world.repo.resolve())) < idx(a, "--bind", wt, wt)
    rw_binds = [a[i + 1] for i, x in enumerate(a) if x == "--bind"]
    assert not [p for p in rw_binds if p == c or p.startswith(c + "/")]
    assert not has(a, "--ro-bind", wt + "/.git", wt + "/.git")


def test_strict_mode_binds_no_git_path_writable(world: World, fake_bin: Path) -> None:
    with wrap(world.spec(mode="strict"), ["true"]) as c:
        a = bwrap_part(c.argv)
        rw = [a[i + 1] for i, x in enumerate(a) if x == "--bind"]
        assert not [p for p in rw if p.startswith(str(world.common.resolve()))]
        wt = str(world.me.worktree.resolve())
        assert has(a, "--bind", wt, wt) and has(a, "--ro-bind", wt + "/.git", wt + "/.git")


# ------------------------------------------------------------------ network


def test_network_off_by_default_and_on_uses_slirp_without_host_loopback(
    world: World, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox_net, "network_problem", lambda: None)  # argv only; no /dev/net/tun
    with wrap(world.spec(), ["true"]) as c:
        assert "--unshare-all" in c.argv and "--share-net" not in c.argv
    _script(fake_bin, "slirp4netns", "exit 0\n")
    with wrap(world.spec(network=True), ["true"]) as c:
        assert c.argv[:5] == [sys.executable, "-m", "workbench.core.sandbox_net", "net-launch",
                              str(fake_bin / "slirp4netns")]
        inner = c.argv[c.argv.index("--") + 1 :]
        n_opts = int(c.argv[5])
        assert inner[0] == str(fake_bin / "bwrap") and "--share-net" not in inner
        assert inner[1 + n_opts :] == ["--", *limits.nproc_prefix(world_spec_nproc()), "true"]
        fd = int(inner[idx(inner, "--ro-bind-data") + 1])
        assert os.pread(fd, 100, 0) == b"nameserver 10.0.2.3\n"


def test_network_without_slirp4netns_is_refused(
    world: World, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(fake_bin))
    with pytest.raises(SandboxError) as e:
        wrap(world.spec(network=True), ["true"])
    assert "slirp4netns" in str(e.value) and "apt install slirp4netns" in str(e.value)


# --------------------------------------------------------------- bad input


def test_bad_specs_are_refused_with_a_fix(world: World, fake_bin: Path) -> None:
    cases = [
        (world.spec(mode="bogus"), "unknown sandbox mode"),
        (world.spec(worktree=world.repo), "main checkout"),
        (world.spec(extra_ro_binds=("relative/dir",)), "not an absolute path"),
        (world.spec(extra_rw_binds=("/nonexistent/wb",)), "does not exist"),
        (world.spec(home=world.tmp / "missing"), "does not exist"),
    ]
    # a worktree of the old layout (a .git file into the user's repository)
    old = world.tmp / "old-layout"
    old.mkdir()
    (old / ".git").write_text(f"gitdir: {world.common}/worktrees/old\n")
    cases.append((world.spec(worktree=old), "has no private repository"))
    for spec, msg in cases:
        with pytest.raises(SandboxError) as e:
            wrap(spec, ["true"])
        assert msg in str(e.value)
    with pytest.raises(SandboxError, match="empty command"):
        wrap(world.spec(), [])


def test_in_place_session_allowed_in_strict_mode(world: World, fake_bin: Path) -> None:
    spec = world.spec(mode="strict", worktree=world.repo, worktree_gitdir=world.common,
                      branch="main")
    with wrap(spec, ["true"]) as c:
        repo = str(world.repo.resolve())
        assert has(c.argv, "--bind", repo, repo)
        assert has(c.argv, "--ro-bind", repo + "/.git", repo + "/.git")


def test_close_releases_fds(world: World, fake_bin: Path) -> None:
    c = wrap(world.spec(env={"A": "b"}), ["true"])
    fds = c.pass_fds
    assert len(fds) == 2
    c.close()
    for fd in fds:
        with pytest.raises(OSError):
            os.fstat(fd)
    assert c.pass_fds == ()


# --------------------------------------------------------------------- probe


def test_probe_reports_missing_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    res = sandbox_probe.probe(force=True)
    assert not res.ok and res.bwrap is None
    assert "not installed" in (res.reason or "")
    assert "apt install bubblewrap" in (res.fix or "")
    assert "UNAVAILABLE" in res.describe()
    with pytest.raises(SandboxError) as e:
        sandbox_probe.require("workspace")
    assert "not installed" in str(e.value) and '"off"' in str(e.value)
    sandbox_probe.require("off")  # an explicit choice; never refused
    with pytest.raises(SandboxError, match="unknown sandbox mode"):
        sandbox_probe.require("loose")


def test_probe_reports_a_failing_bwrap(fake_bin: Path) -> None:
    _script(fake_bin, "bwrap", 'case "$1" in --version) echo "bubblewrap 0.8.0"; exit 0;; esac\n'
            'echo "bwrap: No permissions to creating new namespace, likely because the kernel '
            'does not allow non-privileged user namespaces." >&2\nexit 1\n')
    res = sandbox_probe.probe(force=True)
    assert not res.ok and res.version == "0.8.0"
    assert "No permissions to creating new namespace" in (res.reason or "")
    assert res.fix
    with pytest.raises(SandboxError) as e:
        sandbox_probe.require("strict")
    assert "No permissions" in str(e.value)


def test_probe_reports_an_old_bwrap(fake_bin: Path) -> None:
    _script(fake_bin, "bwrap", 'echo "bwrap: Unknown option --disable-userns" >&2\nexit 1\n')
    res = sandbox_probe.probe(force=True)
    assert not res.ok and "too old" in (res.reason or "") and "0.8" in (res.fix or "")


def test_probe_reports_apparmor(fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _script(fake_bin, "bwrap", 'echo "bwrap: setting up uid map: Permission denied" >&2\nexit 1\n')
    knobs = {"/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1"}
    monkeypatch.setattr(sandbox_probe, "read_sysctl", knobs.get)
    res = sandbox_probe.probe(force=True)
    assert "AppArmor" in (res.reason or "") and "apparmor" in (res.fix or "")


def test_probe_reports_seccomp_failure(fake_bin: Path) -> None:
    _script(fake_bin, "bwrap", 'for a in "$@"; do [ "$a" = --seccomp ] && '
            '{ echo "bwrap: prctl(PR_SET_SECCOMP): Invalid argument" >&2; exit 1; }; done\nexit 0\n')
    res = sandbox_probe.probe(force=True)
    assert not res.ok and not res.seccomp_ok
    assert "seccomp" in (res.reason or "")


def test_probe_is_cached_and_runs_the_real_flags(fake_bin: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls"
    _script(fake_bin, "bwrap", f'echo "$@" >> {log}\nexit 0\n')
    first = sandbox_probe.probe(force=True)
    assert first.ok and first.seccomp_ok
    calls = log.read_text().splitlines()
    assert sandbox_probe.probe() is first
    assert log.read_text().splitlines() == calls  # cached: bwrap not run again
    runs = [c for c in calls if "--unshare-user" in c]
    assert len(runs) == 2
    for flag in ("--unshare-all", "--disable-userns", "--cap-drop ALL", "--die-with-parent",
                 "--clearenv"):
        assert all(flag in c for c in runs)
    assert any("--seccomp" in c for c in runs)


def test_probe_warns_when_root(fake_bin: Path) -> None:
    res = sandbox_probe.probe(force=True)
    assert res.as_root == (os.geteuid() == 0)
    assert any("root" in w for w in res.warnings) == (os.geteuid() == 0)


# ------------------------------------------------------------------- prepare


def test_prepare_home_writes_identity(tmp_path: Path, world: World) -> None:
    git(world.repo, "config", "user.name", "Ada")
    git(world.repo, "config", "user.email", "ada@example.com")
    home = tmp_path / "h"
    sandbox_paths.prepare_home(home, world.repo)
    text = (home / ".gitconfig").read_text()
    assert "name = Ada" in text and "email = ada@example.com" in text and "auto = 0" in text
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_spec_from_settings() -> None:
    from workbench.config import SandboxSettings

    s = SandboxSettings(env_allowlist=["PATH"], hidden_paths=["~/.secret"], extra_ro_binds=["/opt"])
    spec = SandboxSpec.from_settings(
        s, mode="strict", worktree=Path("/w"), repo=Path("/r"), git_common_dir=Path("/r/.git"),
        worktree_gitdir=Path("/r/.git/worktrees/w"), branch="wb/w", home=Path("/h"),
    )
    assert spec.env_allowlist == ("PATH",) and spec.hidden_paths == ("~/.secret",)
    assert spec.extra_ro_binds == ("/opt",) and spec.mode == "strict"


# ------------------------------------------------------------------- seccomp

ALLOW = seccomp.SECCOMP_RET_ALLOW
EPERM = seccomp.SECCOMP_RET_ERRNO | errno.EPERM
ENOSYS = seccomp.SECCOMP_RET_ERRNO | errno.ENOSYS


@pytest.mark.parametrize("arch", sorted(seccomp.SYSCALLS))
def test_seccomp_decisions(arch: str) -> None:
    prog = seccomp.build(arch)
    nr = seccomp.SYSCALLS[arch]

    def run(name_or_nr: str | int, *args: int) -> int:
        n = nr[name_or_nr] if isinstance(name_or_nr, str) else name_or_nr
        return seccomp.simulate(prog, arch, n, args)

    for name in seccomp.DENIED:
        assert run(name) == EPERM, name
    assert run("clone3") == ENOSYS
    assert run("ioctl", 0, seccomp.TIOCSTI) == EPERM
    assert run("ioctl", 0, seccomp.TIOCSTI | (1 << 32)) == EPERM  # high bits ignored
    assert run("ioctl", 0, seccomp.TIOCLINUX) == EPERM
    assert run("ioctl", 0, 0x5413) == ALLOW  # TIOCGWINSZ: resize keeps working
    assert run("ioctl", 0, 0x5410) == ALLOW  # TIOCSPGRP: job control keeps working
    thread_flags = 0x003D0F00  # what glibc's pthread_create passes
    assert run("clone", thread_flags) == ALLOW
    assert run("clone", 0x11) == ALLOW  # fork: SIGCHLD
    for flag in (seccomp.CLONE_NEWUSER, seccomp.CLONE_NEWNET, seccomp.CLONE_NEWNS,
                 seccomp.CLONE_NEWPID):
        assert run("clone", flag | 0x11) == EPERM
    assert run(63 if arch == "aarch64" else 0) == ALLOW  # read
    # A syscall from another ABI (i386 read is 3) must never be judged by this table.
    assert seccomp.simulate(prog, "i386", 3, ()) == EPERM


def test_seccomp_x32_and_layout() -> None:
    prog = seccomp.build("x86_64")
    assert seccomp.simulate(prog, "x86_64", seccomp.X32_SYSCALL_BIT | 101, ()) == EPERM
    assert seccomp.simulate(prog, "x86_64", seccomp.X32_SYSCALL_BIT | 0, ()) == EPERM
    blob = seccomp.assemble(prog)
    assert len(blob) == 8 * len(prog) and len(prog) < 4096
    assert all(i.jt < 256 and i.jf < 256 for i in prog)


def test_seccomp_unknown_arch() -> None:
    with pytest.raises(seccomp.UnsupportedArch):
        seccomp.build("mips")


def test_symlinked_secret_dir_hides_its_target(world: World, fake_bin: Path) -> None:
    real = world.tmp / "vault" / "aws"
    real.mkdir(parents=True)
    (real / "credentials").write_text("aws_secret_access_key = x\n")
    (world.real_home / ".aws").symlink_to(real)
    with wrap(world.spec(), ["true"]) as c:
        a = bwrap_part(c.argv)
        assert has(a, "--tmpfs", str(real.resolve()))
        link = str(world.real_home / ".aws")
        assert not has(a, "--ro-bind", "/dev/null", link) and not has(a, "--tmpfs", link)
