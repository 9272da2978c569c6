"""Typed settings from `config.toml` (user) and `.workbench.toml` (per repo).

A bad file never produces a traceback: `ConfigError` names the file, the line and the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from workbench import paths
from workbench.core import repo_policy, review_noise, trust
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
    # Ports of the host's 127.0.0.1 a session with network reaches at its own 127.0.0.1
    # (a local model server); no other host port is reachable. docs/security.md, "Network".
    host_ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=list)
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


class ReviewSettings(_Section):
    # Files a session adds that match these (and the repo does not track) are review
    # noise: one "ignored: N files" line, never merged (core/review_noise.py). Replaces
    # the default list; `[]` shows everything.
    ignore: list[str] = Field(default_factory=lambda: list(review_noise.DEFAULT_IGNORE))


MAX_FIX_ROUNDS = 5


class CheckSettings(_Section):
    command: list[str] | str | None = None
    timeout_s: float = Field(default=600, gt=0)
    # A failing check after an agent's turn goes back to the agent this many times before the
    # person is asked (daemon/check_fix_rounds.py); 0: straight to review. Capped: each round
    # costs a model turn.
    fix_rounds: int = Field(default=2, ge=0, le=MAX_FIX_ROUNDS)


class SuggestSettings(_Section):
    """`[suggest]`: where workbench looks for work (docs/suggestions.md)."""

    check: bool = True  # the repo's [check] failing on the main checkout
    lint: bool = True  # ruff, mypy, eslint where the repo configures them
    todo: bool = True  # TODO / FIXME / XXX comments
    gh: bool = True  # failing CI runs and open issues through `gh`
    log_file: str = ""  # a log to read tracebacks and ERROR lines from
    log_command: list[str] | str | None = None  # a command whose output is read the same way
    interval_s: float = Field(default=0, ge=0)  # run the check on this schedule; 0 = never
    max_items: int = Field(default=100, ge=1, le=1000)
    timeout_s: float = Field(default=300, gt=0)  # each command a scan runs


class ProviderSettings(_Section):
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    model: str | None = None
    wire_api: WireApi = "chat"
    # None: stream, and fall back to unstreamed requests if the endpoint refuses (remembered
    # per endpoint and model); false: never stream; true: always stream.
    stream: bool | None = None
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
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    suggest: SuggestSettings = Field(default_factory=SuggestSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    ui: UiSettings = Field(default_factory=UiSettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    profiles: dict[str, ProfileSettings] = Field(default_factory=dict)
    keymap: dict[str, str] = Field(default_factory=dict)

    # Command keys (check.command, worktree.setup) an untrusted repo file set: they may run
    # only inside a sandbox. See core/repo_policy.py.
    _untrusted_commands: tuple[str, ...] = PrivateAttr(default=())
    _repo_file: str = PrivateAttr(default="")

    def require_sandboxed(self, key: str, sandbox_mode: str) -> None:
        """Refuse to run the command at `key` on the host if an untrusted repo file chose it."""
        if sandbox_mode == "off" and key in self._untrusted_commands:
            repo = str(Path(self._repo_file).parent)
            raise ConfigError(
                f"{self._repo_file}: key '{key}' comes from a repository file you have not trusted, "
                "and this session has no sandbox; it runs only in sandboxed sessions",
                hint=f"review the file, then run `workbench trust {repo}`",
            )

    def provider(self, name: str | None = None) -> ProviderSettings:
        """The named provider, with OPENAI_* environment defaults filled in for `default`."""
        return self.choose_provider(name).settings

    def choose_provider(
        self, name: str | None = None, overrides: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ProviderChoice:
        """The named provider with a session's one-off `overrides` (model, base_url,
        wire_api) on top, and where each setting came from (errors name it)."""
        name = name or self.session.provider
        env = os.environ if env is None else env
        sources: dict[str, str] = {}
        if name in self.providers:
            settings = self.providers[name]
            for key in settings.model_fields_set:
                sources[key] = f"[providers.{name}].{key} in config.toml"
        elif name != "default":
            known = ", ".join(sorted(self.providers)) or "none"
            raise ConfigError(
                f"unknown provider {name!r} (defined: {known}); define [providers.{name}] in config.toml"
            )
        else:
            values: dict[str, Any] = {"model": "gpt-5.1-codex"}
            for key, var in PROVIDER_ENV.items():
                if env.get(var):
                    values[key] = env[var]
                    sources[key] = var
            values["wire_api"] = "responses" if values.get("wire_api") == "responses" else "chat"
            settings = ProviderSettings(**values)
        over = {k: v for k, v in (overrides or {}).items() if v}
        bad = sorted(set(over) - set(PROVIDER_OVERRIDES))
        if bad:
            raise ConfigError(f"a session cannot override the provider's {bad[0]!r}")
        if over.get("wire_api") not in (None, "chat", "responses"):
            raise ConfigError(f"unknown wire API {over['wire_api']!r} (--wire-api): chat or responses")
        if over:
            settings = settings.model_copy(update=over)
            sources.update({k: PROVIDER_OVERRIDES[k] for k in over})
        return ProviderChoice(name, settings, sources)


# The default provider's settings from the daemon's environment, and what `new` may override
# (each with the option that sets it).
PROVIDER_ENV = {"base_url": "OPENAI_BASE_URL", "model": "OPENAI_MODEL", "wire_api": "WORKBENCH_WIRE_API"}
PROVIDER_OVERRIDES = {"model": "--model", "base_url": "--base-url", "wire_api": "--wire-api"}


@dataclass
class ProviderChoice:
    """A session's provider: its name, settings and where each setting came from."""

    name: str
    settings: ProviderSettings
    sources: dict[str, str] = field(default_factory=dict)


