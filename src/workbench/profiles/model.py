"""A profile and its patterns: the data the built-in profiles and config overrides share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import ConfigError

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
    # Screens where the CLI cannot go on until the human acts outside any prompt (a login
    # screen, an unreachable model endpoint): the session waits with `reasons[name]`.
    blocked_patterns: tuple[Pattern, ...] = ()
    reasons: dict[str, str] = field(default_factory=dict)
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
