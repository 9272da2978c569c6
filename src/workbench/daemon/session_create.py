"""A new session: the request (`new`, attempts, the demo), its modes checked against the
repo's config, and the session's record and worktree.

The SessionManager (sessions.py) reserves the name, resolves the agent through its
extensions, checks that the sandbox can run, and registers and starts what
`build_session` returns; nothing here knows of runtimes or extensions.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
import shutil
from dataclasses import dataclass, field
from typing import Any

from workbench import paths
from workbench.config import Config
from workbench.core import session_repo
from workbench.core import worktree as wt
from workbench.core.models import Session
from workbench.core.store import Store
from workbench.errors import UsageError

SANDBOX_MODES = ("workspace", "strict", "off")
APPROVAL_MODES = ("suggest", "auto-edit", "full-auto")


@dataclass
class CreateRequest:
    """What `new` asks for; a field left None is the repo's config's to decide."""

    repo: str
    agent: str | None = None
    name: str | None = None
    base: str | None = None
    sandbox: str | None = None
    network: bool | None = None
    approval: str | None = None
    prompt: str = ""
    in_place: bool | None = None
    cols: int | None = None
    rows: int | None = None
    provider: str | None = None
    # One-off provider settings of a built-in agent session (agent_ext.py stores them).
    model: str | None = None
    base_url: str | None = None
    wire_api: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_shell() -> str:
    shell = os.environ.get("SHELL", "")
    if shell and os.path.isabs(shell) and os.access(shell, os.X_OK):
        return shell
    found = shutil.which("bash") or shutil.which("sh")
    if not found:
        raise UsageError("no shell found: $SHELL is unset or missing and bash is not installed")
    return found


def resolve_command(agent: str) -> list[str]:
    """The argv for a PTY agent: `shell`, or a command line given by the user."""
    if agent == "shell":
        return [resolve_shell(), "-i"] if resolve_shell().endswith("bash") else [resolve_shell()]
    try:
        argv = shlex.split(agent)
    except ValueError as e:
        raise UsageError(f"cannot parse --agent command {agent!r}: {e}") from None
    if not argv:
        raise UsageError("--agent command is empty")
    exe = argv[0]
    if os.sep in exe:
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            raise UsageError(f"agent command not found or not executable: {exe}")
    elif shutil.which(exe) is None:
        raise UsageError(f"agent command not found on PATH: {exe}")
    return argv


def check_modes(req: CreateRequest, cfg: Config) -> tuple[str, str]:
    """The session's sandbox and approval modes: the request's, else the config's."""
    sandbox = req.sandbox or cfg.session.sandbox
    if sandbox not in SANDBOX_MODES:
        raise UsageError(f"unknown sandbox mode {sandbox!r} (workspace, strict or off)")
    approval = req.approval or cfg.session.approval
    if approval not in APPROVAL_MODES:
        raise UsageError(f"unknown approval mode {approval!r} (suggest, auto-edit or full-auto)")
    return sandbox, approval


async def build_session(
    store: Store, req: CreateRequest, info: wt.RepoInfo, cfg: Config, *, agent: str, name: str, sandbox: str,
    approval: str, command: list[str], repo_lock: asyncio.Lock,
) -> tuple[Session, list[str]]:
    """The session's worktree (none in place), files copied in and its stored record, with
    warnings for the user; on a failure the worktree is removed again. `repo_lock` keeps
    git's worktree bookkeeping of one repository to one change at a time."""
    warnings: list[str] = []
    base_commit, base_ref = await asyncio.to_thread(wt.resolve_base, info.root, req.base)
    if info.head_branch is None and req.base is None:
        warnings.append(f"HEAD is detached; the session starts from commit {base_commit[:12]}")
    in_place = cfg.worktree.in_place if req.in_place is None else req.in_place
    if in_place and sandbox == "workspace":
        if req.sandbox == "workspace":
            raise UsageError(
                "an in-place session cannot use the workspace sandbox: it would need a writable .git",
                hint="use --sandbox strict (the workbench commits for it) or --sandbox off",
            )
        sandbox = "strict"
        warnings.append("in-place session: using the strict sandbox (.git read-only)")
    sid = secrets.token_hex(4)
    if in_place:
        if req.base is not None:
            raise UsageError("--base cannot be used with an in-place session (it runs in the main checkout)")
        path, branch = info.root, info.head_branch or base_commit
    else:
        if info.dirty:
            warnings.append(
                f"the main checkout has {len(info.dirty)} uncommitted change(s); "
                f"they are not in the session (it starts from {base_ref})"
            )
        branch = "wb/" + wt.slugify(name)
        path = paths.worktrees_dir() / f"{wt.slugify(name)}-{sid}"
        async with repo_lock:
            await asyncio.to_thread(session_repo.create, info.root, path, sid, branch, base_commit)
    s = Session(
        id=sid,
        name=name,
        repo=str(info.root),
        branch=branch,
        worktree=str(path),
        base_commit=base_commit,
        base_ref=base_ref,
        agent=agent,
        command=command,
        sandbox=sandbox,
        network=bool(cfg.session.network if req.network is None else req.network),
        approval=approval,
        in_place=in_place,
        cols=req.cols or cfg.session.cols,
        rows=req.rows or cfg.session.rows,
        prompt=req.prompt,
        provider=req.provider or cfg.session.provider,
        extra=dict(req.extra),
    )
    try:
        if not in_place:
            # While the sandbox hides .env* files, copying them in would undo that.
            skip_env = sandbox != "off" and cfg.sandbox.hide_dotenv
            copied = await asyncio.to_thread(wt.copy_files, info.root, path, cfg.worktree.copy_files,
                                             skip_dotenv=skip_env)
            if copied:
                s.extra["copied_files"] = copied
            skipped = [n for n in cfg.worktree.copy_files if skip_env and wt.is_dotenv(n)]
            if skipped:
                warnings.append(f"not copied while sandbox.hide_dotenv is on: {', '.join(skipped)}")
        store.save_session(s)
        store.touch_repo(str(info.root))
    except Exception:
        if not in_place:
            await asyncio.to_thread(session_repo.remove, info.root, path, sid)
        raise
    return s, warnings
