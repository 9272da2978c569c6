"""Per-CLI set-up in a session's private home: config files, hooks, credentials.

Each CLI gets its own state directory inside the session home (CODEX_HOME,
CLAUDE_CONFIG_DIR), so its conversation history, and `resume --last`, belong to the
session. Credential files stay where they are: they are bound read-only into the sandbox
at their real path and linked from the private home.
"""

from __future__ import annotations

import json
import os
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit

from workbench.core import safe_fs
from workbench.core.models import Session
from workbench.errors import ConfigError, WorkbenchError
from workbench.profiles import Profile, command_line

MAX_REPO_CODEX_CONFIG = 1 << 20  # a repo's .codex/config.toml larger than this counts as "has hooks"

# What each CLI hook says, in the notify channel's vocabulary.
CLAUDE_HOOKS = {
    "PermissionRequest": "approval",
    "Notification": "waiting",
    "Stop": "turn-complete",
    "UserPromptSubmit": "running",
    "PostToolUse": "running",
}
# Codex 0.169.0 hooks (inline [hooks] in config.toml). It has no Notification hook: Stop
# (turn over, waiting for input) and PermissionRequest are what tell workbench it waits.
CODEX_HOOKS = {
    "PermissionRequest": "approval",
    "Stop": "turn-complete",
    "UserPromptSubmit": "running",
    "PostToolUse": "running",
}


@dataclass
class Prepared:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ro_binds: list[str] = field(default_factory=list)
    pass_env: list[str] = field(default_factory=list)


def real_home() -> Path:
    return Path(os.path.expanduser("~"))


def notify_shell(notify_path: str, event: str) -> str:
    """A /bin/sh command line that writes one event to the notify channel."""
    return f"printf '%s\\n' {shlex.quote(event)} > {shlex.quote(notify_path)}"


def link_credentials(profile: Profile, home: Path) -> tuple[list[str], list[str]]:
    """Bind each existing credential file read-only; link `~/X` from the private home.

    Returns (ro_binds, missing paths)."""
    binds: list[str] = []
    missing: list[str] = []
    rhome = real_home()
    for raw in profile.credential_paths:
        path = Path(os.path.expanduser(raw))
        if not path.exists():
            missing.append(raw)
            continue
        real = path.resolve()
        binds.append(str(real))
        # The home is session-writable: no component of the link's path is followed.
        if raw.startswith("~/") and path.absolute().is_relative_to(rhome):
            safe_fs.symlink(home, raw[2:], str(real))
    return binds, missing


def approval_flags(profile: Profile, approval: str) -> list[str]:
    if profile.hooks == "claude":
        mode = {"suggest": "default", "auto-edit": "acceptEdits", "full-auto": "bypassPermissions"}
        return ["--permission-mode", mode.get(approval, "default")]
    return []


def _load_user_codex(path: Path) -> tomlkit.TOMLDocument:
    if not path.is_file():
        return tomlkit.document()
    try:
        text = path.read_text(encoding="utf-8")
        tomllib.loads(text)  # tomlkit's errors are vaguer; validate with the stdlib first
        return tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the Codex config: {e}") from None


def _hook_command(notify_path: str, event: str, with_detail: bool) -> str:
    """A hook's shell command: one channel line; the JSON on stdin (its head) as detail."""
    if not with_detail:
        return notify_shell(notify_path, event)
    return (f"printf '%s %s\\n' {shlex.quote(event)} "
            f"\"$(head -c 300 | tr -d '\\n')\" > {shlex.quote(notify_path)}")


