"""Agents spoken to over the Agent Client Protocol (ACP): `--agent 'acp:COMMAND ARGS'` or a
profile by name (`--agent acp:gemini`). The daemon side is daemon/acp_ext.py."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from workbench.errors import UsageError

PREFIX = "acp"


@dataclass(frozen=True)
class AcpProfile:
    name: str
    argv: tuple[str, ...]
    install_hint: str


PROFILES: dict[str, AcpProfile] = {p.name: p for p in (
    AcpProfile("gemini", ("gemini", "--experimental-acp"), "npm install -g @google/gemini-cli"),
    AcpProfile("opencode", ("opencode", "acp"), "npm install -g opencode-ai"),
    AcpProfile("codex", ("codex-acp",), "npm install -g @zed-industries/codex-acp"),
    AcpProfile("claude", ("claude-agent-acp",), "npm install -g @zed-industries/claude-agent-acp"),
    AcpProfile("goose", ("goose", "acp"), "see https://block.github.io/goose/docs/getting-started/installation"),
)}  # fmt: skip


def is_acp(agent: str) -> bool:
    return agent.strip().split(":", 1)[0] == PREFIX and ":" in agent


def command(agent: str) -> list[str]:
    """The agent's argv: a profile's when `acp:NAME` names one, else `acp:COMMAND ARGS` as written."""
    rest = agent.strip().split(":", 1)[1] if is_acp(agent) else ""
    try:
        argv = shlex.split(rest)
    except ValueError as e:
        raise UsageError(f"cannot parse the ACP agent command {rest!r}: {e}") from None
    if not argv:
        raise UsageError("`--agent acp:` needs a command or a profile name",
                         hint=f"e.g. --agent acp:gemini; profiles: {', '.join(PROFILES)}")
    if len(argv) == 1 and argv[0] in PROFILES:
        return list(PROFILES[argv[0]].argv)
    return argv


def profile_of(argv: list[str]) -> AcpProfile | None:
    return next((p for p in PROFILES.values() if list(p.argv) == argv), None)
