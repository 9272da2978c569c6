"""Agent profiles: built-ins, config.toml overrides, per-CLI set-up, screen classification."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from workbench import config, profiles
from workbench.core.models import Session
from workbench.daemon.attention_screen import classify, normalize_event
from workbench.daemon.profiles_ext import parse_line
from workbench.errors import ConfigError
from workbench.profiles import integrations

# Screens captured from Codex CLI 0.169.0 in a 120x40 terminal.
CODEX_APPROVAL = [
    "  >_ OpenAI Codex (v0.169.0)",
    "\u203a make hello.txt",
    "\u2022 I'll create the file.",
    "\u2022 Running printf hello > hello.txt",
    "  Would you like to run the following command?",
    "  $ printf hello > hello.txt",
    "\u203a 1. Yes, proceed (y)",
    "  3. No, and tell Codex what to do differently (esc)",
    "  Press enter to confirm or esc to cancel",
]
CODEX_IDLE = [
    "\u2022 Ran printf hello > hello.txt",
    "\u2022 Created hello.txt.",
    "  Worked for 5s \u2022 03:10",
    "\u203a Ask Codex to do anything",
    "  fake-model default \u00b7 /tmp/cx/work",
]
CODEX_WORKING = ["\u203a make hello.txt", "\u2022 Working (3s \u2022 esc to interrupt)",
                 "\u203a Ask Codex to do anything"]


def cfg_from(tmp_path: Path, text: str) -> config.Config:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return config.load(path=p)


def session(tmp_path: Path, **kw: object) -> Session:
    wt = tmp_path / "wt"
    wt.mkdir(exist_ok=True)
    base: dict[str, object] = dict(id="abcd1234", name="codex-1", repo=str(tmp_path), branch="wb/codex-1",
                                   worktree=str(wt), base_commit="", base_ref="main", agent="codex",
                                   command=[], prompt="fix the bug")
    base.update(kw)
    return Session(**base)  # type: ignore[arg-type]


def test_builtin_profiles_and_prompt_passing() -> None:
    cfg = config.Config()
    allp = profiles.all_profiles(cfg)
    assert set(allp) == {"shell", "codex", "claude", "aider", "opencode", "gemini"}
    assert profiles.command_line(allp["codex"], "fix it", resume=False) == ["codex", "--no-daemon", "fix it"]
    assert profiles.command_line(allp["codex"], "fix it", resume=True) == ["codex", "--no-daemon", "resume", "--last"]
    assert profiles.command_line(allp["claude"], "x", resume=True) == ["claude", "--continue"]
    assert profiles.command_line(allp["opencode"], "x y", resume=False) == ["opencode", "--prompt", "x y"]
    assert profiles.command_line(allp["gemini"], "q", resume=False) == ["gemini", "--prompt-interactive", "q"]
    # aider takes its task typed into the chat, so never on the command line
    assert "t" not in profiles.command_line(allp["aider"], "t", resume=False)
    assert profiles.command_line(allp["claude"], "", resume=False, flags=["--settings", "f"]) == \
        ["claude", "--settings", "f"]
    assert profiles.resolve("codex --yolo", cfg) is None  # a command line, not a profile name
    assert profiles.resolve("nope", cfg) is None


def test_config_overrides_only_what_it_sets_and_adds_custom(tmp_path: Path) -> None:
    cfg = cfg_from(tmp_path, """
[profiles.codex]
command = ["/opt/codex/bin/codex"]
waiting_patterns = ["ask=Proceed\\\\?"]
silence_ms = 300

