"""bubblewrap policy: a session's sandbox settings -> the exact bwrap argv.

Modes:
- ``workspace`` (default): the system is read-only, /tmp and $HOME are private, the
  session's worktree is writable, and of the repo's .git only what a commit on the
  session's own branch needs is writable (objects, the session's ref directory and
  reflogs, the worktree's own gitdir minus commondir/gitdir/config.worktree).
- ``strict``: as workspace, but the whole .git is read-only; the workbench commits from
  outside.
- ``off``: no sandbox at all (the UI shows it in red).

Mount order matters because later binds win: the read-only root first, then private
tmpfs over /tmp, /run and /var/tmp, then the user's extra binds, then protected paths
(workbench state, other sessions) and secrets hidden with tmpfs or /dev/null, and only
then the few paths the session needs, re-exposed on top. docs/security.md explains the
design and its known gaps.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import fnmatch
import glob
import json
import os
import pwd
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from workbench import paths
from workbench.core import limits, safe_fs, seccomp
from workbench.errors import SandboxError

Mode = Literal["workspace", "strict", "off"]


class SandboxSettings(Protocol):
    """`[sandbox]` of config.toml (`workbench.config.SandboxSettings`; config imports core)."""

    @property
    def env_allowlist(self) -> Sequence[str]: ...
    @property
    def hidden_paths(self) -> Sequence[str]: ...
    @property
    def hide_dotenv(self) -> bool: ...
    @property
    def extra_ro_binds(self) -> Sequence[str]: ...
    @property
    def extra_rw_binds(self) -> Sequence[str]: ...
    @property
    def tmp_size_mb(self) -> int: ...
    @property
    def max_processes(self) -> int: ...
MODES: tuple[Mode, ...] = ("workspace", "strict", "off")

DEFAULT_ENV_ALLOWLIST: tuple[str, ...] = (
    "PATH", "TERM", "LANG", "LC_ALL", "LC_CTYPE", "COLORTERM", "TZ",
)
# Passed when set, whatever the allowlist says: identity, not secrets, and git needs it.
ALWAYS_PASS_ENV: tuple[str, ...] = (
    "USER", "LOGNAME",
    "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
)
DEFAULT_HIDDEN_PATHS: tuple[str, ...] = (
    "~/.ssh", "~/.aws", "~/.config/gcloud", "~/.gnupg", "~/.netrc", "~/.docker", "~/.kube",
    "~/.azure", "~/.password-store",
)
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
# Host directories replaced by an empty private tmpfs: they hold most host Unix sockets
# (X11, tmux, dbus, docker, systemd, ssh-agent, the workbench daemon), and a read-only
# bind does not stop connect() on a socket.
PRIVATE_TMPFS: tuple[str, ...] = ("/tmp", "/var/tmp", "/run")
# Config every sandboxed git command sees (as `-c`, above any config file): no automatic
# gc or maintenance, which would repack or prune objects shared with the main checkout.
SESSION_GIT_CONFIG: tuple[tuple[str, str], ...] = (
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
)
# Extra branches a session may create next to its own: `wb/<slug>--<name>`. Slugs never
# contain "--" (slugify collapses dashes), so this prefix is unambiguous.
EXTRA_BRANCH_SEP = "--"
_DOTENV_SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".mypy_cache"}
_DOTENV_MAX_DEPTH = 3
_DOTENV_MAX_DIRS = 2000
SLIRP_TAP = "tap0"
SLIRP_DNS = "10.0.2.3"
NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1), linux/nsfs.h


@dataclass(frozen=True)
class SandboxSpec:
    mode: Mode
    worktree: Path
    repo: Path
    git_common_dir: Path
    worktree_gitdir: Path
    branch: str
    home: Path
    network: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    env_allowlist: Sequence[str] = DEFAULT_ENV_ALLOWLIST
    hidden_paths: Sequence[str] = DEFAULT_HIDDEN_PATHS
    hide_dotenv: bool = True
    extra_ro_binds: Sequence[str] = ()
    extra_rw_binds: Sequence[str] = ()
    protected_paths: Sequence[Path] = ()
    # Workbench's own helpers (session_side/) write the session's .git even in strict
    # mode: they run our code, and strict only keeps the agent from committing.
    helper: bool = False
    # Caps (core/limits.py); 0 = none. `process_group` names the pids cgroup shared by
    # every spawn of one session; without it only RLIMIT_NPROC applies.
    tmp_size_mb: int = limits.DEFAULT_TMP_SIZE_MB
    max_processes: int = limits.DEFAULT_MAX_PROCESSES
    process_group: str | None = None

    @classmethod
    def from_settings(cls, settings: SandboxSettings, **kw: object) -> SandboxSpec:
        """A spec whose configurable lists come from `[sandbox]` in config.toml."""
        base: dict[str, object] = {
            "env_allowlist": tuple(settings.env_allowlist),
            "hidden_paths": tuple(settings.hidden_paths),
            "hide_dotenv": settings.hide_dotenv,
            "extra_ro_binds": tuple(settings.extra_ro_binds),
            "extra_rw_binds": tuple(settings.extra_rw_binds),
            "tmp_size_mb": settings.tmp_size_mb,
            "max_processes": settings.max_processes,
        }
        base.update(kw)
        return cls(**base)  # type: ignore[arg-type]


@dataclass
class SandboxCommand:
    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...] = ()
    cwd: Path | None = None

    def close(self) -> None:
        """Close the fds handed to bwrap; call once the process has been spawned."""
        for fd in self.pass_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.pass_fds = ()

    def __enter__(self) -> SandboxCommand:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    bwrap: str | None
    version: str | None
    reason: str | None
    fix: str | None
    as_root: bool
    seccomp_ok: bool
    slirp4netns: str | None = None

    @property
    def warnings(self) -> tuple[str, ...]:
        out = []
        if self.as_root:
            out.append(
                "running as root: inside the sandbox uid 0 is the host's root (without "
                "capabilities), so read-only mounts are all that protects root-owned files; "
                "run workbench as an ordinary user"
            )
        net = network_problem()
        if self.ok and net:
            out.append(f"sessions with network enabled cannot start: {net[0]} ({net[1]})")
        return tuple(out)

    def describe(self) -> str:
        """One paragraph for `workbench doctor` and the daemon log."""
        if self.ok:
            head = f"sandbox: ok ({self.bwrap}, bubblewrap {self.version}, seccomp on)"
        else:
            head = f"sandbox: UNAVAILABLE: {self.reason}\n  fix: {self.fix}"
        return "\n".join([head, *(f"  warning: {w}" for w in self.warnings)])


# ---------------------------------------------------------------------------- helpers


def _real_homes() -> list[Path]:
    """$HOME and the passwd home: tools differ in which they use to find ~/.ssh."""
    homes: list[Path] = []
    env_home = os.environ.get("HOME")
    if env_home:
        homes.append(Path(env_home))
    with contextlib.suppress(KeyError):
        homes.append(Path(pwd.getpwuid(os.getuid()).pw_dir))
    out: list[Path] = []
    for h in homes:
        if h not in out:
            out.append(h)
    return out


def expand_hidden(patterns: Iterable[str]) -> list[Path]:
    """Hidden-path patterns -> existing absolute paths (~ is the real user's home; globs ok)."""
    found: list[Path] = []
    for pat in patterns:
        if pat.startswith("~"):
            rest = pat[1:].lstrip("/")
            candidates = [str(h / rest) if rest else str(h) for h in _real_homes()]
        else:
            candidates = [pat]
        for cand in candidates:
            matches = glob.glob(cand) if glob.has_magic(cand) else [cand]
            for m in matches:
                p = Path(m)
                if p.exists() or p.is_symlink():
                    for q in (p.absolute(), p.resolve()):
                        if q not in found:
                            found.append(q)
    return found


def _find_dotenv(root: Path) -> list[Path]:
    """`.env*` files and dirs in `root`, a few levels deep (bounded: repos can be huge)."""
    out: list[Path] = []
    queue: list[tuple[Path, int]] = [(root, 0)]
    seen = 0
    while queue and seen < _DOTENV_MAX_DIRS:
        d, depth = queue.pop(0)
        seen += 1
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if fnmatch.fnmatch(e.name, ".env*"):
                out.append(Path(e.path))
                continue
            if depth < _DOTENV_MAX_DEPTH and e.name not in _DOTENV_SKIP_DIRS:
                with contextlib.suppress(OSError):
                    if e.is_dir(follow_symlinks=False):
                        queue.append((Path(e.path), depth + 1))
    return out


def _workbench_dirs() -> list[Path]:
    """Where workbench and the daemon keep state: never visible inside a session."""
    dirs = [paths.runtime_dir(), paths.data_dir(), paths.state_dir(), paths.config_dir(),
            paths.cache_dir()]
    xdg_rt = os.environ.get("XDG_RUNTIME_DIR")
    if xdg_rt:
        dirs.append(Path(xdg_rt))
    return dirs


def _is_within(p: Path, parent: Path) -> bool:
    return p == parent or p.is_relative_to(parent)


def _parse_bind(spec: str, what: str) -> tuple[Path, Path]:
    src_s, _, dst_s = spec.partition(":")
    src = Path(os.path.expanduser(src_s))
    dst = Path(os.path.expanduser(dst_s)) if dst_s else src
    if not src.is_absolute() or not dst.is_absolute():
        raise SandboxError(
            f"sandbox.{what}: {spec!r} is not an absolute path",
            hint="write SRC or SRC:DEST with absolute paths (~ allowed)",
        )
    if not src.exists():
        raise SandboxError(
            f"sandbox.{what}: {src} does not exist", hint="create it or remove it from the list"
        )
    return src.resolve(), dst


def prepare_home(home: Path, repo: Path | None = None) -> None:
    """Create a session's private $HOME with a .gitconfig carrying the user's identity.

    The home is session-writable: the file goes through `safe_fs`, which replaces a
    planted symlink instead of writing through it, and keeps a regular file the session
    edited.
    """
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    cfg = home / ".gitconfig"
    if cfg.exists() and not cfg.is_symlink():
        return
    lines = []
    ident = {}
    for key in ("user.name", "user.email"):
        cmd = ["git", "config", "--get", key]
        proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            ident[key.split(".")[1]] = proc.stdout.strip()
    if ident:
        lines.append("[user]")
        lines += [f"\t{k} = {v}" for k, v in ident.items()]
    lines += ["[gc]", "\tauto = 0", "[maintenance]", "\tauto = false"]
    safe_fs.write_text(home, ".gitconfig", "\n".join(lines) + "\n", mode=0o644)


# ----------------------------------------------------------------------------- policy


class _Args:
    """bwrap arguments plus the fds they refer to."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self.fds: list[int] = []
        self.hidden_dirs: list[str] = []

    def add(self, *a: str) -> None:
        self.args.extend(a)

    def hide(self, p: Path) -> None:
        if p.is_symlink():
            return  # bwrap would mount over the target; callers pass the target too
        if p.is_dir():
            self.add("--tmpfs", str(p))
            self.hidden_dirs.append(str(p))
        elif p.exists():
            self.add("--ro-bind", "/dev/null", str(p))

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


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


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


def sandbox_env(spec: SandboxSpec) -> dict[str, str]:
    """The environment inside the sandbox, without spec.env (which may hold secrets)."""
    env: dict[str, str] = {}
    for name in (*spec.env_allowlist, *ALWAYS_PASS_ENV):
        if name in os.environ and name not in ("HOME", "TMPDIR"):
            env[name] = os.environ[name]
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOME"] = str(spec.home.resolve())
    env["TMPDIR"] = "/tmp"
    env["WORKBENCH_SANDBOX"] = spec.mode
    env.update(_git_config_env())
    return env


def _git_config_env() -> dict[str, str]:
    env = {"GIT_CONFIG_COUNT": str(len(SESSION_GIT_CONFIG))}
    for i, (k, v) in enumerate(SESSION_GIT_CONFIG):
        env[f"GIT_CONFIG_KEY_{i}"] = k
        env[f"GIT_CONFIG_VALUE_{i}"] = v
    return env


def network_problem() -> tuple[str, str] | None:
    """Why a session with network cannot start here (reason, fix), or None."""
    if not shutil.which("slirp4netns"):
        return ("slirp4netns is not installed",
                "apt install slirp4netns (or dnf install slirp4netns)")
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        return ("/dev/net/tun is not usable by this user (slirp4netns needs it)",
                "sudo chmod 0666 /dev/net/tun (udev sets this mode on standard systems)")
    return None


def _check_spec(spec: SandboxSpec) -> None:
    if spec.mode not in MODES:
        raise SandboxError(
            f"unknown sandbox mode {spec.mode!r}", hint=f"use one of: {', '.join(MODES)}"
        )
    for what, p in (("worktree", spec.worktree), ("home", spec.home)):
        if not p.is_dir():
            raise SandboxError(f"sandbox {what} {p} does not exist or is not a directory")
    if spec.mode == "off":
        return
    if spec.worktree.resolve() == spec.repo.resolve() and spec.mode == "workspace":
        raise SandboxError(
            "a session in the main checkout cannot use sandbox mode 'workspace' (its .git "
            "would have to be writable)",
            hint="use sandbox 'strict' (the workbench commits from outside) or run it in a worktree",
        )
    dotgit = spec.worktree / ".git"
    if not dotgit.exists():
        raise SandboxError(f"{spec.worktree} is not a git worktree (no .git)")
    if spec.worktree.resolve() != spec.repo.resolve() and not (dotgit.is_dir() and not dotgit.is_symlink()):
        raise SandboxError(
            f"{spec.worktree} has no private repository (.git is not a directory)",
            hint="sessions made by workbench 0.1 cannot be sandboxed; remove it and start it again",
        )


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
    _check_spec(spec)
    workdir = (cwd or spec.worktree).resolve()
    if spec.mode == "off":
        env = dict(os.environ)
        env.update(spec.env)
        env.update(_git_config_env())
        env["WORKBENCH_SANDBOX"] = "off"
        return SandboxCommand(argv=list(command), env=env, pass_fds=(), cwd=workdir)

    bwrap = find_bwrap()
    if not bwrap:
        reason, fix = _missing_bwrap()
        raise SandboxError(reason, hint=fix)
    a = _Args()
    try:
        _build(a, spec, workdir, new_session=new_session, sized=limits.tmpfs_size_supported(bwrap))
        argv = [bwrap, *a.args, "--", *limits.nproc_prefix(spec.max_processes), *command]
        outer_env = {"PATH": os.environ.get("PATH") or DEFAULT_PATH}
        if spec.network:
            problem = network_problem()
            if problem:
                raise SandboxError(f"network is enabled for this session but {problem[0]}",
                                   hint=f"{problem[1]}; or start the session without network")
            slirp = shutil.which("slirp4netns") or "slirp4netns"
            argv = [sys.executable, "-m", "workbench.core.sandbox", "net-launch", slirp,
                    str(len(a.args)), "--", *argv]
            if os.environ.get("PYTHONPATH"):
                outer_env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        procs = limits.session_cgroup(spec.process_group, spec.max_processes) if spec.process_group else None
        if procs is not None:
            argv = [*limits.join_cgroup_prefix(procs), *argv]
        return SandboxCommand(argv=argv, env=outer_env, pass_fds=tuple(a.fds), cwd=workdir)
    except BaseException:
        a.close()
        raise


def _build(a: _Args, spec: SandboxSpec, workdir: Path, *, new_session: bool, sized: bool = False) -> None:
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
        a.add("--ro-bind-data", str(a.data_fd(f"nameserver {SLIRP_DNS}\n".encode())),
              os.path.realpath("/etc/resolv.conf"))

    for b in spec.extra_ro_binds:
        src, dst = _parse_bind(b, "extra_ro_binds")
        a.add("--ro-bind", str(src), str(dst))
    for b in spec.extra_rw_binds:
        src, dst = _parse_bind(b, "extra_rw_binds")
        a.add("--bind", str(src), str(dst))

    # Protected (workbench state, other sessions) and secrets: shallow paths first so a
    # tmpfs never covers a deeper /dev/null bind made before it.
    protected = [p.resolve() for p in (*_workbench_dirs(), *spec.protected_paths)]
    hidden = expand_hidden(spec.hidden_paths)
    for p in sorted({*protected, *hidden}, key=lambda q: (len(q.parts), str(q))):
        a.hide(p)

    # The main checkout, read-only, without its secrets.
    a.add("--ro-bind", str(repo), str(repo))
    if not _is_within(common, repo):
        a.add("--ro-bind", str(common), str(common))
    rehide = [p for p in (*hidden, *protected) if _is_within(p, repo) and p != repo]
    if spec.hide_dotenv:
        for p in _find_dotenv(repo):
            rehide += [q for q in (p, p.resolve()) if q not in rehide]
    for p in rehide:
        a.hide(p)

    # The worktree and its private repository (.git) are the session's own: the host
    # never runs git in them (docs/security.md, "The host boundary"). Strict mode and
    # in-place sessions keep .git read-only.
    a.add("--bind", str(worktree), str(worktree))
    if (spec.mode == "strict" and not spec.helper) or worktree == repo:
        a.add("--ro-bind", str(gitdir), str(gitdir))
        if _is_within(common, worktree) and common != gitdir:
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


def _seccomp_fd(a: _Args) -> int:
    try:
        fd = seccomp.memfd()
    except seccomp.UnsupportedArch as e:
        raise SandboxError(str(e), hint="use sandbox 'off' on this machine") from None
    a.fds.append(fd)
    return fd


# ------------------------------------------------------------------------------ probe

_probe_cache: dict[tuple[str | None, int], ProbeResult] = {}


def _missing_bwrap() -> tuple[str, str]:
    return (
        "bubblewrap (bwrap) is not installed or not on PATH",
        "install it: apt install bubblewrap (Debian/Ubuntu), dnf install bubblewrap "
        "(Fedora), pacman -S bubblewrap (Arch); or choose sandbox \"off\" explicitly",
    )


def _read_sysctl(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _diagnose(stderr: str) -> tuple[str, str]:
    """Why bwrap failed, and how to fix it, from its stderr and the kernel's knobs."""
    msg = stderr.strip().splitlines()[-1] if stderr.strip() else "no error output"
    if "disable-userns" in stderr and ("Unknown option" in stderr or "unrecognized" in stderr):
        return (
            f"bubblewrap is too old: it has no --disable-userns ({msg})",
            "install bubblewrap 0.8 or newer (Debian 12+, Ubuntu 23.10+, Fedora 38+)",
        )
    if _read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == "0" and os.geteuid() != 0:
        return (
            f"unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0): {msg}",
            "sudo sysctl -w kernel.unprivileged_userns_clone=1, and persist it in "
            "/etc/sysctl.d/99-userns.conf",
        )
    if _read_sysctl("/proc/sys/user/max_user_namespaces") == "0":
        return (
            f"user namespaces are disabled (user.max_user_namespaces=0): {msg}",
            "sudo sysctl -w user.max_user_namespaces=15000, and persist it in "
            "/etc/sysctl.d/99-userns.conf",
        )
    if _read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        return (
            "AppArmor restricts unprivileged user namespaces "
            f"(kernel.apparmor_restrict_unprivileged_userns=1): {msg}",
            "install an AppArmor profile that allows userns for bwrap (see docs/security.md, "
            "'AppArmor'), or sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
        )
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return (
            f"bwrap cannot create namespaces inside this container: {msg}",
            "run the container with --security-opt seccomp=unconfined --security-opt "
            "apparmor=unconfined (or --privileged), or choose sandbox \"off\" explicitly",
        )
    return (
        f"bwrap failed: {msg}",
        "run `bwrap --unshare-all --unshare-user --ro-bind / / true` to see the error; "
        "see docs/security.md, 'When bwrap cannot run'",
    )


def _probe_argv(bwrap: str, true: str, seccomp_fd: int | None) -> list[str]:
    argv = [bwrap, *base_flags(), *BASE_MOUNTS, "--tmpfs", "/tmp", "--clearenv"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return [*argv, "--", true]


def _run_probe(argv: list[str], fds: tuple[int, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=20, pass_fds=fds, check=False,
        env={"PATH": os.environ.get("PATH") or DEFAULT_PATH},
    )


def probe(force: bool = False) -> ProbeResult:
    """Whether bubblewrap can run here with our flags: really runs `bwrap ... true`.

    Cached per bwrap path and euid; `force` re-probes.
    """
    bwrap = find_bwrap()
    key = (bwrap, os.geteuid())
    if not force and key in _probe_cache:
        return _probe_cache[key]
    as_root = os.geteuid() == 0
    slirp = shutil.which("slirp4netns")
    if not bwrap:
        reason, fix = _missing_bwrap()
        res = ProbeResult(False, None, None, reason, fix, as_root, False, slirp)
        _probe_cache[key] = res
        return res
    version = None
    try:
        v = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10,
                           check=False)
        version = v.stdout.strip().rpartition(" ")[2] or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    true = shutil.which("true") or "/bin/true"
    res = _probe_with(bwrap, version, true, as_root, slirp)
    _probe_cache[key] = res
    return res


def _probe_with(
    bwrap: str, version: str | None, true: str, as_root: bool, slirp: str | None
) -> ProbeResult:
    try:
        plain = _run_probe(_probe_argv(bwrap, true, None), ())
    except (OSError, subprocess.TimeoutExpired) as e:
        return ProbeResult(False, bwrap, version, f"cannot run {bwrap}: {e}",
                           "check that bwrap is executable", as_root, False, slirp)
    if plain.returncode != 0:
        reason, fix = _diagnose(plain.stderr)
        return ProbeResult(False, bwrap, version, reason, fix, as_root, False, slirp)
    try:
        fd = seccomp.memfd()
    except seccomp.UnsupportedArch as e:
        return ProbeResult(False, bwrap, version, str(e), "use sandbox \"off\" on this machine",
                           as_root, False, slirp)
    try:
        filtered = _run_probe(_probe_argv(bwrap, true, fd), (fd,))
    except (OSError, subprocess.TimeoutExpired) as e:
        filtered = subprocess.CompletedProcess([], 1, "", str(e))
    finally:
        os.close(fd)
    if filtered.returncode != 0:
        msg = filtered.stderr.strip() or "no error output"
        return ProbeResult(
            False, bwrap, version, f"bwrap runs but cannot load the seccomp filter: {msg}",
            "use a kernel with CONFIG_SECCOMP_FILTER (every mainstream distribution has it)",
            as_root, False, slirp,
        )
    return ProbeResult(True, bwrap, version, None, None, as_root, True, slirp)


def require(mode: str) -> None:
    """Refuse to start a sandboxed session where bwrap cannot run; `off` always passes."""
    if mode == "off":
        return
    if mode not in MODES:
        raise SandboxError(f"unknown sandbox mode {mode!r}", hint=f"use one of: {', '.join(MODES)}")
    res = probe()
    if not res.ok:
        raise SandboxError(
            f"cannot start a session in sandbox mode {mode!r}: {res.reason}",
            hint=f"{res.fix}; or choose sandbox \"off\" explicitly for this session "
            "(it then runs unconfined)",
        )


# ------------------------------------------------------------------- network launcher


# Runs inside the sandbox before the command: says "set up" (bwrap has configured lo by
# then), waits for "network ready", closes both fds and becomes the command.
# `read` fails on EOF without a full line, so a helper that dies never lets it through.
_NET_WAITER = (
    'printf x >&{ready}; exec {ready}>&-; read -r _ <&{go} || exit 111; exec {go}<&-; exec "$@"'
)


def _net_launch(slirp: str, n_opts: int, bwrap_argv: list[str]) -> int:
    """Exec bwrap in a fresh netns served by slirp4netns without host loopback.

    `bwrap_argv` is bwrap, `n_opts` options, "--" and the command. This process becomes
    bwrap (keeping its pid, terminal and exit status for the caller). A detached helper
    waits until the sandbox is set up (bwrap configures lo first; slirp4netns racing it
    makes bwrap fail), attaches slirp4netns and only then lets the command start.
    """
    info_r, info_w = os.pipe()
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    exit_r, exit_w = os.pipe()
    bwrap_pid = os.getpid()
    helper = os.fork()
    if helper == 0:
        code = 1
        try:
            if os.fork() != 0:
                os._exit(0)
            for fd in (info_w, ready_w, go_r, exit_w):
                os.close(fd)
            code = _net_helper(slirp, bwrap_pid, info_r, ready_r, go_w, exit_r)
        except BaseException as e:  # the helper must never return into the caller's code
            sys.stderr.write(f"workbench: network setup failed: {e}\r\n")
            code = 1
        if code != 0:
            with contextlib.suppress(OSError):
                os.kill(bwrap_pid, 9)
        os._exit(code)
    os.waitpid(helper, 0)
    for fd in (info_r, ready_r, go_w, exit_r):
        os.close(fd)
    for fd in (info_w, ready_w, go_r, exit_w):
        os.set_inheritable(fd, True)
    opts = bwrap_argv[1 : 1 + n_opts]
    command = bwrap_argv[2 + n_opts :]
    waiter = _NET_WAITER.format(ready=ready_w, go=go_r)
    argv = [bwrap_argv[0], "--info-fd", str(info_w), *opts, "--",
            "/bin/sh", "-c", waiter, "sh", *command]
    os.execv(argv[0], argv)
    return 127  # not reached


def _read_all(fd: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("bwrap did not report its child pid")
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return buf
        buf += chunk
        with contextlib.suppress(ValueError):
            json.loads(buf)
            return buf


def _net_helper(
    slirp: str, bwrap_pid: int, info_r: int, ready_r: int, go_w: int, exit_r: int
) -> int:
    info = json.loads(_read_all(info_r, 20))
    child = int(info["child-pid"])
    r, _, _ = select.select([ready_r], [], [], 20)
    if not r or os.read(ready_r, 1) != b"x":
        raise RuntimeError("the sandbox did not start")
    # slirp4netns must join the user namespace that *owns* the network namespace. With
    # --disable-userns the command runs in a nested one, so /proc/PID/ns/user would
    # name the wrong one: ask the kernel for the owner instead.
    netfd = os.open(f"/proc/{child}/ns/net", os.O_RDONLY)
    userfd = fcntl.ioctl(netfd, NS_GET_USERNS)
    slirp_ready_r, slirp_ready_w = os.pipe()
    argv = [slirp, "--configure", "--mtu=65520", "--disable-host-loopback",
            f"--exit-fd={exit_r}", f"--ready-fd={slirp_ready_w}", "--netns-type=path",
            f"--userns-path=/proc/self/fd/{userfd}", f"/proc/self/fd/{netfd}", SLIRP_TAP]
    proc = subprocess.Popen(
        argv, pass_fds=(exit_r, slirp_ready_w, netfd, userfd), stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    for fd in (slirp_ready_w, exit_r, netfd, userfd):
        os.close(fd)
    r, _, _ = select.select([slirp_ready_r], [], [], 20)
    ok = bool(r) and os.read(slirp_ready_r, 1) == b"1"
    if not ok:
        # Kill the sandbox before our exit closes the go fd: the waiter would take that
        # EOF as the go-ahead and start the command (without network, but still).
        with contextlib.suppress(OSError):
            os.kill(child, 9)
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        err = proc.stderr.read() if proc.stderr else b""
        sys.stderr.write(f"workbench: slirp4netns failed: {err.decode(errors='replace')}\r\n")
        return 1
    if proc.stderr:
        proc.stderr.close()
    try:
        os.write(go_w, b"go\n")
    except OSError as e:
        if e.errno != errno.EPIPE:
            raise
    return 0


def _main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[0] == "net-launch" and argv[3] == "--":
        return _net_launch(argv[1], int(argv[2]), argv[4:])
    sys.stderr.write(
        "usage: python -m workbench.core.sandbox net-launch SLIRP4NETNS N_OPTS -- BWRAP...\n"
    )
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
