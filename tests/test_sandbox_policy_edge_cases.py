"""Edge cases of the bubblewrap policy that mutation testing found untested.

The policy is checked through the argv it builds (a fake bwrap on PATH, as in
tests/test_sandbox_policy.py); the real-bwrap attack suite is tests/test_sandbox_attacks.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import git
from tests.sandbox_fixtures import World, build_world
from workbench.core import bwrap_argv, sandbox_net, sandbox_paths, sandbox_policy, sandbox_probe
from workbench.core.bwrap_argv import wrap
from workbench.core.sandbox_policy import SandboxCommand, SandboxSpec
from workbench.core.sandbox_probe import ProbeResult
from workbench.errors import SandboxError


def _script(d: Path, name: str, body: str, shell: str = "/bin/sh") -> Path:
    p = d / name
    p.write_text(f"#!{shell}\n" + body)
    p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return p


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
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
    c = wrap(world.spec(), ["true"])
    yield c
    c.close()


def opts(c: SandboxCommand) -> list[str]:
    return c.argv[: c.argv.index("--")]


def triples(a: list[str], flag: str) -> list[tuple[str, str]]:
    return [(a[i + 1], a[i + 2]) for i, x in enumerate(a) if x == flag and i + 2 < len(a)]


# --------------------------------------------------------------------------- git and home prep


def test_prepare_home_without_identity_and_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(k)
    bare = tmp_path / "bare"
    bare.mkdir()
    home = tmp_path / "h"
    sandbox_paths.prepare_home(home, bare)
    assert (home / ".gitconfig").read_text() == "[gc]\n\tauto = 0\n[maintenance]\n\tauto = false\n"
    (home / ".gitconfig").write_text("mine\n")
    sandbox_paths.prepare_home(home, bare)
    assert (home / ".gitconfig").read_text() == "mine\n"
    git(bare, "init", "-q")
    git(bare, "config", "user.email", "e@x")
    home2 = tmp_path / "h2"
    sandbox_paths.prepare_home(home2, bare)
    assert (home2 / ".gitconfig").read_text().startswith("[user]\n\temail = e@x\n[gc]\n")


# --------------------------------------------------------------------------- hidden paths


def test_expand_hidden_home_globs_and_symlinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path(os.environ["HOME"])
    (home / ".cfg-a").mkdir()
    (home / ".cfg-b").write_text("x")
    (home / "dangling").symlink_to(tmp_path / "nowhere")
    real = tmp_path / "real"
    real.mkdir()
    (home / "link").symlink_to(real)
    found = sandbox_paths.expand_hidden(["~/.cfg*", "~/dangling", "~/missing", "~/link", "/nonexistent/x", str(real)])
    assert home / ".cfg-a" in found and home / ".cfg-b" in found
    assert home / "dangling" in found  # a dangling link is still a name to hide
    assert home / "link" in found and real in found
    assert found.count(real) == 1
    assert not [p for p in found if "missing" in str(p) or "nonexistent" in str(p)]
    assert home in sandbox_paths.expand_hidden(["~"]) and home in sandbox_paths.expand_hidden(["~/"])
    monkeypatch.delenv("HOME")
    assert all(not str(p).startswith(str(home)) for p in sandbox_paths.expand_hidden(["~/.cfg-a"]))


def test_find_dotenv_depth_skips_and_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "r"
    deep = root / "a" / "b" / "c"
    deep.mkdir(parents=True)
    for d in (root, root / "a", root / "a" / "b", deep):
        (d / ".env").write_text("K=v")
    (deep / "d").mkdir()
    (deep / "d" / ".env").write_text("too deep")
    (root / ".envrc").write_text("x")
    (root / ".env.d").mkdir()
    (root / ".env.d" / "inner").mkdir()
    for skip in (".git", "node_modules", ".venv"):
        (root / skip).mkdir()
        (root / skip / ".env").write_text("skipped")
    (root / "link").symlink_to(root / "a")
    (root / "file.txt").write_text("x")
    found = {p.relative_to(root).as_posix() for p in sandbox_paths.find_dotenv(root)}
    assert found == {".env", ".envrc", ".env.d", "a/.env", "a/b/.env", "a/b/c/.env"}
    assert sandbox_paths.find_dotenv(tmp_path / "absent") == []


def test_parse_bind_forms_and_errors(tmp_path: Path) -> None:
    src = tmp_path / "s"
    src.mkdir()
    (tmp_path / "ln").symlink_to(src)
    assert sandbox_paths.parse_bind(str(tmp_path / "ln"), "extra_ro_binds") == (src, tmp_path / "ln")
    assert sandbox_paths.parse_bind(f"{src}:/opt/x", "extra_rw_binds") == (src, Path("/opt/x"))
    home = Path(os.environ["HOME"])
    (home / "tools").mkdir()
    assert sandbox_paths.parse_bind("~/tools:~/t", "extra_ro_binds") == ((home / "tools").resolve(), home / "t")
    with pytest.raises(SandboxError) as info:
        sandbox_paths.parse_bind(f"{src}:rel", "extra_rw_binds")
    assert info.value.message == f"sandbox.extra_rw_binds: {str(src) + ':rel'!r} is not an absolute path"
    assert info.value.hint == "write SRC or SRC:DEST with absolute paths (~ allowed)"
    with pytest.raises(SandboxError) as info:
        sandbox_paths.parse_bind("/nonexistent/wb-x", "extra_ro_binds")
    assert info.value.message == "sandbox.extra_ro_binds: /nonexistent/wb-x does not exist"
    assert info.value.hint == "create it or remove it from the list"


def test_args_hide_and_seal(tmp_path: Path) -> None:
    d, f, ln = tmp_path / "d", tmp_path / "f", tmp_path / "ln"
    d.mkdir()
    f.write_text("x")
    ln.symlink_to(d)
    a = bwrap_argv.BwrapArgs()
    for p in (d, f, ln, tmp_path / "missing", d):
        a.hide(p)
    assert a.args == ["--tmpfs", str(d), "--ro-bind", "/dev/null", str(f), "--tmpfs", str(d)]
    a.add("--bind", "/x", str(d))
    a.seal_hidden()
    assert "--remount-ro" not in a.args  # a later bind's destination: left alone
    b = bwrap_argv.BwrapArgs()
    b.hide(d)
    b.add("--bind", str(d), "/elsewhere")
    b.seal_hidden()
    assert b.args[-2:] == ["--remount-ro", str(d)]


# --------------------------------------------------------------------------- environment


def test_sandbox_env_allowlist_identity_and_git_config(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PATH")
    monkeypatch.setenv("TMPDIR", "/host/tmp")
    monkeypatch.setenv("USER", "ada")
    monkeypatch.setenv("LC_ALL", "C")
    monkeypatch.setenv("SECRET_TOKEN", "s")
    spec = world.spec(mode="strict", env_allowlist=("HOME", "TMPDIR", "LC_ALL"))
    env = sandbox_policy.sandbox_env(spec)
    assert env == {
        "LC_ALL": "C", "USER": "ada",
        "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(world.me.home.resolve()), "TMPDIR": "/tmp", "WORKBENCH_SANDBOX": "strict",
        "GIT_CONFIG_COUNT": "2",
        "GIT_CONFIG_KEY_0": "gc.auto", "GIT_CONFIG_VALUE_0": "0",
        "GIT_CONFIG_KEY_1": "maintenance.auto", "GIT_CONFIG_VALUE_1": "false",
    }  # fmt: skip


def test_off_mode_env_and_cwd(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST_VAR", "h")
    sub = world.me.worktree / "sub"
    sub.mkdir()
    c = wrap(world.spec(mode="off", env={"HOST_VAR": "agent"}), ["x"], cwd=sub)
    assert c.env["HOST_VAR"] == "agent" and c.env["GIT_CONFIG_COUNT"] == "2"
    assert c.env["GIT_CONFIG_KEY_1"] == "maintenance.auto" and c.cwd == sub.resolve()


def test_wrap_cwd_chdir_and_outer_env(world: World, fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sub = world.me.worktree / "pkg"
    sub.mkdir()
    monkeypatch.setenv("PYTHONPATH", "/host/lib")
    with wrap(world.spec(), ["true"], cwd=sub) as c:
        a = opts(c)
        assert a[a.index("--chdir") + 1] == str(sub.resolve()) and c.cwd == sub.resolve()
        assert c.env == {"PATH": os.environ["PATH"]}  # PYTHONPATH only for the network launcher
    monkeypatch.setattr(sandbox_net, "network_problem", lambda: None)
    _script(fake_bin, "slirp4netns", "exit 0\n")
    with wrap(world.spec(network=True), ["true"]) as c:
        assert c.env == {"PATH": os.environ["PATH"], "PYTHONPATH": "/host/lib"}
        assert c.argv[5] == str(c.argv.index("--", 7) - 8)  # options between bwrap and "--"
    monkeypatch.delenv("PYTHONPATH")
    with wrap(world.spec(network=True), ["true"]) as c:
        assert set(c.env) == {"PATH"}


def test_network_problem_and_refusal_message(
    world: World, fake_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(fake_bin))
    assert sandbox_net.network_problem() == (
        "slirp4netns is not installed", "apt install slirp4netns (or dnf install slirp4netns)"
    )
    with pytest.raises(SandboxError) as info:
        wrap(world.spec(network=True), ["true"])
    assert info.value.message == "network is enabled for this session but slirp4netns is not installed"
    assert info.value.hint == (
        "apt install slirp4netns (or dnf install slirp4netns); or start the session without network"
    )


# --------------------------------------------------------------------------- mounts


def test_extra_binds_land_between_tmpfs_and_secrets(world: World, fake_bin: Path, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    spec = world.spec(extra_ro_binds=(f"{tools}:/opt/tools", str(world.tmp)),
                      extra_rw_binds=(f"{tools}:/rw",))
    with wrap(spec, ["true"]) as c:
        a = opts(c)
        assert (str(tools), "/opt/tools") in triples(a, "--ro-bind")
        assert (str(tools), "/rw") in triples(a, "--bind")
        ro = a.index("--ro-bind", a.index("--tmpfs"))
        assert a[ro : ro + 3] == ["--ro-bind", str(tools), "/opt/tools"]


def test_repo_common_dir_outside_the_repo_is_bound_read_only(world: World, fake_bin: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "gitdirs" / "common"
    elsewhere.mkdir(parents=True)
    with wrap(world.spec(mode="strict", git_common_dir=elsewhere), ["true"]) as c:
        assert (str(elsewhere), str(elsewhere)) in triples(opts(c), "--ro-bind")
    with wrap(world.spec(mode="strict"), ["true"]) as c:
        common = str(world.common.resolve())
        assert (common, common) not in triples(opts(c), "--ro-bind")


def test_dotenv_hiding_can_be_turned_off(world: World, fake_bin: Path) -> None:
    dotenv = str(world.dotenv.resolve())
    with wrap(world.spec(hide_dotenv=False), ["true"]) as c:
        assert ("/dev/null", dotenv) not in triples(opts(c), "--ro-bind")
    with wrap(world.spec(), ["true"]) as c:
        assert ("/dev/null", dotenv) in triples(opts(c), "--ro-bind")


def test_private_tmpfs_dirs(cmd: SandboxCommand, world: World) -> None:
    a = opts(cmd)
    tmpfs = [a[i + 1] for i, x in enumerate(a) if x == "--tmpfs"]
    for d in sandbox_policy.PRIVATE_TMPFS:
        if Path(d).is_dir() and not Path(d).is_symlink():
            assert d in tmpfs
    assert a.index("--clearenv") > a.index("--chdir")
    assert a[-2] == "--seccomp"


# --------------------------------------------------------------------------- bad specs


def test_spec_errors_are_specific(world: World, fake_bin: Path, tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    old = tmp_path / "old-layout"
    old.mkdir()
    (old / ".git").write_text("gitdir: /elsewhere\n")
    cases = [
        (world.spec(worktree=f), f"sandbox worktree {f} does not exist or is not a directory"),
        (world.spec(home=f), f"sandbox home {f} does not exist or is not a directory"),
        (world.spec(worktree=tmp_path), f"{tmp_path} is not a git worktree (no .git)"),
        (world.spec(worktree=old), f"{old} has no private repository (.git is not a directory)"),
    ]
    for spec, message in cases:
        with pytest.raises(SandboxError) as info:
            wrap(spec, ["true"])
        assert info.value.message == message
    with pytest.raises(SandboxError) as info:
        wrap(world.spec(mode="bogus"), ["true"])
    assert info.value.hint == "use one of: workspace, strict, off"
    with pytest.raises(SandboxError) as info:
        wrap(world.spec(worktree=world.repo), ["true"])
    assert info.value.hint == "use sandbox 'strict' (the workbench commits from outside) or run it in a worktree"
    # Off mode checks only the directories: no git layout needed.
    with wrap(world.spec(mode="off", worktree=tmp_path, branch="main"), ["x"]) as c:
        assert c.argv == ["x"]
    # Strict mode does not need the git dirs the workspace binds.
    with wrap(world.spec(mode="strict", git_common_dir=tmp_path / "no"), ["true"]) as c:
        assert c.argv[0] == str(fake_bin / "bwrap")


def test_missing_bwrap_is_a_clear_error(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxError) as info:
        wrap(world.spec(), ["true"])
    assert info.value.message == "bubblewrap (bwrap) is not installed or not on PATH"
    assert info.value.hint is not None and info.value.hint.startswith("install it: apt install bubblewrap")


# --------------------------------------------------------------------------- probe


def test_probe_result_text() -> None:
    ok = ProbeResult(True, "/usr/bin/bwrap", "0.8.0", None, None, False, True, "/usr/bin/slirp4netns")
    assert ok.describe().splitlines()[0] == "sandbox: ok (/usr/bin/bwrap, bubblewrap 0.8.0, seccomp on)"
    bad = ProbeResult(False, None, None, "why", "how", True, False)
    lines = bad.describe().splitlines()
    assert lines[:2] == ["sandbox: UNAVAILABLE: why", "  fix: how"]
    assert lines[2].startswith("  warning: running as root: inside the sandbox uid 0 is the host's root")
    assert not ProbeResult(False, None, None, "r", "f", False, False).warnings


def test_probe_result_warns_about_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_net, "network_problem", lambda: ("no tun", "fix tun"))
    ok = ProbeResult(True, "b", "1", None, None, False, True)
    assert ok.warnings == ("sessions with network enabled cannot start: no tun (fix tun)",)
    assert not ProbeResult(False, "b", "1", "r", "f", False, False).warnings


@pytest.mark.parametrize(
    ("stderr", "knobs", "reason", "fix"),
    [
        ("bwrap: unrecognized option '--disable-userns'", {},
         "bubblewrap is too old: it has no --disable-userns (bwrap: unrecognized option '--disable-userns')",
         "install bubblewrap 0.8 or newer"),
        ("x\nbwrap: setting up uid map: Permission denied\n", {"/proc/sys/user/max_user_namespaces": "0"},
         "user namespaces are disabled (user.max_user_namespaces=0): bwrap: setting up uid map: Permission denied",
         "sudo sysctl -w user.max_user_namespaces=15000"),
        ("", {}, "bwrap failed: no error output", "run `bwrap --unshare-all"),
        ("disable-userns is fine\nboom", {}, "bwrap failed: boom", "run `bwrap"),
    ],
)  # fmt: skip
def test_diagnose(
    stderr: str, knobs: dict[str, str], reason: str, fix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sandbox_probe, "read_sysctl", knobs.get)
    monkeypatch.chdir(tmp_path)
    in_container = Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()
    if in_container and reason.startswith("bwrap failed"):
        reason = reason.replace("bwrap failed", "bwrap cannot create namespaces inside this container")
        fix = "run the container with"
    got_reason, got_fix = sandbox_probe.diagnose(stderr)
    assert got_reason == reason and got_fix.startswith(fix)


def test_read_sysctl(tmp_path: Path) -> None:
    f = tmp_path / "knob"
    f.write_text(" 1\n")
    assert sandbox_probe.read_sysctl(str(f)) == "1"
    assert sandbox_probe.read_sysctl(str(tmp_path / "none")) is None


def test_probe_argv_and_version(fake_bin: Path) -> None:
    assert sandbox_probe.probe_argv("B", "T", None) == [
        "B", *bwrap_argv.base_flags(), *bwrap_argv.BASE_MOUNTS, "--tmpfs", "/tmp", "--clearenv", "--", "T"
    ]
    assert sandbox_probe.probe_argv("B", "T", 7)[-4:] == ["--seccomp", "7", "--", "T"]
    assert bwrap_argv.base_flags(new_session=True)[-1] == "--new-session"
    res = sandbox_probe.probe(force=True)
    assert res.ok and res.version == "0.8.0" and res.bwrap == str(fake_bin / "bwrap")
    _script(fake_bin, "bwrap", "exit 0\n")
    assert sandbox_probe.probe(force=True).version is None
    sandbox_probe.require("workspace")  # a working bwrap: no error


def test_probe_of_an_unrunnable_bwrap(fake_bin: Path) -> None:
    (fake_bin / "bwrap").write_text("#!/nonexistent/interpreter\n")
    res = sandbox_probe.probe(force=True)
    assert not res.ok and (res.reason or "").startswith(f"cannot run {fake_bin / 'bwrap'}: ")
    assert res.fix == "check that bwrap is executable"


# --------------------------------------------------------------------------- network helper pieces


def test_read_all_reads_until_json_or_eof_and_times_out() -> None:
    r, w = os.pipe()
    try:
        def feed() -> None:
            os.write(w, b'{"child-pid"')
            os.write(w, b": 42}")

        t = threading.Thread(target=feed)
        t.start()
        t.join()
        assert json.loads(sandbox_net.read_until_json(r, 5)) == {"child-pid": 42}
        os.write(w, b"partial")
        os.close(w)
        w = -1
        assert sandbox_net.read_until_json(r, 5) == b"partial"
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    r, w = os.pipe()
    try:
        with pytest.raises(TimeoutError, match="bwrap did not report its child pid"):
            sandbox_net.read_until_json(r, 0.05)
    finally:
        os.close(r)
        os.close(w)


def test_net_launch_entry_point_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert sandbox_net.main(["net-launch", "slirp", "3"]) == 2
    assert sandbox_net.main(["other", "slirp", "3", "--", "bwrap"]) == 2
    assert sandbox_net.main(["net-launch", "slirp", "3", "-x", "bwrap"]) == 2
    err = capsys.readouterr().err
    assert err.count("usage: python -m workbench.core.sandbox_net net-launch SLIRP4NETNS N_OPTS -- BWRAP...") == 3


def test_spec_from_settings_keeps_overrides() -> None:
    from workbench.config import SandboxSettings

    s = SandboxSettings(env_allowlist=["PATH"], hide_dotenv=False, extra_rw_binds=["/srv"])
    spec = SandboxSpec.from_settings(
        s, mode="strict", worktree=Path("/w"), repo=Path("/r"), git_common_dir=Path("/r/.git"),
        worktree_gitdir=Path("/g"), branch="wb/w", home=Path("/h"), hide_dotenv=True,
    )
    assert spec.hide_dotenv is True and spec.extra_rw_binds == ("/srv",) and spec.hidden_paths == tuple(s.hidden_paths)


def test_command_close_is_idempotent() -> None:
    r, w = os.pipe()
    c = SandboxCommand(["x"], {}, (r, w))
    with c as same:
        assert same is c
    assert c.pass_fds == ()
    c.close()
    for fd in (r, w):
        with pytest.raises(OSError):
            os.fstat(fd)


# --------------------------------------------------------------------------- second round


@pytest.fixture
def slirp_bin(fake_bin: Path) -> Path:
    return _script(fake_bin, "slirp4netns", "exit 0\n")


def test_probe_results_in_full(fake_bin: Path, slirp_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bwrap, root = str(fake_bin / "bwrap"), os.geteuid() == 0
    slirp = str(slirp_bin)
    assert sandbox_probe.probe(force=True) == ProbeResult(True, bwrap, "0.8.0", None, None, root, True, slirp)
    _script(fake_bin, "bwrap", 'case "$1" in --version) echo "bubblewrap 0.9.1";; '
            '*) echo "bwrap: setting up uid map: Permission denied" >&2; exit 1;; esac\n')
    monkeypatch.setattr(sandbox_probe, "read_sysctl", {"/proc/sys/user/max_user_namespaces": "0"}.get)
    reason, fix = sandbox_probe.diagnose("bwrap: setting up uid map: Permission denied")
    assert sandbox_probe.probe(force=True) == ProbeResult(False, bwrap, "0.9.1", reason, fix, root, False, slirp)
    _script(fake_bin, "bwrap", '[ "$1" = --version ] && echo "bubblewrap 0.9.2"\n'
            'for a in "$@"; do [ "$a" = --seccomp ] && exit 1; done\nexit 0\n')
    assert sandbox_probe.probe(force=True) == ProbeResult(
        False, bwrap, "0.9.2", "bwrap runs but cannot load the seccomp filter: no error output",
        "use a kernel with CONFIG_SECCOMP_FILTER (every mainstream distribution has it)", root, False, slirp,
    )
    (fake_bin / "bwrap").write_text("#!/nonexistent/sh\n")
    res = sandbox_probe.probe(force=True)
    assert res == ProbeResult(False, bwrap, None, res.reason, "check that bwrap is executable", root, False, slirp)
    empty = fake_bin / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    reason, fix = bwrap_argv.missing_bwrap()
    assert sandbox_probe.probe(force=True) == ProbeResult(False, None, None, reason, fix, root, False, None)
    assert fix == ("install it: apt install bubblewrap (Debian/Ubuntu), dnf install bubblewrap (Fedora), "
                   'pacman -S bubblewrap (Arch); or choose sandbox "off" explicitly')


def test_probe_cache_is_per_bwrap_path(fake_bin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = sandbox_probe.probe(force=True)
    other = tmp_path / "other"
    other.mkdir()
    _script(other, "bwrap", 'echo "bubblewrap 0.11.0"\n')
    monkeypatch.setenv("PATH", f"{other}:/usr/bin:/bin")
    second = sandbox_probe.probe()
    assert second.bwrap == str(other / "bwrap") and second.version == "0.11.0" and first.version == "0.8.0"


def test_probe_runs_bwrap_with_only_path_and_a_default(fake_bin: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "envlog"
    _script(fake_bin, "bwrap", f'env > {log}\nexit 0\n')
    monkeypatch.setenv("SECRET_X", "1")
    assert sandbox_probe.probe(force=True).ok
    env = dict(line.split("=", 1) for line in log.read_text().splitlines() if "=" in line)
    assert env.get("PATH") == os.environ["PATH"] and "SECRET_X" not in env
    run = sandbox_probe.run_probe([str(fake_bin / "bwrap")], ())
    assert run.returncode == 0 and run.stdout == ""
    monkeypatch.setenv("PATH", "")
    assert sandbox_probe.run_probe([str(fake_bin / "bwrap")], ()).returncode == 0
    env = dict(line.split("=", 1) for line in log.read_text().splitlines() if "=" in line)
    assert env["PATH"] == sandbox_policy.DEFAULT_PATH


def test_unsupported_architecture(world: World, fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    monkeypatch.setattr(platform, "machine", lambda: "mips")
    res = sandbox_probe.probe(force=True)
    assert (res.reason or "").startswith("no seccomp syscall table for 'mips'")
    assert res == ProbeResult(False, str(fake_bin / "bwrap"), "0.8.0", res.reason, 'use sandbox "off" on this machine',
                              os.geteuid() == 0, False, shutil.which("slirp4netns"))
    with pytest.raises(SandboxError) as info:
        wrap(world.spec(env={"A": "b"}), ["true"])
    assert info.value.message.startswith("no seccomp syscall table for 'mips'")
    assert info.value.hint == "use sandbox 'off' on this machine"


def test_diagnose_more_knobs(monkeypatch: pytest.MonkeyPatch) -> None:
    knobs = {"/proc/sys/kernel/unprivileged_userns_clone": "0"}
    monkeypatch.setattr(sandbox_probe, "read_sysctl", knobs.get)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    reason, fix = sandbox_probe.diagnose("bwrap: No permissions\n")
    assert reason == (
        "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0): bwrap: No permissions"
    )
    assert fix == ("sudo sysctl -w kernel.unprivileged_userns_clone=1, and persist it in "
                   "/etc/sysctl.d/99-userns.conf")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert not sandbox_probe.diagnose("x")[0].startswith("unprivileged")  # root is not affected
    knobs.clear()
    knobs["/proc/sys/kernel/apparmor_restrict_unprivileged_userns"] = "1"
    reason, fix = sandbox_probe.diagnose("e")
    assert reason == ("AppArmor restricts unprivileged user namespaces "
                      "(kernel.apparmor_restrict_unprivileged_userns=1): e")
    assert fix == ("install an AppArmor profile that allows userns for bwrap (see docs/security.md, "
                   "'AppArmor'), or sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0")
    knobs.clear()
    knobs["/proc/sys/user/max_user_namespaces"] = "0"
    assert sandbox_probe.diagnose("e")[1] == (
        "sudo sysctl -w user.max_user_namespaces=15000, and persist it in /etc/sysctl.d/99-userns.conf"
    )
    assert sandbox_probe.diagnose("Unknown option --disable-userns")[1] == (
        "install bubblewrap 0.8 or newer (Debian 12+, Ubuntu 23.10+, Fedora 38+)"
    )
    knobs.clear()
    in_container = Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()
    reason, fix = sandbox_probe.diagnose("e")
    if in_container:
        assert reason == "bwrap cannot create namespaces inside this container: e"
        assert fix == ("run the container with --security-opt seccomp=unconfined --security-opt "
                       'apparmor=unconfined (or --privileged), or choose sandbox "off" explicitly')
    else:
        assert (reason, fix) == ("bwrap failed: e", "run `bwrap --unshare-all --unshare-user --ro-bind / / true` "
                                 "to see the error; see docs/security.md, 'When bwrap cannot run'")


def test_require_messages(fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SandboxError) as info:
        sandbox_probe.require("loose")
    assert info.value.hint == "use one of: workspace, strict, off"
    monkeypatch.setenv("PATH", str(fake_bin / "none"))
    with pytest.raises(SandboxError) as info:
        sandbox_probe.require("strict")
    assert info.value.message.startswith("cannot start a session in sandbox mode 'strict': bubblewrap (bwrap)")
    assert info.value.hint is not None and info.value.hint.endswith(
        '; or choose sandbox "off" explicitly for this session (it then runs unconfined)'
    )


def test_network_problem_without_tun_access(slirp_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int]] = []

    real_access = os.access

    def access(path: str, mode: int, **kw: object) -> bool:
        if path != "/dev/net/tun":
            return real_access(path, mode, **kw)  # type: ignore[arg-type]
        seen.append((path, mode))
        return False

    monkeypatch.setattr(os, "access", access)
    assert sandbox_net.network_problem() == (
        "/dev/net/tun is not usable by this user (slirp4netns needs it)",
        "sudo chmod 0666 /dev/net/tun (udev sets this mode on standard systems)",
    )
    assert seen == [("/dev/net/tun", os.R_OK | os.W_OK)]
    monkeypatch.setattr(os, "access", lambda p, m, **kw: True)
    assert sandbox_net.network_problem() is None


def test_network_spec_binds_a_private_resolv_conf(world: World, slirp_bin: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_net, "network_problem", lambda: None)
    with wrap(world.spec(network=True), ["true"]) as c:
        assert c.argv[4] == str(slirp_bin)
        inner = c.argv[c.argv.index("--") + 1 :]
        i = inner.index("--ro-bind-data")
        assert inner[i + 2] == os.path.realpath("/etc/resolv.conf")
        assert os.pread(int(inner[i + 1]), 100, 0) == b"nameserver 10.0.2.3\n"
    monkeypatch.setenv("PATH", str(slirp_bin.parent.parent / "nowhere") + ":" + str(world.tmp / "fakebin"))
    (slirp_bin).unlink()
    with wrap(world.spec(network=True), ["true"]) as c:
        assert c.argv[4] == "slirp4netns"  # found at run time on the launcher's PATH


def test_secrets_sorted_shallow_first_and_protected_inside_the_repo(world: World, fake_bin: Path) -> None:
    inner = world.repo / "private"
    (inner / "deep").mkdir(parents=True)
    (inner / "deep" / "key").write_text("k")
    spec = world.spec(protected_paths=(inner / "deep" / "key", inner), hidden_paths=())
    with wrap(spec, ["true"]) as c:
        a = opts(c)
        shallow = [i for i, x in enumerate(a) if x == "--tmpfs" and a[i + 1] == str(inner)]
        deep = [i for i, x in enumerate(a) if x == "--ro-bind" and a[i + 2] == str(inner / "deep" / "key")]
        assert shallow and deep and shallow[0] < deep[0]
        repo = str(world.repo.resolve())
        after_repo = a.index("--ro-bind", a.index(repo) - 1)
        assert [i for i in shallow if i > after_repo] and [i for i in deep if i > after_repo]
        assert a.count(repo) == 2  # the repo itself is bound, never hidden


def test_agent_env_blob_and_memfds(world: World, fake_bin: Path) -> None:
    with wrap(world.spec(env={"A": "1", "B": "two"}), ["true"]) as c:
        a = opts(c)
        fd = int(a[a.index("--args") + 1])
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0
        assert os.read(fd, 100) == b"--setenv\0A\0001\0--setenv\0B\0two\0"
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("/memfd:workbench-bwrap")
        assert os.get_inheritable(fd)


def test_off_mode_has_no_fds_and_base_flags_default(world: World) -> None:
    c = wrap(world.spec(mode="off"), ["x"])
    assert c.pass_fds == () and "--new-session" not in bwrap_argv.base_flags()
    with pytest.raises(SandboxError, match=r"^empty command$"):
        wrap(world.spec(mode="off"), [])


def test_main_checkout_message(world: World, fake_bin: Path) -> None:
    with pytest.raises(SandboxError) as info:
        wrap(world.spec(worktree=world.repo), ["true"])
    assert info.value.message == ("a session in the main checkout cannot use sandbox mode 'workspace' (its .git "
                                  "would have to be writable)")


def test_find_dotenv_visits_a_bounded_number_of_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "wide"
    for i in range(5):
        (root / f"d{i}").mkdir(parents=True)
        (root / f"d{i}" / ".env").write_text("x")
    monkeypatch.setattr(sandbox_paths, "DOTENV_MAX_DIRS", 3)  # the root and two subdirectories
    assert len(sandbox_paths.find_dotenv(root)) == 2
    monkeypatch.setattr(sandbox_paths, "DOTENV_MAX_DIRS", 1)
    assert sandbox_paths.find_dotenv(root) == []


def test_expand_hidden_tilde_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path(os.environ["HOME"])
    (home / "x").mkdir()
    assert sandbox_paths.expand_hidden(["~//x"]) == [home / "x"]
    (home / "lit[1]").mkdir()
    assert sandbox_paths.expand_hidden(["~/lit[1]"]) == []  # a glob: matches "lit1", which does not exist
    assert sandbox_paths.expand_hidden([str(home / "x")]) == [home / "x"]


def test_sandbox_env_never_takes_home_or_tmpdir_from_the_allowlist(world: World,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", "/host/tmp")
    env = sandbox_policy.sandbox_env(world.spec(env_allowlist=("HOME", "TMPDIR")))
    assert env["HOME"] == str(world.me.home.resolve()) and env["TMPDIR"] == "/tmp"
    assert list(env).index("HOME") > list(env).index("PATH")


# --------------------------------------------------------------------------- network launcher


def _pipes() -> tuple[int, int]:
    r, w = os.pipe()
    return r, w


def _fake_slirp(d: Path, log: Path, *, ok: bool) -> Path:
    body = f'echo "$@" > {log}\n'
    if ok:
        body += 'for a in "$@"; do case "$a" in --ready-fd=*) eval "printf 1 >&${a#--ready-fd=}";; esac; done\n'
    else:
        body += 'echo "cannot open tap" >&2\nexit 1\n'
    return _script(d, "slirp4netns", body, "/bin/bash")  # dash cannot redirect fds above 9


def test_net_helper_attaches_slirp_then_lets_the_command_go(tmp_path: Path) -> None:
    log = tmp_path / "slirp.log"
    slirp = _fake_slirp(tmp_path, log, ok=True)
    child = subprocess.Popen(["sleep", "30"])
    info_r, info_w = _pipes()
    ready_r, ready_w = _pipes()
    go_r, go_w = _pipes()
    exit_r, exit_w = _pipes()
    try:
        os.write(info_w, json.dumps({"child-pid": child.pid}).encode())
        os.write(ready_w, b"x")
        assert sandbox_net.attach_network(str(slirp), 0, info_r, ready_r, go_w, exit_r) == 0
        assert os.read(go_r, 10) == b"go\n"
        args = log.read_text().split()
        assert args[:4] == ["--configure", "--mtu=65520", "--disable-host-loopback", f"--exit-fd={exit_r}"]
        assert args[4].startswith("--ready-fd=") and args[5] == "--netns-type=path"
        assert args[6].startswith("--userns-path=/proc/self/fd/") and args[7].startswith("/proc/self/fd/")
        assert args[8] == "tap0" and len(args) == 9
        assert child.poll() is None  # the sandbox keeps running
    finally:
        child.kill()
        child.wait()
        for fd in (info_r, info_w, ready_r, ready_w, go_r, go_w, exit_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def test_net_helper_kills_the_sandbox_when_slirp_fails(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    slirp = _fake_slirp(tmp_path, tmp_path / "log", ok=False)
    child = subprocess.Popen(["sleep", "30"])
    info_r, info_w = _pipes()
    ready_r, ready_w = _pipes()
    go_r, go_w = _pipes()
    exit_r, exit_w = _pipes()
    try:
        os.write(info_w, b'{"child-pid": %d}' % child.pid)
        os.write(ready_w, b"x")
        assert sandbox_net.attach_network(str(slirp), 0, info_r, ready_r, go_w, exit_r) == 1
        assert child.wait(5) == -9
        assert "workbench: slirp4netns failed: cannot open tap\n\r\n" in capfd.readouterr().err
    finally:
        child.kill()
        child.wait()
        for fd in (info_r, info_w, ready_r, ready_w, go_r, go_w, exit_w):
            with contextlib.suppress(OSError):
                os.close(fd)
    ready_r, ready_w = _pipes()
    info_r, info_w = _pipes()
    os.write(info_w, b'{"child-pid": 1}')
    os.write(ready_w, b"n")
    try:
        with pytest.raises(RuntimeError, match="the sandbox did not start"):
            sandbox_net.attach_network(str(slirp), 0, info_r, ready_r, -1, -1)
    finally:
        for fd in (ready_r, ready_w, info_r, info_w):
            os.close(fd)


def test_net_launch_runs_the_command_after_the_network_is_up(tmp_path: Path) -> None:
    """The whole launcher in a forked child, with fake bwrap and slirp4netns binaries."""
    log = tmp_path / "slirp.log"
    out = tmp_path / "out"
    blog = tmp_path / "bwrap.log"
    slirp = _fake_slirp(tmp_path, log, ok=True)
    bwrap = _script(tmp_path, "bwrap", (
        "info=\n"
        'while [ $# -gt 0 ]; do case "$1" in --info-fd) info=$2; shift 2;; --) shift; break;; '
        f'*) echo "$1" >> {blog}; shift;; esac; done\n'
        'eval "printf \'{\\"child-pid\\": %d}\' $$ >&$info"\n'
        'exec "$@"\n'
    ), "/bin/bash")
    assert sandbox_net.main(["net-launch"]) == 2  # (in-process: ties this test to main for mutmut)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child becomes bwrap
        try:
            os.setsid()
            # As in a fresh launcher process: the pipes get low numbers (the waiter's /bin/sh
            # may be dash, which cannot redirect fds above 9).
            os.closerange(3, 1 << 16)
            sandbox_net.main(["net-launch", str(slirp), "2", "--", str(bwrap), "--opt-a", "--opt-b", "--",
                           "/bin/sh", "-c", f"echo ran > {out}"])
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out.read_text() == "ran\n"
    assert blog.read_text().split() == ["--opt-a", "--opt-b"]
    assert log.read_text().split()[-1] == "tap0"


def test_probe_when_running_bwrap_itself_fails(fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe runs (not `--version`) raising: at the first run, and at the seccomp run."""
    real_run = sandbox_probe.run_probe
    fail_at = {"run": 1}
    runs: list[list[str]] = []

    def run(argv: list[str], fds: tuple[int, ...]) -> subprocess.CompletedProcess[str]:
        runs.append(argv)
        if len(runs) == fail_at["run"]:
            raise OSError(7, "arg list too long")
        return real_run(argv, fds)

    monkeypatch.setattr(sandbox_probe, "run_probe", run)
    bwrap, root, slirp = str(fake_bin / "bwrap"), os.geteuid() == 0, shutil.which("slirp4netns")
    assert sandbox_probe.probe(force=True) == ProbeResult(
        False, bwrap, "0.8.0", f"cannot run {bwrap}: [Errno 7] arg list too long", "check that bwrap is executable",
        root, False, slirp,
    )
    runs.clear()
    fail_at["run"] = 2
    assert sandbox_probe.probe(force=True) == ProbeResult(
        False, bwrap, "0.8.0", "bwrap runs but cannot load the seccomp filter: [Errno 7] arg list too long",
        "use a kernel with CONFIG_SECCOMP_FILTER (every mainstream distribution has it)", root, False, slirp,
    )
    assert "--seccomp" in runs[1]


