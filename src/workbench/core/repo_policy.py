"""What a repository's own `.workbench.toml` may change without the user's trust.

A repository file is written by whoever writes the repository, and that includes every
session that works in it (in place, or through a merge). So it may only make things
*stricter* than the user's own settings; anything that loosens the sandbox, chooses
what runs, or decides where the repo's code goes needs the user to trust that exact file
(`workbench trust REPO`, see core/trust.py).

The rule table below names every key a repo file may set. A key that is not in it (a
setting added later and forgotten here) needs trust: the table fails closed.

Kinds:

- ``free``: no effect on the sandbox (terminal size, agent loop limits, check timeout).
- ``tighten``: allowed when the repo's value is at least as strict as the user's; the
  comparison is the rule's `allows(repo_value, user_value)`.
- ``sandboxed``: a command that runs inside the session's sandbox (check, set-up). Allowed,
  but never run on the host: in a session with ``sandbox = "off"`` it needs trust
  (see `Config.untrusted_commands`).
- ``trust``: always needs trust unless it equals the user's own value.

A value equal to the user's effective value (their config.toml, or the default) is never
a loosening: a repo may spell out what the user already has.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    # A `workbench.config.Config`: config imports this module, so core names only its base.
    from pydantic import BaseModel

RuleKind = Literal["free", "tighten", "sandboxed", "trust"]


@dataclass(frozen=True)
class Rule:
    kind: RuleKind
    explain: str  # what a repo file may do with the key, for the refusal message
    allows: Callable[[Any, Any], bool] | None = None  # (repo value, user value) -> ok, for "tighten"


def _ranked(order: Sequence[str]) -> Callable[[Any, Any], bool]:
    """Allowed when the repo's value is at or after the user's in `order` (loosest first)."""

    def allows(repo: Any, user: Any) -> bool:
        return order.index(repo) >= order.index(user)

    return allows


def _norm(p: str) -> str:
    return os.path.normpath(os.path.expanduser(p))


def _subset(paths: bool = False) -> Callable[[Any, Any], bool]:
    def allows(repo: Any, user: Any) -> bool:
        f = _norm if paths else str
        return {f(x) for x in repo} <= {f(x) for x in user}

    return allows


def _superset(paths: bool = False) -> Callable[[Any, Any], bool]:
    def allows(repo: Any, user: Any) -> bool:
        f = _norm if paths else str
        return {f(x) for x in repo} >= {f(x) for x in user}

    return allows


def _cap(repo: Any, user: Any) -> bool:
    """A size or count cap where 0 means none: a repo may set one, or a lower one."""
    return bool(repo) and (not user or repo <= user)


def _only(value: Any) -> Callable[[Any, Any], bool]:
    def allows(repo: Any, user: Any) -> bool:
        return bool(repo == value)

    return allows


SANDBOX_ORDER = ("off", "workspace", "strict")  # loosest first
APPROVAL_ORDER = ("full-auto", "auto-edit", "suggest")  # loosest first

FREE = Rule("free", "any value")

RULES: dict[str, Rule] = {
    # [session]
    "session.agent": Rule("trust", "chooses the command that runs"),
    "session.sandbox": Rule("tighten", "may only be stricter: off < workspace < strict", _ranked(SANDBOX_ORDER)),
    "session.network": Rule("tighten", "may only turn network access off", _only(False)),
    "session.approval": Rule("tighten", "may only ask for more approval: full-auto < auto-edit < suggest",
                             _ranked(APPROVAL_ORDER)),
    "session.provider": Rule("trust", "chooses which model endpoint receives the code"),
    "session.cols": FREE,
    "session.rows": FREE,
    "session.scrollback_lines": FREE,
    # [sandbox]
    "sandbox.env_allowlist": Rule("tighten", "may only remove variables from yours", _subset()),
    "sandbox.hidden_paths": Rule("tighten", "may only add paths to yours", _superset(paths=True)),
    "sandbox.hide_dotenv": Rule("tighten", "may only turn it on", _only(True)),
    "sandbox.tmp_size_mb": Rule("tighten", "may only lower the /tmp size cap (0 is none)", _cap),
    "sandbox.max_processes": Rule("tighten", "may only lower the process cap (0 is none)", _cap),
    "sandbox.extra_ro_binds": Rule("tighten", "may not add host paths", _subset(paths=True)),
    "sandbox.extra_rw_binds": Rule("tighten", "may not add host paths", _subset(paths=True)),
    # A bridged port is a way out of the sandbox to a host service: only the user opens one.
    "sandbox.host_ports": Rule("tighten", "may only remove ports from yours", _subset()),
    # [worktree]
    "worktree.copy_files": Rule("tighten", "may only copy fewer files than yours", _subset()),
    "worktree.setup": Rule("sandboxed", "runs only inside the sandbox"),
    "worktree.in_place": Rule("tighten", "may only turn it off: in place, sessions write the main checkout",
                              _only(False)),
    "worktree.merge_strategy": FREE,
    # [check]
    "check.command": Rule("sandboxed", "runs only inside the sandbox"),
    "check.timeout_s": FREE,
    # Only model turns (tokens) are at stake, and config caps it at 5: a repo may raise it too.
    "check.fix_rounds": FREE,
    # [suggest]: a repo may turn sources off or run its check less often, never the reverse
    # (the daemon ANDs each source with the user's own setting), and name its own log (read
    # only inside the repo)
    "suggest.check": FREE,
    "suggest.lint": FREE,
    "suggest.todo": FREE,
    "suggest.gh": FREE,
    "suggest.log_file": FREE,
    "suggest.log_command": Rule("sandboxed", "runs only inside the sandbox"),
    "suggest.interval_s": FREE,
    "suggest.max_items": FREE,
    "suggest.timeout_s": FREE,
    # [agent]
    "agent.compact_threshold": FREE,
    "agent.max_tool_output_bytes": FREE,
    "agent.command_timeout_ms": FREE,
    "agent.max_turns": FREE,
    # [review]: what the diff lists apart is also what a merge leaves out, so hiding
    # more lands less; it is never a way to land something unseen.
    "review.ignore": FREE,
}

UNKNOWN = Rule("trust", "is not in workbench's rule table")


def rule_for(key: str) -> Rule:
    return RULES.get(key, UNKNOWN)


@dataclass(frozen=True)
class Finding:
    """A key the repo file sets that needs the user's trust."""

    key: str
    value: Any
    user_value: Any
    explain: str

    def describe(self) -> str:
        if isinstance(self.value, list) and isinstance(self.user_value, list):
            added = [x for x in self.value if x not in self.user_value]
            dropped = [x for x in self.user_value if x not in self.value]
            change = "; ".join(
                f"{verb} {', '.join(str(x) for x in items[:6])}{', ...' if len(items) > 6 else ''}"
                for verb, items in (("adds", added), ("drops", dropped)) if items
            )
            return f"{self.key} {change} ({self.explain})"
        return f"{self.key} = {_show(self.value)} ({self.explain}; yours: {_show(self.user_value)})"


