"""Typed settings from `config.toml` (user) and `.workbench.toml` (per repo).

A bad file never produces a traceback: `ConfigError` names the file, the line and the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench import paths
from workbench.errors import ConfigError

SandboxMode = Literal["workspace", "strict", "off"]
ApprovalMode = Literal["suggest", "auto-edit", "full-auto"]
WireApi = Literal["chat", "responses"]
MergeStrategy = Literal["ff", "squash", "rebase"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionDefaults(_Section):
    agent: str = "shell"
    sandbox: SandboxMode = "workspace"
    network: bool = False
    approval: ApprovalMode = "suggest"
    provider: str = "default"
    cols: int = Field(default=120, ge=10, le=1000)
    rows: int = Field(default=40, ge=4, le=500)
    scrollback_lines: int = Field(default=10_000, ge=0, le=1_000_000)


class SandboxSettings(_Section):
    # Variables passed into the sandbox; everything else is cleared.
    env_allowlist: list[str] = Field(
        default_factory=lambda: ["PATH", "TERM", "LANG", "LC_ALL", "LC_CTYPE", "COLORTERM", "TZ"]
    )
    # Paths hidden from sandboxed processes (~ is the user's home).
    hidden_paths: list[str] = Field(
        default_factory=lambda: ["~/.ssh", "~/.aws", "~/.config/gcloud", "~/.gnupg", "~/.netrc",
                                 "~/.docker", "~/.kube", "~/.azure", "~/.password-store"]
    )
    hide_dotenv: bool = True
    extra_ro_binds: list[str] = Field(default_factory=list)
    extra_rw_binds: list[str] = Field(default_factory=list)
    # Caps per sandbox (0 = none): size of each private tmpfs (/tmp, /var/tmp, /run),
    # and tasks (processes and threads) of one session. docs/security.md, "Limits".
    tmp_size_mb: int = Field(default=512, ge=0, le=1_048_576)
    max_processes: int = Field(default=1024, ge=0, le=4_194_304)


class WorktreeSettings(_Section):
    # Nothing by default: `.env` files hold secrets the sandbox hides (hide_dotenv).
    copy_files: list[str] = Field(default_factory=list)
    setup: list[str] | str | None = None
    in_place: bool = False
    merge_strategy: MergeStrategy = "squash"


class CheckSettings(_Section):
    command: list[str] | str | None = None
    timeout_s: float = Field(default=600, gt=0)


class ProviderSettings(_Section):
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    model: str | None = None
    wire_api: WireApi = "chat"
    context_window: int = Field(default=128_000, gt=0)
    price_in_per_million: float = Field(default=0.0, ge=0)
    price_out_per_million: float = Field(default=0.0, ge=0)
    headers: dict[str, str] = Field(default_factory=dict)
    max_retries: int = Field(default=4, ge=0, le=20)
    timeout_s: float = Field(default=600, gt=0)


class AgentSettings(_Section):
    compact_threshold: float = Field(default=0.9, gt=0, le=1)
    max_tool_output_bytes: int = Field(default=16_384, ge=512)
    command_timeout_ms: int = Field(default=120_000, ge=100)
    max_turns: int = Field(default=200, ge=1)


class UiSettings(_Section):
    theme: str = "workbench-dark"
    detach_key: str = "ctrl+right_square_bracket"
    notify: Literal["osc9", "osc777", "bell", "none"] = "osc9"
    bell: bool = True
    approval_arm_ms: int = Field(default=400, ge=0, le=10_000)


class ProfileSettings(_Section):
    """An external agent CLI. See workbench.profiles for the built-in ones."""

    command: list[str] = Field(default_factory=list)
    prompt_arg: list[str] = Field(default_factory=list)  # e.g. ["{prompt}"]; {prompt} replaced
    resume: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    pass_env: list[str] = Field(default_factory=list)
    credential_paths: list[str] = Field(default_factory=list)
    network: bool = False
    allow_hosts: list[str] = Field(default_factory=list)
    waiting_patterns: list[str] = Field(default_factory=list)
    idle_patterns: list[str] = Field(default_factory=list)
    busy_patterns: list[str] = Field(default_factory=list)
    title_waiting: list[str] = Field(default_factory=list)
    title_busy: list[str] = Field(default_factory=list)
    notify_done: list[str] = Field(default_factory=list)
    answers: dict[str, str] = Field(default_factory=dict)
    prompt_mode: Literal["argv", "type"] = "argv"
    hooks: str = ""
    detect_silence: bool = True
    install_hint: str = ""
    description: str = ""
    silence_ms: int = Field(default=1500, ge=100)
    auto_answer: bool = False


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session: SessionDefaults = Field(default_factory=SessionDefaults)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    worktree: WorktreeSettings = Field(default_factory=WorktreeSettings)
    check: CheckSettings = Field(default_factory=CheckSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    profiles: dict[str, ProfileSettings] = Field(default_factory=dict)
    keymap: dict[str, str] = Field(default_factory=dict)

    def provider(self, name: str | None = None) -> ProviderSettings:
        """The named provider, with OPENAI_* environment defaults filled in for `default`."""
        name = name or self.session.provider
        if name in self.providers:
            return self.providers[name]
        if name != "default":
            raise ConfigError(f"unknown provider {name!r}; define [providers.{name}] in config.toml")
        wire = os.environ.get("WORKBENCH_WIRE_API", "chat")
        return ProviderSettings(
            base_url=os.environ.get("OPENAI_BASE_URL") or None,
            model=os.environ.get("OPENAI_MODEL") or "gpt-5.1-codex",
            wire_api="responses" if wire == "responses" else "chat",
        )


# Sections a repo may override in its .workbench.toml; the rest is personal.
REPO_SECTIONS = ("session", "sandbox", "worktree", "check", "agent")


def _key_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number of the key at `loc` (a pydantic error location) in TOML `text`."""
    lines = text.splitlines()
    keys = [str(k) for k in loc if not isinstance(k, int)]
    if not keys:
        return None
    start = 0
    # Find the deepest table header that is a prefix of the location.
    for depth in range(len(keys) - 1, 0, -1):
        header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(re.escape(k) for k in keys[:depth]) + r"\s*\]")
        for i, line in enumerate(lines):
            if header.match(line):
                start = i
                break
        else:
            continue
        break
    key_re = re.compile(r"^\s*[\"']?" + re.escape(keys[-1]) + r"[\"']?\s*=")
    for i in range(start, len(lines)):
        if key_re.match(lines[i]):
            return i + 1
    return start + 1 if start else None


