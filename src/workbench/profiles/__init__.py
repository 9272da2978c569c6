"""External agent CLIs (profiles): what to run, how to resume it, how to tell it waits.

A profile is built in (`builtin.py`) and may be overridden field by field, or defined from
scratch, in config.toml under `[profiles.NAME]`. `resolve(agent, cfg)` gives the effective
profile for a session's `--agent` value, or None when the value is not a profile name (a
plain command line, or the built-in agent).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.errors import ConfigError

if TYPE_CHECKING:
    from workbench.config import Config, ProfileSettings

# `name=regex` names a pattern (the name shows in the detection log as `pattern:name`).
_NAMED = re.compile(r"^([a-z][a-z0-9_-]{0,30})=(.+)$", re.S)


@dataclass(frozen=True)
class Pattern:
    name: str
    regex: re.Pattern[str]

    @classmethod
    def parse(cls, text: str, default_name: str) -> Pattern:
        m = _NAMED.match(text)
        name, src = (m.group(1), m.group(2)) if m else (default_name, text)
        try:
            return cls(name, re.compile(src, re.M))
        except re.error as e:
            raise ConfigError(f"bad pattern {text!r} for {default_name}: {e}") from None

    def search(self, text: str) -> bool:
        return self.regex.search(text) is not None


def _patterns(items: list[str] | tuple[str, ...], kind: str) -> tuple[Pattern, ...]:
    return tuple(Pattern.parse(t, f"{kind}{i + 1}" if len(items) > 1 else kind) for i, t in enumerate(items))


@dataclass(frozen=True)
class Profile:
    """Everything workbench knows about one agent CLI.

    Pattern lists are regexes searched (multi-line) in the visible screen text; title
    patterns in the terminal title. `answers` maps approve / approve_always / deny to the
    keys (C escapes allowed) that answer the CLI's approval prompt.
    """

    name: str
    description: str = ""
    command: tuple[str, ...] = ()
    prompt_arg: tuple[str, ...] = ("{prompt}",)
    # "argv": the prompt goes on the command line; "type": typed in once the CLI is idle.
    prompt_mode: str = "argv"
    resume: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    pass_env: tuple[str, ...] = ()
    credential_paths: tuple[str, ...] = ()
    network: bool = False
    allow_hosts: tuple[str, ...] = ()
    waiting_patterns: tuple[Pattern, ...] = ()
    idle_patterns: tuple[Pattern, ...] = ()
    busy_patterns: tuple[Pattern, ...] = ()
    title_waiting: tuple[Pattern, ...] = ()
    title_busy: tuple[Pattern, ...] = ()
    # A desktop notification (OSC 9/777) whose text matches this means "turn finished";
    # any other notification means "needs you".
    notify_done: tuple[Pattern, ...] = ()
    silence_ms: int = 1500
    # Silence alone (no idle pattern configured) counts as idle; off for shells.
    detect_silence: bool = True
    auto_answer: bool = False
    answers: dict[str, str] = field(default_factory=dict)
    # Native callback integration: "codex" (notify program), "claude" (hooks),
    # "aider" (--notifications-command) or "".
    hooks: str = ""
    version_args: tuple[str, ...] = ("--version",)
    install_hint: str = ""
    builtin: bool = True

    @property
    def executable(self) -> str | None:
        return self.command[0] if self.command else None

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "command": list(self.command),
            "resume": list(self.resume),
            "network": self.network,
            "allow_hosts": list(self.allow_hosts),
            "pass_env": list(self.pass_env),
            "credential_paths": list(self.credential_paths),
            "hooks": self.hooks,
            "builtin": self.builtin,
            "can_answer": sorted(self.answers),
        }


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
    from workbench.profiles.builtin import BUILTIN

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

    from workbench.core import sandbox

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
    hidden = sandbox.expand_hidden(cfg.sandbox.hidden_paths)
    protected = [p.resolve() for p in sandbox._workbench_dirs()]
    creds = [(raw, _credential_status(raw, hidden, protected)) for raw in profile.credential_paths]
    for var in profile.pass_env:
        if os.environ.get(var):
            creds.append((f"${var}", "visible"))
    return CliReport(profile.name, exe, path, version, creds, error)