def _show(v: Any) -> str:
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "unset"
    if isinstance(v, list):
        text = "[" + ", ".join(_show(x) for x in v[:6]) + (", ..." if len(v) > 6 else "") + "]"
        return text
    return str(v)


def repo_keys(data: dict[str, Any]) -> list[str]:
    """The dotted keys a parsed repo file sets, in file order."""
    out: list[str] = []
    for section, body in data.items():
        if isinstance(body, dict):
            out.extend(f"{section}.{k}" for k in body)
        else:
            out.append(section)
    return out


def _value(cfg: BaseModel, key: str) -> Any:
    obj: Any = cfg
    for part in key.split("."):
        obj = getattr(obj, part, None)
    return obj


def review(data: dict[str, Any], user: BaseModel, merged: BaseModel) -> tuple[list[Finding], list[str]]:
    """Judge a repo file: (keys that need trust, sandboxed-only command keys it sets).

    `data` is the parsed file, `user` the user's own config, `merged` the result of
    layering the file on top (both validated, so values are normalised).
    """
    findings: list[Finding] = []
    commands: list[str] = []
    for key in repo_keys(data):
        rule = rule_for(key)
        new, old = _value(merged, key), _value(user, key)
        if rule.kind == "free" or new == old:
            continue
        if rule.kind == "sandboxed":
            commands.append(key)
        elif rule.kind == "tighten" and rule.allows is not None and _safe(rule.allows, new, old):
            continue
        else:
            findings.append(Finding(key, new, old, rule.explain))
    return findings, commands


def _safe(fn: Callable[[Any, Any], bool], new: Any, old: Any) -> bool:
    try:
        return fn(new, old)
    except (ValueError, TypeError):
        return False