def _top_level_line(text: str, name: str) -> int | None:
    q = re.escape(name)
    pat = re.compile(r"^\s*(\[\[?\s*[\"']?" + q + r"[\"']?\s*[.\]]|[\"']?" + q + r"[\"']?\s*[.=])")
    for i, line in enumerate(text.splitlines()):
        if pat.match(line):
            return i + 1
    return None


def _parse(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        where = f":{m.group(1)}" if m else ""
        raise ConfigError(f"{path}{where}: invalid TOML: {e}") from None


def _validation_error(path: Path, text: str, err: ValidationError, prefix: tuple[Any, ...] = ()) -> ConfigError:
    first = err.errors()[0]
    loc = prefix + tuple(first["loc"])
    key = ".".join(str(k) for k in loc)
    line = _key_line(text, loc)
    where = f"{path}:{line}" if line else str(path)
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return ConfigError(f"{where}: key '{key}': {msg}{more}")


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def load_user_raw(path: Path | None = None) -> tuple[dict[str, Any], Path, str]:
    path = path or paths.config_file()
    if not path.exists():
        return {}, path, ""
    data, text = _parse(path)
    return data, path, text


def load(repo: Path | None = None, path: Path | None = None) -> Config:
    """The user's config, with the repo's `.workbench.toml` layered on top when given."""
    data, upath, utext = load_user_raw(path)
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        raise _validation_error(upath, utext, e) from None
    if repo is None:
        return cfg
    rpath = Path(repo) / ".workbench.toml"
    if not rpath.is_file():
        return cfg
    rdata, rtext = _parse(rpath)
    bad = sorted(set(rdata) - set(REPO_SECTIONS))
    if bad:
        line = _top_level_line(rtext, bad[0])
        where = f"{rpath}:{line}" if line else str(rpath)
        raise ConfigError(
            f"{where}: key '{bad[0]}': not allowed in a repo file "
            f"(allowed: {', '.join(REPO_SECTIONS)})"
        )
    merged = _deep_merge(data, rdata)
    try:
        return Config.model_validate(merged)
    except ValidationError as e:
        # Report against the repo file if the bad key came from it, else the user file.
        loc = tuple(e.errors()[0]["loc"])
        src_path, src_text = (rpath, rtext) if _key_line(rtext, loc) else (upath, utext)
        raise _validation_error(src_path, src_text, e) from None