[profiles.mybot]
command = ["mybot", "--tui"]
prompt_arg = ["--task={prompt}"]
pass_env = ["MYBOT_KEY"]
idle_patterns = ["^bot> $"]
""")
    codex = profiles.resolve("codex", cfg)
    assert codex is not None
    assert codex.command == ("/opt/codex/bin/codex",)
    assert [p.name for p in codex.waiting_patterns] == ["ask"] and codex.waiting_patterns[0].search("Proceed?")
    assert codex.silence_ms == 300
    # untouched fields keep the built-in values
    assert codex.resume == ("codex", "--no-daemon", "resume", "--last") and codex.hooks == "codex"
    assert codex.title_waiting and codex.answers["approve"] == "y"
    bot = profiles.resolve("mybot", cfg)
    assert bot is not None and not bot.builtin
    assert profiles.command_line(bot, "do x", resume=False) == ["mybot", "--tui", "--task=do x"]
    assert bot.idle_patterns[0].name == "idle" and bot.notify_done  # custom ones understand "done" notes


@pytest.mark.parametrize(("text", "message"), [
    ('[profiles.x]\nprompt_arg = ["{prompt}"]\n', "profile 'x' has no command"),
    ('[profiles.codex]\nwaiting_patterns = ["(unclosed"]\n', "bad pattern '(unclosed'"),
])
def test_bad_profiles_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    cfg = cfg_from(tmp_path, text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        profiles.all_profiles(cfg)


def test_classify_real_codex_screens() -> None:
    codex = profiles.builtin_profiles()["codex"]
    v = classify(codex, CODEX_APPROVAL, "[ ! ] Action Required | work")
    assert (v.kind, v.signal) == ("waiting", "pattern:approval")
    v = classify(codex, ["\u203a Ask Codex to do anything"], "[ . ] Action Required | work")
    assert (v.kind, v.signal, v.pattern) == ("waiting", "title", "action-required")
    assert classify(codex, CODEX_WORKING, "work").signal == "pattern:working"
    assert (classify(codex, ["hello"], "\u2819 work").kind, classify(codex, ["hello"], "\u2819 work").signal) == \
        ("busy", "title")
    assert classify(codex, CODEX_IDLE, "work").signal == "pattern:composer"
    shell = profiles.builtin_profiles()["shell"]
    assert classify(shell, ["$ make"], "bash").kind == "unknown"  # a shell never idles by silence
    opencode = profiles.builtin_profiles()["opencode"]
    assert classify(opencode, ["nothing"], "").signal == "silence"


def test_notify_vocabulary_and_channel_lines() -> None:
    assert normalize_event("Turn_Complete") == "turn-complete"
    with pytest.raises(ValueError, match="unknown event 'shutdown'"):
        normalize_event("shutdown")
    payload = json.dumps({"type": "agent-turn-complete", "last-assistant-message": "done \"type\": \"x\""})
    assert parse_line(f"codex {payload}") == ("agent-turn-complete", "codex")
    assert parse_line("waiting claude:Notification {\"message\": 1}") == \
        ("waiting", "claude:Notification {\"message\": 1}")
    with pytest.raises(ValueError):
        parse_line("codex not json")


def test_codex_config_keeps_the_users_and_adds_notify(tmp_path: Path, isolated_env: Path) -> None:
    user = isolated_env / "home" / ".codex"
    user.mkdir(parents=True)
    (user / "config.toml").write_text(
        '# mine\nmodel = "o9"\nmodel_provider = "corp"\napproval_policy = "never"\n\n'
        '[model_providers.corp]\nbase_url = "https://llm.corp/v1"\nenv_key = "CORP_KEY"\nwire_api = "responses"\n'
    )
    (user / "auth.json").write_text('{"token": "t"}')
    s = session(tmp_path, approval="suggest")
    home = tmp_path / "home"
    home.mkdir()
    prep = integrations.prepare(profiles.builtin_profiles()["codex"], s, resume=False, home=home,
                                notify_path="/run/workbench-notify")
    # Only workbench's own hooks are in the session's config, so Codex may skip its trust review.
    assert prep.argv == ["codex", "--no-daemon", "--dangerously-bypass-hook-trust", "fix the bug"]
    assert prep.env["CODEX_HOME"] == str(home / ".codex")
    assert prep.env["WORKBENCH_NOTIFY"] == "/run/workbench-notify"
    assert "CORP_KEY" in prep.pass_env and "OPENAI_API_KEY" in prep.pass_env
    doc = tomllib.loads((home / ".codex" / "config.toml").read_text())
    assert doc["model"] == "o9" and doc["model_providers"]["corp"]["base_url"] == "https://llm.corp/v1"
    assert doc["approval_policy"] == "on-request"  # the session's approval mode wins
    assert doc["projects"][s.worktree]["trust_level"] == "trusted"
    assert doc["tui"]["notifications"] is True
    # The notify program really writes Codex's event line to the channel.
    chan = tmp_path / "chan.txt"
    notify = [a.replace("/run/workbench-notify", str(chan)) for a in doc["notify"]]
    subprocess.run([*notify, '{"type":"agent-turn-complete"}'], check=True)
    assert chan.read_text() == 'codex {"type":"agent-turn-complete"}\n'
    # Codex's own hooks: a permission request, a finished turn, and work, through the channel.
    assert set(doc["hooks"]) == {"PermissionRequest", "Stop", "UserPromptSubmit", "PostToolUse"}
    for hook, stdin, want in (("PermissionRequest", b'{"hook_event_name": "PermissionRequest"}',
                               'approval codex:PermissionRequest {"hook_event_name": "PermissionRequest"}\n'),
                              ("Stop", b"{}", "turn-complete codex:Stop\n")):
        cmd = doc["hooks"][hook][0]["hooks"][0]["command"].replace("/run/workbench-notify", str(chan))
        subprocess.run(["/bin/sh", "-c", cmd], input=stdin, check=True)
        assert chan.read_text() == want
    # Credentials: bound read-only at their real path, linked from the private home.
    assert str((user / "auth.json").resolve()) in prep.ro_binds
    assert (home / ".codex" / "auth.json").resolve() == (user / "auth.json").resolve()


def test_codex_hook_trust_is_kept_when_other_hooks_exist(tmp_path: Path, isolated_env: Path) -> None:
    """The user's or the repo's own Codex hooks keep Codex's trust review: no bypass, no hooks of ours."""
    user = isolated_env / "home" / ".codex"
    user.mkdir(parents=True)
    s = session(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    codex = profiles.builtin_profiles()["codex"]
    (user / "config.toml").write_text('[[hooks.Stop]]\n[[hooks.Stop.hooks]]\ntype = "command"\ncommand = "mine"\n')
    prep = integrations.prepare(codex, s, resume=False, home=home, notify_path="/run/workbench-notify")
    assert "--dangerously-bypass-hook-trust" not in prep.argv
    doc = tomllib.loads((home / ".codex" / "config.toml").read_text())
    assert doc["hooks"]["Stop"][0]["hooks"][0]["command"] == "mine" and "PermissionRequest" not in doc["hooks"]
    (user / "config.toml").write_text('model = "o9"\n')
    dot = Path(s.worktree) / ".codex"
    dot.mkdir(parents=True)
    (dot / "hooks.json").write_text("{}")
    prep = integrations.prepare(codex, s, resume=True, home=home, notify_path="/run/workbench-notify")
    assert "--dangerously-bypass-hook-trust" not in prep.argv
    (dot / "hooks.json").unlink()
    prep = integrations.prepare(codex, s, resume=True, home=home, notify_path="/run/workbench-notify")
    assert prep.argv[-1] == "--dangerously-bypass-hook-trust" and "resume" in prep.argv


@pytest.mark.timeout(20)
def test_a_planted_repo_codex_config_is_not_followed_or_blocking(tmp_path: Path, isolated_env: Path) -> None:
    """The worktree is the session's: a FIFO at `.codex/config.toml` (which a plain read would
    block on forever), a link to a host file, or a link at `.codex` itself is never read;
    each counts as "the repo has hooks", so Codex's trust check is kept."""
    import os

    s = session(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    codex = profiles.builtin_profiles()["codex"]
    secret = tmp_path / "host-secret.toml"
    secret.write_text('model = "o9"\n')  # no hooks: following the link would mean a bypass
    dot = Path(s.worktree) / ".codex"
    dot.mkdir(parents=True)
    for plant in ("fifo", "link", "dir-link"):
        if plant == "fifo":
            os.mkfifo(dot / "config.toml")
        elif plant == "link":
            (dot / "config.toml").symlink_to(secret)
        else:
            dot.rename(tmp_path / "real-dot")
            dot.symlink_to(tmp_path / "real-dot")
            (tmp_path / "real-dot" / "config.toml").write_text('model = "o9"\n')
        prep = integrations.prepare(codex, s, resume=False, home=home, notify_path="/run/workbench-notify")
        assert "--dangerously-bypass-hook-trust" not in prep.argv, plant
        if plant != "dir-link":
            (dot / "config.toml").unlink()


def test_claude_and_aider_hooks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    prof = profiles.builtin_profiles()["claude"]
    chan = tmp_path / "chan.txt"
    prep = integrations.prepare(prof, session(tmp_path, agent="claude", approval="auto-edit"), resume=True,
                                home=home, notify_path=str(chan))
    assert prep.argv[:3] == ["claude", "--continue", "--permission-mode"] and "acceptEdits" in prep.argv
    settings = json.loads(Path(prep.argv[prep.argv.index("--settings") + 1]).read_text())
    assert set(settings["hooks"]) == {"PermissionRequest", "Notification", "Stop", "UserPromptSubmit",
                                      "PostToolUse"}
    cmd = settings["hooks"]["Notification"][0]["hooks"][0]["command"]
    subprocess.run(["/bin/sh", "-c", cmd], input=b'{"message": "Claude needs your permission"}', check=True)
    assert chan.read_text().startswith("waiting claude:Notification {\"message\": \"Claude needs your permission")
    cmd = settings["hooks"]["PermissionRequest"][0]["hooks"][0]["command"]
    subprocess.run(["/bin/sh", "-c", cmd], input=b'{"tool_name": "Bash"}', check=True)
    assert chan.read_text() == 'approval claude:PermissionRequest {"tool_name": "Bash"}\n'
    aider = integrations.prepare(profiles.builtin_profiles()["aider"], session(tmp_path, agent="aider"),
                                 resume=False, home=home, notify_path=str(chan))
    assert aider.argv[aider.argv.index("--notifications-command") + 1].endswith(f"> {chan}")
    shell = integrations.prepare(profiles.builtin_profiles()["shell"], session(tmp_path, agent="shell"),
                                 resume=False, home=home, notify_path=str(chan), shell="/bin/bash")
    assert shell.argv == ["/bin/bash", "-i"]


def test_agents_command_lists_profiles(isolated_env: Path, tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "mybot"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho mybot 1.2.3\n")
    fake.chmod(0o755)
    cfgdir = isolated_env / "config" / "workbench"
    cfgdir.mkdir(parents=True)
    (cfgdir / "config.toml").write_text(f'[profiles.mybot]\ncommand = ["{fake}"]\npass_env = ["MYBOT_KEY"]\n')
    env = {**os.environ, "MYBOT_KEY": "k"}
    out = subprocess.run([sys.executable, "-m", "workbench", "agents", "--json"], capture_output=True, text=True,
                         env=env, check=True).stdout
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["mybot"]["installed"] and rows["mybot"]["version"] == "mybot 1.2.3"
    assert {"what": "$MYBOT_KEY", "status": "visible"} in rows["mybot"]["credentials"]
    assert {"codex", "claude", "aider", "opencode", "gemini", "shell"} <= set(rows)
    text = subprocess.run([sys.executable, "-m", "workbench", "agents"], capture_output=True, text=True,
                          env=env, check=True).stdout
    assert "mybot" in text and "mybot 1.2.3" in text


def test_doctor_reports_agent_clis(isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.doctor import check_agents

    fake = tmp_path / "bin" / "codex"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho codex-cli 9.9.9\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:/usr/bin:/bin")
    auth = isolated_env / "home" / ".codex" / "auth.json"
    auth.parent.mkdir(parents=True)
    auth.write_text("{}")
    checks = {c.name: c for c in check_agents()}
    assert checks["agent codex"].status == "ok"
    assert "codex-cli 9.9.9" in checks["agent codex"].detail
    assert "~/.codex/auth.json visible" in checks["agent codex"].detail
    # A credential the sandbox hides is a warning with a fix.
    cfgdir = isolated_env / "config" / "workbench"
    cfgdir.mkdir(parents=True)
    (cfgdir / "config.toml").write_text('[sandbox]\nhidden_paths = ["~/.codex"]\n')
    hidden = {c.name: c for c in check_agents()}["agent codex"]
    assert hidden.status == "warn" and "hidden by sandbox.hidden_paths" in hidden.detail


def test_the_attention_observer_uses_the_config_the_session_was_launched_with(
        tmp_path: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`launch` started the PTY, then the observer read the repo's config again: an in-place
    session that had already planted a loosening `.workbench.toml` made that read fail, and
    the session showed `error` while its program ran (a flaky test_repo_trust attack test)."""
    from workbench.daemon import profiles_ext

    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    launched = config.load(repo)  # before the session writes anything
    (repo / ".workbench.toml").write_text('[session]\nsandbox = "off"\n')
    with pytest.raises(ConfigError):
        config.load(repo)  # untrusted and loosening: what a read now gives
    seen: list[object] = []
    monkeypatch.setattr(profiles_ext, "AttentionObserver", lambda m, s, rt, prof: seen.append(prof) or prof)
    s = Session(id="s1", name="s1", repo=str(repo), worktree=str(repo), agent="sh attack.sh", branch="main",
                base_commit="", base_ref="main", command=["sh", "attack.sh"])
    ext = profiles_ext.ProfilesExt(manager=None)  # type: ignore[arg-type]
    ext.observe(s, None, launched)  # type: ignore[arg-type]
    assert seen == [profiles_ext.COMMAND_PROFILE]
