"""The built-in profiles. Patterns were taken from each CLI's screens; config.toml can
replace any of them (`[profiles.codex] waiting_patterns = [...]`)."""

from __future__ import annotations

from workbench.profiles.model import Pattern, Profile, _patterns

# Braille spinner frames some TUIs put in front of the title while they work.
_SPINNER_TITLE = r"^[\u2800-\u28ff] "
_DONE = (r"(?i)\b(turn complete|completed?|done|finished|ready for|idle)\b",)


def _p(kind: str, *named: tuple[str, str]) -> tuple[Pattern, ...]:
    return _patterns([f"{n}={r}" for n, r in named], kind)


SHELL = Profile(
    name="shell",
    description="your login shell ($SHELL); waits only when a program sends a notification",
    command=(),
    prompt_arg=(),
    prompt_mode="type",
    detect_silence=False,
    notify_done=_patterns(list(_DONE), "notify-done"),
    version_args=(),
)

CODEX = Profile(
    name="codex",
    description="OpenAI Codex CLI",
    # --no-daemon: the session's PTY owns the whole agent, no shared background server.
    command=("codex", "--no-daemon"),
    prompt_arg=("{prompt}",),
    resume=("codex", "--no-daemon", "resume", "--last"),
    pass_env=("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"),
    credential_paths=("~/.codex/auth.json",),
    network=True,
    allow_hosts=("api.openai.com", "chatgpt.com", "auth.openai.com"),
    waiting_patterns=_p(
        "waiting",
        ("approval", r"Would you like to (run|make|apply|allow)|Press enter to confirm or esc to cancel"),
        ("question", r"Press enter to submit answer|Type your answer"),
    ),
    # Checked before the busy patterns: "Reconnecting... (esc to interrupt)" is not work.
    blocked_patterns=_p(
        "blocked",
        ("login", r"Sign in with ChatGPT|Sign in with Device Code"),
        ("offline", r"Reconnecting\.\.\."),
    ),
    reasons={
        "login": "codex needs login: attach and sign in, or run `codex login` in the session "
                 "(or pass OPENAI_API_KEY)",
        "offline": "codex cannot reach its model endpoint (Reconnecting...): check the network "
                   "and the provider's base_url",
    },
    busy_patterns=_p("busy", ("working", r"esc to interrupt")),
    idle_patterns=_p("idle", ("composer", r"^\s*\u203a ")),
    title_waiting=_p("title-waiting", ("action-required", r"Action Required")),
    title_busy=_p("title-busy", ("spinner", _SPINNER_TITLE)),
    notify_done=_patterns(list(_DONE), "notify-done"),
    silence_ms=1200,
    answers={"approve": "y", "approve_always": "p", "deny": r"\x1b"},
    hooks="codex",
    install_hint="npm install -g @openai/codex",
)

CLAUDE = Profile(
    name="claude",
    description="Anthropic Claude Code",
    command=("claude",),
    prompt_arg=("{prompt}",),
    resume=("claude", "--continue"),
    pass_env=("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL",
              "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"),
    credential_paths=("~/.claude/.credentials.json",),
    network=True,
    allow_hosts=("api.anthropic.com", "statsig.anthropic.com", "console.anthropic.com"),
    waiting_patterns=_p(
        "waiting",
        ("approval", r"Do you want to (proceed|make this edit|create|allow)|\u276f 1\. Yes"),
    ),
    busy_patterns=_p("busy", ("working", r"esc to interrupt")),
    idle_patterns=_p("idle", ("input-box", r"^\s*[\u2502|]?\s*[>\u276f]\s")),
    title_busy=_p("title-busy", ("spinner", r"^[\u2800-\u28ff\u2722-\u273d\u00b7] ")),
    notify_done=_patterns(list(_DONE), "notify-done"),
    answers={"approve": "1", "approve_always": "2", "deny": r"\x1b"},
    hooks="claude",
    install_hint="npm install -g @anthropic-ai/claude-code",
)

AIDER = Profile(
    name="aider",
    description="aider (aider.chat)",
    command=("aider", "--no-check-update", "--no-show-release-notes", "--no-pretty"),
    prompt_arg=(),
    # `aider --message` exits after one answer; type the task into the running chat instead.
    prompt_mode="type",
    resume=("aider", "--no-check-update", "--no-show-release-notes", "--no-pretty",
            "--restore-chat-history"),
    pass_env=("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY",
              "OPENROUTER_API_KEY", "AIDER_MODEL"),
    credential_paths=("~/.aider.conf.yml",),
    network=True,
    waiting_patterns=_p("waiting", ("approval", r"\(Y\)es/\(N\)o")),
    idle_patterns=_p("idle", ("prompt", r"^[\w-]*> ?$")),
    notify_done=_patterns(list(_DONE), "notify-done"),
    answers={"approve": r"y\r", "approve_always": r"a\r", "deny": r"n\r"},
    hooks="aider",
    install_hint="python -m pip install aider-install && aider-install",
)

OPENCODE = Profile(
    name="opencode",
    description="opencode (sst/opencode)",
    command=("opencode",),
    prompt_arg=("--prompt", "{prompt}"),
    resume=("opencode", "--continue"),
    pass_env=("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY"),
    credential_paths=("~/.local/share/opencode/auth.json",),
    network=True,
    waiting_patterns=_p("waiting", ("approval", r"Permission required|Allow (once|always)")),
    busy_patterns=_p("busy", ("working", r"esc (to )?interrupt")),
    notify_done=_patterns(list(_DONE), "notify-done"),
    # Its permission prompt selects "Allow once" first: Enter takes it, Esc rejects.
    # "Allow always" has no single key; `approve --always` says so.
    answers={"approve": r"\r", "deny": r"\x1b"},
    install_hint="npm install -g opencode-ai",
)

GEMINI = Profile(
    name="gemini",
    description="Google Gemini CLI",
    command=("gemini",),
    prompt_arg=("--prompt-interactive", "{prompt}"),
    resume=("gemini", "--resume", "latest"),
    pass_env=("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_GENAI_USE_VERTEXAI"),
    credential_paths=("~/.gemini/oauth_creds.json", "~/.gemini/google_accounts.json"),
    network=True,
    allow_hosts=("generativelanguage.googleapis.com", "cloudcode-pa.googleapis.com",
                 "oauth2.googleapis.com"),
    waiting_patterns=_p(
        "waiting", ("approval", r"Allow execution|Apply this change\?|Do you want to proceed")
    ),
    busy_patterns=_p("busy", ("working", r"esc to cancel")),
    idle_patterns=_p("idle", ("input-box", r"Type your message")),
    notify_done=_patterns(list(_DONE), "notify-done"),
    answers={"approve": "1", "approve_always": "2", "deny": r"\x1b"},
    install_hint="npm install -g @google/gemini-cli",
)

BUILTIN: dict[str, Profile] = {p.name: p for p in (SHELL, CODEX, CLAUDE, AIDER, OPENCODE, GEMINI)}
