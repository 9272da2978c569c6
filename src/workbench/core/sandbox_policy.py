"""Sandbox policy as data: the modes, a session's sandbox spec, and the environment it gets.

Modes:
- ``workspace`` (default): the system is read-only, /tmp and $HOME are private, the
  session's worktree is writable, and of the repo's .git only what a commit on the
  session's own branch needs is writable (objects, the session's ref directory and
  reflogs, the worktree's own gitdir minus commondir/gitdir/config.worktree).
- ``strict``: as workspace, but the whole .git is read-only; the workbench commits from
  outside.
- ``off``: no sandbox at all (the UI shows it in red).

`bwrap_argv.wrap` turns a `SandboxSpec` into the command to spawn; docs/security.md
explains the design and its known gaps.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from workbench.core import limits
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
    def host_ports(self) -> Sequence[int]: ...
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
    # Host loopback ports bridged into a sandbox with network (core/sandbox_loopback.py).
    host_ports: Sequence[int] = ()
    protected_paths: Sequence[Path | str] = ()
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
            "host_ports": tuple(settings.host_ports),
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
    env.update(git_config_env())
    return env


def git_config_env() -> dict[str, str]:
    """SESSION_GIT_CONFIG as GIT_CONFIG_* variables: every git in the session sees it."""
    env = {"GIT_CONFIG_COUNT": str(len(SESSION_GIT_CONFIG))}
    for i, (k, v) in enumerate(SESSION_GIT_CONFIG):
        env[f"GIT_CONFIG_KEY_{i}"] = k
        env[f"GIT_CONFIG_VALUE_{i}"] = v
    return env


def check_spec(spec: SandboxSpec) -> None:
    """Refuse a spec that cannot be sandboxed as asked, with the reason and a fix."""
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

