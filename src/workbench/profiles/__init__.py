"""External agent CLIs (profiles): what to run, how to resume it, how to tell it waits.

A profile is built in (`builtin.py`) and may be overridden field by field, or defined from
scratch, in config.toml under `[profiles.NAME]`. `resolve(agent, cfg)` gives the effective
profile for a session's `--agent` value, or None when the value is not a profile name (a
plain command line, or the built-in agent).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError
from workbench.profiles.builtin import BUILTIN
from workbench.profiles.model import Pattern as Pattern
from workbench.profiles.model import Profile as Profile
from workbench.profiles.model import _patterns

if TYPE_CHECKING:
    from workbench.config import Config, ProfileSettings

# Fields whose config values are regex lists, and the pattern kind used to name them.
_PATTERN_FIELDS = {
    "waiting_patterns": "waiting",
    "idle_patterns": "idle",
    "busy_patterns": "busy",
    "title_waiting": "title-waiting",
    "title_busy": "title-busy",
    "notify_done": "notify-done",
}
_TUPLE_FIELDS = {"command", "prompt_arg", "resume", "pass_env", "credential_paths", "allow_hosts", "version_args"}


def _override(base: Profile, settings: ProfileSettings) -> Profile:
    """`base` with every field the user set in `[profiles.NAME]` replaced."""
    changes: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(Profile)}
    for key in settings.model_fields_set:
        if key not in known or key in ("name", "builtin"):
            continue
        value = getattr(settings, key)
        if key in _PATTERN_FIELDS:
            value = _patterns(list(value), _PATTERN_FIELDS[key])
        elif key in _TUPLE_FIELDS:
            value = tuple(value)
        elif key in ("env", "answers"):
            value = dict(value)
        changes[key] = value
    return dataclasses.replace(base, **changes)


def builtin_profiles() -> dict[str, Profile]:
    return dict(BUILTIN)


def all_profiles(cfg: Config) -> dict[str, Profile]:
    """Built-in profiles with config overrides applied, plus the user's custom ones."""
    out = builtin_profiles()
    for name, settings in cfg.profiles.items():
        base = out.get(name) or Profile(name=name, description="custom profile", builtin=False)
        prof = _override(base, settings)
        if not prof.builtin and "notify_done" not in settings.model_fields_set:
            prof = dataclasses.replace(prof, notify_done=builtin_profiles()["shell"].notify_done)
        if not prof.command and name != "shell":
            raise ConfigError(
                f"profile {name!r} has no command; set [profiles.{name}] command = [\"...\"] in config.toml"
            )
        out[name] = prof
    return out


def resolve(agent: str, cfg: Config) -> Profile | None:
    """The profile named by `agent`, or None when `agent` is not a profile name."""
    if not agent or agent.strip() != agent or " " in agent:
        return None
    return all_profiles(cfg).get(agent)


def command_line(profile: Profile, prompt: str, *, resume: bool, flags: list[str] | None = None) -> list[str]:
    """The argv for a first start (with the prompt as the CLI expects) or a resume.

    `flags` (workbench's own options for the CLI) go after the command, before the prompt."""
    if resume:
        # Never replay the first prompt: without a resume command, start the CLI plain.
        return [*(profile.resume or profile.command), *(flags or [])]
    argv = [*profile.command, *(flags or [])]
    if prompt and profile.prompt_mode == "argv":
        argv += [a.replace("{prompt}", prompt) for a in profile.prompt_arg]
    return argv


@dataclass
class CliReport:
    """What `workbench doctor` / `workbench agents` say about one profile's CLI."""

    name: str
    executable: str | None
    path: str | None
    version: str | None
    credentials: list[tuple[str, str]]  # (path or $VAR, "visible" | "missing" | "hidden: why")
    error: str = ""

    @property
    def installed(self) -> bool:
        return self.path is not None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "executable": self.executable, "path": self.path,
                "version": self.version, "installed": self.installed,
                "credentials": [{"what": w, "status": st} for w, st in self.credentials],
                "error": self.error}


def _credential_status(raw: str, hidden: list[Any], protected: list[Any]) -> str:
    import os
    from pathlib import Path

    path = Path(os.path.expanduser(raw))
    if not path.exists():
        return "missing"
    real = path.resolve()
    for h in hidden:
        if real == h or real.is_relative_to(h):
            return f"hidden by sandbox.hidden_paths ({h})"
    for h in protected:
        if real == h or real.is_relative_to(h):
            return f"inside workbench's private state ({h})"
    if not os.access(real, os.R_OK):
        return "not readable"
    return "visible"


def inspect_cli(profile: Profile, cfg: Config, timeout: float = 10.0) -> CliReport:
    """Is the profile's CLI installed, which version, and can the sandbox see its credentials?"""
    import os
    import shutil
    import subprocess

    from workbench.core import sandbox_paths

    exe = profile.executable
    if profile.name == "shell" and not exe:
        exe = os.environ.get("SHELL") or "sh"
    path = shutil.which(exe) if exe else None
    version: str | None = None
    error = ""
    if path and profile.version_args:
        try:
            proc = subprocess.run([path, *profile.version_args], capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
            out = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
            version = out[0][:120] if out else None
            if proc.returncode != 0:
                error = f"`{exe} {' '.join(profile.version_args)}` exited {proc.returncode}"
        except (OSError, subprocess.TimeoutExpired) as e:
            error = f"cannot run {exe}: {e}"
    hidden = sandbox_paths.expand_hidden(cfg.sandbox.hidden_paths)
    protected = [p.resolve() for p in sandbox_paths.workbench_dirs()]
    creds = [(raw, _credential_status(raw, hidden, protected)) for raw in profile.credential_paths]
    for var in profile.pass_env:
        if os.environ.get(var):
            creds.append((f"${var}", "visible"))
    return CliReport(profile.name, exe, path, version, creds, error)