def _has_codex_hooks(worktree: Path) -> bool:
    """Does the repo's `.codex/config.toml` define hooks? The worktree is the session's, so it
    is read without following links and refused if it is not a small regular file; anything
    unreadable counts as yes (be careful: then the trust check is not bypassed)."""
    try:
        data = safe_fs.read_bytes(worktree, ".codex/config.toml", MAX_REPO_CODEX_CONFIG)
        return "hooks" in tomllib.loads(data.decode("utf-8"))
    except FileNotFoundError:
        return False
    except (OSError, WorkbenchError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True


def foreign_codex_hooks(user_doc: tomlkit.TOMLDocument, worktree: Path) -> bool:
    """Hooks other than workbench's that Codex would load in this session: the user's own
    (copied with their config) or the repo's `.codex/` ones. Codex runs those only once
    the user trusted them, so workbench must not bypass its trust check for them."""
    return ("hooks" in user_doc or safe_fs.exists(worktree, ".codex/hooks.json")
            or _has_codex_hooks(worktree))


def _codex_hooks(doc: tomlkit.TOMLDocument, notify_path: str) -> None:
    hooks = tomlkit.table(is_super_table=True)
    for hook, event in CODEX_HOOKS.items():
        handler = tomlkit.table()
        handler["type"] = "command"
        handler["command"] = _hook_command(notify_path, f"{event} codex:{hook}", hook == "PermissionRequest")
        group = tomlkit.aot()
        inner = tomlkit.aot()
        inner.append(handler)
        entry = tomlkit.table()
        entry["hooks"] = inner
        group.append(entry)
        hooks[hook] = group
    doc["hooks"] = hooks


def codex_config(s: Session, notify_path: str, user_config: Path) -> tuple[str, list[str], bool]:
    """The session's Codex config.toml text (the user's, plus ours), the env keys it needs,
    and whether workbench's hooks are in it (only when no other hooks are: see below)."""
    doc = _load_user_codex(user_config)
    # Codex appends its JSON event as the last argument.
    script = f"printf 'codex %s\\n' \"$1\" > {shlex.quote(notify_path)}"
    doc["notify"] = ["/bin/sh", "-c", script, "workbench-notify"]
    # Codex runs a hook only once its exact text was trusted in its /hooks review, unless
    # started with --dangerously-bypass-hook-trust. Ours are written here by workbench, so
    # the bypass is safe only while they are the only hooks Codex would load.
    own_hooks = not foreign_codex_hooks(doc, Path(s.worktree))
    if own_hooks:
        _codex_hooks(doc, notify_path)
    # The workbench sandbox already confines Codex; its own sandbox cannot nest inside
    # bubblewrap, so escalations it asks for are what the human approves.
    if s.approval == "full-auto":
        doc["approval_policy"] = "never"
        doc["sandbox_mode"] = "danger-full-access"
    else:
        doc["approval_policy"] = "on-request"
        doc["sandbox_mode"] = "read-only" if s.approval == "suggest" else "workspace-write"
    tui = doc.get("tui")
    if not isinstance(tui, dict):
        tui = tomlkit.table()
        doc["tui"] = tui
    tui["notifications"] = True
    projects = doc.get("projects")
    if not isinstance(projects, dict):
        projects = tomlkit.table(is_super_table=True)
        doc["projects"] = projects
    trust = tomlkit.table()
    trust["trust_level"] = "trusted"
    projects[s.worktree] = trust
    env_keys: list[str] = []
    provider = doc.get("model_provider")
    providers: Any = doc.get("model_providers") or {}
    if isinstance(provider, str) and isinstance(providers, dict):
        key = (providers.get(provider) or {}).get("env_key")
        if isinstance(key, str):
            env_keys.append(key)
    return tomlkit.dumps(doc), env_keys, own_hooks


def claude_settings(notify_path: str) -> dict[str, Any]:
    hooks: dict[str, Any] = {}
    for hook, event in CLAUDE_HOOKS.items():
        # The Notification JSON says why ("...needs your permission to use Bash"): pass its head on.
        cmd = _hook_command(notify_path, f"{event} claude:{hook}", hook in ("Notification", "PermissionRequest"))
        hooks[hook] = [{"hooks": [{"type": "command", "command": cmd}]}]
    return {"hooks": hooks}


def prepare(
    profile: Profile,
    s: Session,
    *,
    resume: bool,
    home: Path,
    notify_path: str,
    shell: str | None = None,
) -> Prepared:
    """The command line, environment and binds for one launch of `profile` in session `s`."""
    prep = Prepared(argv=[], env=dict(profile.env), pass_env=list(profile.pass_env))
    prep.env["WORKBENCH_NOTIFY"] = notify_path
    binds, _missing = link_credentials(profile, home)
    prep.ro_binds += binds
    flags = approval_flags(profile, s.approval)
    if profile.hooks == "codex":
        codex_home = home / ".codex"
        text, keys, own_hooks = codex_config(s, notify_path, real_home() / ".codex" / "config.toml")
        if own_hooks:
            flags.append("--dangerously-bypass-hook-trust")
        # Through dir fds that refuse links: the session may have planted one at
        # .codex or .codex/config.toml pointing at a host file.
        safe_fs.write_text(home, ".codex/config.toml", text)
        prep.env["CODEX_HOME"] = str(codex_home)
        prep.pass_env += [k for k in keys if k not in prep.pass_env]
    elif profile.hooks == "claude":
        claude_dir = home / ".claude"
        safe_fs.makedirs(home, ".claude")
        settings = home / ".workbench" / "claude-settings.json"
        safe_fs.write_text(home, ".workbench/claude-settings.json",
                           json.dumps(claude_settings(notify_path), indent=2))
        prep.env["CLAUDE_CONFIG_DIR"] = str(claude_dir)
        flags += ["--settings", str(settings)]
    elif profile.hooks == "aider":
        flags += ["--notifications", "--notifications-command",
                  notify_shell(notify_path, "turn-complete aider")]
    prep.argv = command_line(profile, s.prompt, resume=resume, flags=flags)
    if not prep.argv:
        prep.argv = [shell or "/bin/sh"]
        if prep.argv[0].endswith("bash"):
            prep.argv.append("-i")
    return prep