# Sections a repo may override in its .workbench.toml; the rest is personal.
REPO_SECTIONS = ("session", "sandbox", "worktree", "check", "agent", "review", "suggest")


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
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    return _parse_text(path, raw)


def _parse_text(path: Path, raw: bytes) -> tuple[dict[str, Any], str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason})") from None
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


@dataclass
class RepoFile:
    """A repository's `.workbench.toml` judged against the user's config."""

    path: Path
    text: str
    sha256: str
    config: Config  # the user's config with the file layered on top
    findings: list[repo_policy.Finding]  # keys that loosen and need trust
    commands: list[str]  # command keys it sets that may run only inside a sandbox
    state: trust.TrustState  # trusted | untrusted | changed (since trusted)

    @property
    def needs_trust(self) -> bool:
        return bool(self.findings or self.commands)


def _load_user(path: Path | None) -> tuple[Config, dict[str, Any], Path, str]:
    data, upath, utext = load_user_raw(path)
    try:
        return Config.model_validate(data), data, upath, utext
    except ValidationError as e:
        raise _validation_error(upath, utext, e) from None


def repo_file(repo: Path, path: Path | None = None) -> RepoFile | None:
    """The repo's `.workbench.toml` (None without one), parsed, validated and judged.

    Raises ConfigError for a file that is not valid, never for one that is untrusted.
    """
    user, data, upath, utext = _load_user(path)
    rpath = Path(repo).absolute() / ".workbench.toml"
    if not rpath.is_file() and not rpath.is_symlink():
        return None
    raw = trust.read_repo_file(rpath)
    rdata, rtext = _parse_text(rpath, raw)
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
        out = Config.model_validate(merged)
    except ValidationError as e:
        # Report against the repo file if the bad key came from it, else the user file.
        loc = tuple(e.errors()[0]["loc"])
        src_path, src_text = (rpath, rtext) if _key_line(rtext, loc) else (upath, utext)
        raise _validation_error(src_path, src_text, e) from None
    findings, commands = repo_policy.review(rdata, user, out)
    sha = trust.digest(raw)
    state: trust.TrustState = "untrusted"
    if findings or commands:
        rec = trust.load_records().get(trust.repo_key(repo))
        if rec is not None:
            state = "trusted" if rec.sha256 == sha else "changed"
    return RepoFile(rpath, rtext, sha, out, findings, commands, state)


def load(repo: Path | None = None, path: Path | None = None) -> Config:
    """The user's config, with the repo's `.workbench.toml` layered on top when given.

    A repo file may only tighten the user's settings unless the user trusted that exact
    file (core/repo_policy.py, core/trust.py): a loosening key in an untrusted file stops
    the command with `UntrustedRepoConfig`, which names each key and the fix.
    """
    if repo is None:
        return _load_user(path)[0]
    rf = repo_file(repo, path)
    if rf is None:
        return _load_user(path)[0]
    if rf.state == "trusted" or not rf.needs_trust:
        return rf.config
    if rf.findings:
        raise UntrustedRepoConfig(rf)
    rf.config._untrusted_commands = tuple(rf.commands)
    rf.config._repo_file = str(rf.path)
    return rf.config


class UntrustedRepoConfig(ConfigError):
    """A repo file loosens the user's settings and the user has not trusted it (as it is now)."""

    def __init__(self, rf: RepoFile) -> None:
        self.findings = rf.findings
        parts = []
        for f in rf.findings:
            line = _key_line(rf.text, tuple(f.key.split(".")))
            parts.append((f"line {line}: " if line else "") + f.describe())
        why = "changed since you trusted it" if rf.state == "changed" else "not trusted"
        n = len(rf.findings)
        keys = "keys" if n > 1 else "key"
        # Names and the fix first: the CLI cuts an error line at 1000 characters.
        super().__init__(
            f"{rf.path}: {why}, and a repository file may not loosen your settings on its own; "
            f"refused {keys} {', '.join(f.key for f in rf.findings)}. Review the file, then run "
            f"`workbench trust {rf.path.parent}` (or remove the {keys}). Details: " + "; ".join(parts)
        )


_ignore_cache: dict[str, tuple[tuple[Any, ...], tuple[str, ...]]] = {}


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def review_ignore(repo: Path) -> tuple[str, ...]:
    """`[review] ignore` for `repo` (its .workbench.toml over the user's config), read
    again only when either file changed: every diff asks. A file that does not load gives
    the user's list, or the default: the command that reads it properly says what is wrong."""
    upath = paths.config_file()
    key = (str(upath), _stat_key(upath), _stat_key(Path(repo).absolute() / ".workbench.toml"))
    hit = _ignore_cache.get(str(repo))
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        found = tuple(load(Path(repo)).review.ignore)
    except ConfigError:
        try:
            found = tuple(load().review.ignore)
        except ConfigError:
            found = review_noise.DEFAULT_IGNORE
    _ignore_cache[str(repo)] = (key, found)
    return found