def test_probe_version_is_the_last_word_and_true_is_found_on_path(fake_bin: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "args"
    _script(fake_bin, "bwrap", f'[ "$1" = --version ] && echo "bwrap version 0.10.0"\necho "$@" > {log}\n')
    assert sandbox_probe.probe(force=True).version == "0.10.0"
    assert log.read_text().split()[-1] == shutil.which("true")
    monkeypatch.setenv("PATH", str(fake_bin))  # no `true` on PATH: the usual place
    assert sandbox_probe.probe(force=True).ok
    assert log.read_text().split()[-1] == "/bin/true"


def test_probe_without_bwrap_still_reports_slirp4netns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "only-slirp"
    d.mkdir()
    slirp = _script(d, "slirp4netns", "exit 0\n")
    monkeypatch.setenv("PATH", str(d))
    res = sandbox_probe.probe(force=True)
    assert res.bwrap is None and res.slirp4netns == str(slirp)


def test_bad_extra_binds_name_their_setting(world: World, fake_bin: Path) -> None:
    for setting in ("extra_ro_binds", "extra_rw_binds"):
        with pytest.raises(SandboxError) as info:
            wrap(world.spec(**{setting: ("relative/path",)}), ["true"])
        assert info.value.message == f"sandbox.{setting}: 'relative/path' is not an absolute path"


def test_seal_hidden_leaves_every_kind_of_bind_destination(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    for flag in ("--bind", "--ro-bind", "--ro-bind-try"):
        a = bwrap_argv.BwrapArgs()
        a.hide(d)
        a.add(flag, "/src", str(d))
        a.seal_hidden()
        assert "--remount-ro" not in a.args
    a = bwrap_argv.BwrapArgs()
    a.hide(d)
    a.add("--bind", "/x", str(tmp_path / "other"), "--bind", str(d))  # a last, incomplete bind
    a.seal_hidden()
    assert a.args[-2:] == ["--remount-ro", str(d)]


def test_strict_mode_binds_a_common_dir_inside_the_worktree_read_only(world: World, fake_bin: Path) -> None:
    common = world.me.worktree / ".git" / "common"
    common.mkdir()
    with wrap(world.spec(mode="strict", git_common_dir=common), ["true"]) as c:
        a, path = opts(c), str(common.resolve())
        binds = [i for i, x in enumerate(a) if x == "--ro-bind" and a[i + 1 : i + 3] == [path, path]]
        # Once as a common dir outside the repo, and again on top of the writable worktree.
        assert len(binds) == 2 and binds[1] > a.index(str(world.me.worktree.resolve()))


def test_secrets_outside_the_repo_are_hidden_once_shallow_first_then_by_name(world: World, fake_bin: Path,
                                                                             tmp_path: Path) -> None:
    base = tmp_path / "secrets"
    names = ["x/aa", "x/a/b", "x/d", "x/c", "x/e", "x/b"]
    for n in names:
        (base / n).mkdir(parents=True)
    spec = world.spec(hidden_paths=tuple(str(base / n) for n in names))
    with wrap(spec, ["true"]) as c:
        a = opts(c)
        tmpfs = [a[i + 1] for i, x in enumerate(a) if x == "--tmpfs" and a[i + 1].startswith(str(base))]
    assert tmpfs == [str(base / n) for n in ("x/aa", "x/b", "x/c", "x/d", "x/e", "x/a/b")]
