"""A sandbox spec -> the exact bwrap argv (`wrap`), and the flags the probe shares.

Mount order matters because later binds win: the read-only root first, then private
tmpfs over /tmp, /run and /var/tmp, then the user's extra binds, then protected paths
(workbench state, other sessions) and secrets hidden with tmpfs or /dev/null, and only
then the few paths the session needs, re-exposed on top. docs/security.md explains the
design and its known gaps.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import sys
from pathlib import Path

from workbench.core import limits, sandbox_loopback, sandbox_net, seccomp
from workbench.core.sandbox_paths import (
    expand_hidden,
    find_dotenv,
    is_within,
    is_within_name,
    parse_bind,
    realpaths,
    which,
    workbench_dirs,
)
from workbench.core.sandbox_policy import (
    DEFAULT_PATH,
    PRIVATE_TMPFS,
    SandboxCommand,
    SandboxSpec,
    check_spec,
    git_config_env,
    sandbox_env,
)
from workbench.errors import SandboxError


def find_bwrap() -> str | None:
    """The bwrap on PATH, or None."""
    return which("bwrap")


# /proc is remounted read-only as a whole: bwrap leaves /proc/sys and /proc/sysrq-trigger
# writable, and when the workbench runs as root the sandbox's uid 0 is the host's uid 0,
# which sysctl files trust by mode alone (it could set kernel.core_pattern, a host root
# exec, or write sysrq-trigger). Reading /proc, and /proc/self, still works.
BASE_MOUNTS: tuple[str, ...] = (
    "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--remount-ro", "/proc",
)


def base_flags(*, new_session: bool = False) -> list[str]:
    """Namespace and privilege flags every sandbox (and the probe) uses."""
    flags = [
        "--unshare-all", "--unshare-user", "--disable-userns",
        "--die-with-parent", "--cap-drop", "ALL",
    ]
    if new_session:
        flags.append("--new-session")
    return flags


def missing_bwrap() -> tuple[str, str]:
    """(reason, fix) when no bwrap is on PATH."""
    return (
        "bubblewrap (bwrap) is not installed or not on PATH",
        "install it: apt install bubblewrap (Debian/Ubuntu), dnf install bubblewrap "
        "(Fedora), pacman -S bubblewrap (Arch); or choose sandbox \"off\" explicitly",
    )


class BwrapArgs:
    """bwrap arguments plus the fds they refer to."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self.fds: list[int] = []
        self.hidden_dirs: list[str] = []

    def add(self, *a: str) -> None:
        self.args.extend(a)

    def hide(self, p: Path | str) -> None:
        """Cover a dir with an empty tmpfs, a file with /dev/null; a missing path is left."""
        name = str(p)
        try:
            mode = os.lstat(name).st_mode  # one syscall: this runs for every hidden path of every spawn
        except OSError:
            return
        if stat.S_ISLNK(mode):
            return  # bwrap would mount over the target; callers pass the target too
        if stat.S_ISDIR(mode):
            self.add("--tmpfs", name)
            self.hidden_dirs.append(name)
        else:
            self.add("--ro-bind", "/dev/null", name)

    def seal_hidden(self) -> None:
        """Make the tmpfs over hidden dirs read-only, once binds inside them are made.

        Writes there would only land in the tmpfs, but failing them loudly is clearer.
        `--remount-ro` is not recursive, so binds made inside (the worktree under the
        data dir) stay writable; a dir that is itself a later bind's destination is left.
        """
        dests = {self.args[i + 2] for i, a in enumerate(self.args)
                 if a in ("--bind", "--ro-bind", "--ro-bind-try") and i + 2 < len(self.args)}
        for d in dict.fromkeys(self.hidden_dirs):
            if d not in dests:
                self.add("--remount-ro", d)

    def data_fd(self, data: bytes) -> int:
        """A memfd holding `data`, rewound, for bwrap to read (closed by `close`)."""
        # Inheritable: ptyprocess passes pass_fds through exec without clearing CLOEXEC.
        fd = os.memfd_create("workbench-bwrap", 0)
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        self.fds.append(fd)
        return fd

    def close(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def wrap(
    spec: SandboxSpec,
    command: list[str],
    *,
    cwd: Path | None = None,
    new_session: bool = False,
) -> SandboxCommand:
    """The command to spawn for `command` under `spec`.

    `new_session` detaches the command from the controlling terminal (setsid); use it for
    non-interactive commands. Interactive PTY sessions keep it off so job control works;
    TIOCSTI is refused by seccomp either way. Each result serves one spawn: its fds are
    read to EOF by bwrap. Call `.close()` after spawning.
    """
    if not command:
        raise SandboxError("empty command")
    check_spec(spec)
    workdir = (cwd or spec.worktree).resolve()
    if spec.mode == "off":
        env = dict(os.environ)
        env.update(spec.env)
        env.update(git_config_env())
        env["WORKBENCH_SANDBOX"] = "off"
        return SandboxCommand(argv=list(command), env=env, pass_fds=(), cwd=workdir)

    bwrap = find_bwrap()
    if not bwrap:
        reason, fix = missing_bwrap()
        raise SandboxError(reason, hint=fix)
    a = BwrapArgs()
    try:
        _build(a, spec, workdir, new_session=new_session, sized=limits.tmpfs_size_supported(bwrap))
        argv = [bwrap, *a.args, "--", *limits.nproc_prefix(spec.max_processes), *command]
        outer_env = {"PATH": os.environ.get("PATH") or DEFAULT_PATH}
        if spec.network:
            problem = sandbox_net.network_problem()
            if problem:
                raise SandboxError(f"network is enabled for this session but {problem[0]}",
                                   hint=f"{problem[1]}; or start the session without network")
            slirp = shutil.which("slirp4netns") or "slirp4netns"
            argv = [sys.executable, "-m", "workbench.core.sandbox_net", "net-launch", slirp,
                    str(len(a.args)), "--", *argv]
            if os.environ.get("PYTHONPATH"):
                outer_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
            if spec.host_ports:
                outer_env[sandbox_loopback.PORTS_ENV] = ",".join(str(p) for p in spec.host_ports)
        procs = limits.session_cgroup(spec.process_group, spec.max_processes) if spec.process_group else None
        if procs is not None:
            argv = [*limits.join_cgroup_prefix(procs), *argv]
        return SandboxCommand(argv=argv, env=outer_env, pass_fds=tuple(a.fds), cwd=workdir)
    except BaseException:
        a.close()
        raise


def _build(a: BwrapArgs, spec: SandboxSpec, workdir: Path, *, new_session: bool, sized: bool = False) -> None:
    worktree = spec.worktree.resolve()
    repo = spec.repo.resolve()
    home = spec.home.resolve()
    common = spec.git_common_dir.resolve()
    gitdir = spec.worktree_gitdir.resolve()

    a.add(*base_flags(new_session=new_session))
    a.add(*BASE_MOUNTS)
    for d in PRIVATE_TMPFS:
        p = Path(d)
        if p.is_dir() and not p.is_symlink():
            a.add(*limits.tmpfs_args(d, spec.tmp_size_mb, sized))
    if spec.network:
        # slirp4netns serves DNS inside the namespace; the host's resolver may be on
        # loopback or a socket under /run, neither of which is reachable from here.
        a.add("--ro-bind-data", str(a.data_fd(f"nameserver {sandbox_net.SLIRP_DNS}\n".encode())),
              os.path.realpath("/etc/resolv.conf"))

    for b in spec.extra_ro_binds:
        src, dst = parse_bind(b, "extra_ro_binds")
        a.add("--ro-bind", str(src), str(dst))
    for b in spec.extra_rw_binds:
        src, dst = parse_bind(b, "extra_rw_binds")
        a.add("--bind", str(src), str(dst))

    # Protected (workbench state, other sessions) and secrets: shallow paths first so a
    # tmpfs never covers a deeper /dev/null bind made before it.
    # (the daemon's own dirs are in both lists: resolved once)
    protected = realpaths(dict.fromkeys(str(p) for p in (*workbench_dirs(), *spec.protected_paths)))
    hidden = [str(p) for p in expand_hidden(spec.hidden_paths)]
    for name in sorted({*protected, *hidden}, key=_depth_first):
        a.hide(name)

    # The main checkout, read-only, without its secrets.
    a.add("--ro-bind", str(repo), str(repo))
    if not is_within(common, repo):
        a.add("--ro-bind", str(common), str(common))
    repo_s = str(repo)
    rehide = [n for n in (*hidden, *protected) if n != repo_s and is_within_name(n, repo_s)]
    if spec.hide_dotenv:
        for found in find_dotenv(repo):
            rehide += [q for q in (str(found), os.path.realpath(found)) if q not in rehide]
    for name in rehide:
        a.hide(name)

    # The worktree and its private repository (.git) are the session's own: the host
    # never runs git in them (docs/security.md, "The host boundary"). Strict mode and
    # in-place sessions keep .git read-only.
    a.add("--bind", str(worktree), str(worktree))
    if (spec.mode == "strict" and not spec.helper) or worktree == repo:
        a.add("--ro-bind", str(gitdir), str(gitdir))
        if is_within(common, worktree) and common != gitdir:
            a.add("--ro-bind", str(common), str(common))
    a.add("--bind", str(home), str(home))
    a.seal_hidden()
    a.add("--chdir", str(workdir))

    a.add("--clearenv")
    for k, v in sandbox_env(spec).items():
        a.add("--setenv", k, v)
    if spec.env:
        # Through an fd, not argv: /proc/PID/cmdline is readable by every local user.
        blob = b"".join(
            b"--setenv\0" + k.encode() + b"\0" + v.encode() + b"\0" for k, v in spec.env.items()
        )
        a.add("--args", str(a.data_fd(blob)))
    a.add("--seccomp", str(_seccomp_fd(a)))


def _depth_first(p: str) -> tuple[int, str]:
    """Shallow paths first (as `Path.parts` counts them), so a tmpfs never covers a deeper
    bind made before it."""
    return (1 if p == "/" else p.count("/") + 1, p)


def _seccomp_fd(a: BwrapArgs) -> int:
    try:
        fd = seccomp.memfd()
    except seccomp.UnsupportedArch as e:
        raise SandboxError(str(e), hint="use sandbox 'off' on this machine") from None
    a.fds.append(fd)
    return fd

