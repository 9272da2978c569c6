"""From a session record to the sandboxed command that runs its processes."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from workbench import config as config_mod
from workbench import paths
from workbench.core.models import Session


@dataclass
class LaunchSpec:
    """What a command resolver (an agent profile) wants to run in a session's PTY."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # Extra paths the sandbox must show (credentials), and variables copied from the daemon.
    ro_binds: list[str] = field(default_factory=list)
    rw_binds: list[str] = field(default_factory=list)
    pass_env: list[str] = field(default_factory=list)
    network: bool | None = None
    # A workbench helper (session_side/), not the agent: may write the session's .git.
    helper: bool = False


class SessionTable(Protocol):
    """The sessions a sandbox hides from one another (the SessionManager)."""

    sessions: dict[str, Session]


TERM_ENV = {"TERM": "xterm-256color", "COLORTERM": "truecolor"}


@dataclass
class PlainCommand:
    argv: list[str]
    env: dict[str, str]
    pass_fds: tuple[int, ...] = field(default_factory=tuple)

    def close(self) -> None:
        pass


# (session id, worktree) -> (git common dir, worktree gitdir), prepared for the sandbox.
_PREPARED: dict[tuple[str, str], tuple[Path, Path]] = {}


def forget(session_id: str) -> None:
    for key in [k for k in _PREPARED if k[0] == session_id]:
        del _PREPARED[key]
    from workbench.core import limits

    limits.forget_cgroup(_process_group(session_id))


def _process_group(session_id: str) -> str:
    return f"{os.getuid()}-{session_id}"


# repo -> (the config files' stat signatures, the config they gave). Parsing and validating
# the TOML was ~10% of a tool call's preparation; a changed file is seen by its stat.
_CONFIGS: dict[str, tuple[tuple[tuple[int, ...] | None, ...], config_mod.Config]] = {}


def _signature(files: tuple[Path, ...]) -> tuple[tuple[int, ...] | None, ...] | None:
    """Stat signatures of `files` (None for a missing one); None when one changed within
    the last second, whose mtime could move again without changing (git's "racy" rule)."""
    out: list[tuple[int, ...] | None] = []
    recent = time.time_ns() - 1_000_000_000
    for f in files:
        try:
            st = os.stat(f)
        except OSError:
            out.append(None)
            continue
        if st.st_mtime_ns >= recent:
            return None
        out.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


def session_config(repo: str) -> config_mod.Config:
    """`config.load` for the session's repository, reused while its files are unchanged."""
    from workbench.core import trust

    root = Path(repo) if Path(repo).is_dir() else None
    files = (paths.config_file(), trust.store_file(), *((root / trust.FILE_NAME,) if root else ()))
    sig = _signature(files)
    hit = _CONFIGS.get(repo)
    if sig is not None and hit is not None and hit[0] == sig:
        return hit[1]
    cfg = config_mod.load(root)
    if sig is not None:
        if len(_CONFIGS) > 256:
            _CONFIGS.clear()
        _CONFIGS[repo] = (sig, cfg)
    return cfg


def session_home(s: Session) -> Path:
    home = paths.data_dir() / "homes" / s.id
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home


def session_env(s: Session) -> dict[str, str]:
    return {**TERM_ENV, "WORKBENCH_SESSION": s.id, "WORKBENCH_SESSION_NAME": s.name}


def prepare(s: Session) -> tuple[Path, Path]:
    """The session's git common dir and git dir, and its home made. git subprocesses: once
    per session and daemon, not on every tool call (the daemon calls this in a worker
    thread when it creates a session). Only the user's repository is asked (never the
    session's own, which it can write)."""
    from workbench.core import sandbox_paths, session_repo

    key = (s.id, s.worktree)
    prepared = _PREPARED.get(key)
    home = session_home(s)
    if prepared is None or not home.exists():
        common = session_repo.common_dir(Path(s.repo))
        gitdir = common if s.in_place else Path(s.worktree) / ".git"
        sandbox_paths.prepare_home(home, Path(s.repo))
        if len(_PREPARED) > 4096:
            _PREPARED.clear()
        _PREPARED[key] = prepared = (common, gitdir)
    return prepared


def sandbox_command(
    mgr: SessionTable, s: Session, argv: list[str], spec_in: LaunchSpec | None = None, *, new_session: bool = False
) -> Any:
    """The command for one spawn (a `wrap()` result is good for exactly one)."""
    env_extra = {**session_env(s), **(spec_in.env if spec_in else {})}
    for name in spec_in.pass_env if spec_in else ():
        if name in os.environ:
            env_extra[name] = os.environ[name]
    if s.sandbox == "off":
        env = {**os.environ, **env_extra}
        env.pop("WORKBENCH_DAEMON", None)
        return PlainCommand(list(argv), env)
    from workbench.core import bwrap_argv, sandbox_policy

    cfg = session_config(s.repo)
    # Other sessions' worktrees and homes (the sandbox hides a missing path by leaving it).
    homes = str(paths.data_dir() / "homes")
    others: list[str] = []
    for o in list(mgr.sessions.values()):  # also called in worker threads (snapshots)
        if o.id != s.id:
            others += [os.path.join(homes, o.id)] if o.in_place else [o.worktree, os.path.join(homes, o.id)]
    home = session_home(s)
    common, gitdir = prepare(s)
    spec = sandbox_policy.SandboxSpec(
        mode=s.sandbox,  # type: ignore[arg-type]
        worktree=Path(s.worktree),
        repo=Path(s.repo),
        git_common_dir=common,
        worktree_gitdir=gitdir,
        branch=s.branch,
        home=home,
        network=s.network if spec_in is None or spec_in.network is None else (s.network or spec_in.network),
        env=env_extra,
        env_allowlist=tuple(cfg.sandbox.env_allowlist),
        hidden_paths=tuple(cfg.sandbox.hidden_paths),
        hide_dotenv=cfg.sandbox.hide_dotenv,
        extra_ro_binds=(*cfg.sandbox.extra_ro_binds, *(spec_in.ro_binds if spec_in else ())),
        extra_rw_binds=(*cfg.sandbox.extra_rw_binds, *(spec_in.rw_binds if spec_in else ())),
        host_ports=tuple(cfg.sandbox.host_ports),
        protected_paths=(*others, paths.runtime_dir(), paths.data_dir(), paths.state_dir(), paths.config_dir()),
        helper=spec_in.helper if spec_in else False,
        tmp_size_mb=cfg.sandbox.tmp_size_mb,
        max_processes=cfg.sandbox.max_processes,
        process_group=_process_group(s.id),
    )
    return bwrap_argv.wrap(spec, list(argv), cwd=Path(s.worktree), new_session=new_session)
