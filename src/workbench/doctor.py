"""`workbench doctor`: each check says what is wrong and how to fix it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from workbench.config import ProviderSettings


@dataclass
class Check:
    name: str
    status: Literal["ok", "warn", "fail"]
    detail: str
    fix: str = ""


def check_git() -> Check:
    exe = shutil.which("git")
    if not exe:
        return Check("git", "fail", "git is not installed", "install git (apt-get install git)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    try:
        major, minor = (int(x) for x in out.split()[2].split(".")[:2])
    except (IndexError, ValueError):
        return Check("git", "warn", f"cannot parse version: {out}")
    if (major, minor) < (2, 25):
        return Check("git", "fail", out, "workbench needs git >= 2.25 for worktrees")
    return Check("git", "ok", out)


def check_pty() -> Check:
    try:
        master, slave = os.openpty()
    except OSError as e:
        return Check("pty", "fail", f"cannot open a PTY: {e}", "mount devpts (/dev/pts) or run on a host with PTYs")
    os.close(master)
    os.close(slave)
    return Check("pty", "ok", "openpty works")


def check_emulator() -> Check:
    try:
        from workbench.core.screen import TerminalScreen

        scr = TerminalScreen(20, 3)
        scr.feed(b"\x1b[31mok\x1b[0m")
        text = scr.lines()[0]
        scr.close()
    except Exception as e:
        return Check("emulator", "fail", f"libghostty-vt failed: {e}",
                     "reinstall: pip install --force-reinstall pyghostty==0.1.3")
    if text != "ok":
        return Check("emulator", "fail", f"unexpected output {text!r}", "reinstall pyghostty==0.1.3")
    import pyghostty

    return Check("emulator", "ok", f"pyghostty {pyghostty.__version__} (libghostty-vt)")


def check_sandbox() -> Check:
    try:
        from workbench.core import sandbox_probe
    except ImportError as e:
        return Check("bubblewrap", "fail", f"sandbox module unavailable: {e}")
    res = sandbox_probe.probe(force=True)
    if not res.ok:
        return Check("bubblewrap", "fail", res.reason or "bwrap cannot run", res.fix or "")
    detail = f"{res.bwrap} {res.version or ''}".strip()
    if not res.seccomp_ok:
        return Check("bubblewrap", "warn", detail + "; seccomp filter could not be loaded", res.fix or "")
    if res.warnings:
        return Check("bubblewrap", "warn", detail + "; " + "; ".join(res.warnings),
                     "run workbench as an ordinary user" if res.as_root else "")
    return Check("bubblewrap", "ok", detail)


def check_limits() -> Check:
    """Which resource caps hold for sandboxes on this machine (size of /tmp, processes)."""
    from workbench import config as config_mod
    from workbench.core import bwrap_argv, limits

    try:
        s = config_mod.load(None).sandbox
    except Exception:  # check_config reports a bad file; describe the defaults meanwhile
        s = config_mod.SandboxSettings()
    rep = limits.describe(bwrap_argv.find_bwrap(), s.tmp_size_mb, s.max_processes)
    detail = f"{rep.tmp}; {rep.processes}"
    if rep.ok:
        return Check("limits", "ok", detail)
    return Check("limits", "warn", detail,
                 "install bubblewrap 0.7+ for tmpfs caps; as root, make a pids cgroup writable "
                 "(or run workbench as an ordinary user, where RLIMIT_NPROC holds)")


def check_config() -> Check:
    from workbench import config, paths
    from workbench.errors import ConfigError

    try:
        config.load()
    except ConfigError as e:
        return Check("config", "fail", str(e), "fix the file named above")
    p = paths.config_file()
    return Check("config", "ok", str(p) if p.exists() else f"{p} (not present; defaults in use)")


def check_keymap() -> Check:
    from workbench.ui.keymap import startup_keymap_errors

    errors = startup_keymap_errors()
    if errors:
        return Check("keymap", "fail", "; ".join(e.removeprefix("keymap: ") for e in errors),
                     "fix [keymap] in config.toml; `?` in the UI lists ids and keys")
    return Check("keymap", "ok", "every [keymap] entry is a known id with valid keys")


def check_repo_trust(cwd: str | None = None) -> Check:
    """The trust state of the current repository's `.workbench.toml`."""
    from pathlib import Path

    from workbench import config
    from workbench.errors import ConfigError

    proc = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return Check("repo config", "ok", "not in a git repository")
    root = Path(proc.stdout.strip()).resolve()
    try:
        rf = config.repo_file(root)
    except ConfigError as e:
        return Check("repo config", "fail", str(e), "fix the file named above")
    if rf is None:
        return Check("repo config", "ok", f"{root}: no .workbench.toml")
    loosens = [f.key for f in rf.findings] + [f"{k} (outside a sandbox)" for k in rf.commands]
    what = ", ".join(loosens)
    if not rf.needs_trust:
        return Check("repo config", "ok", f"{rf.path}: only tightens your settings (no trust needed)")
    if rf.state == "trusted":
        return Check("repo config", "ok", f"{rf.path}: trusted (sha256 {rf.sha256[:16]}); it loosens {what}")
    fix = f"review the file, then run `workbench trust {root}`"
    if rf.state == "changed":
        return Check("repo config", "warn" if not rf.findings else "fail",
                     f"{rf.path}: changed since you trusted it; it loosens {what}", fix)
    if rf.findings:
        return Check("repo config", "fail", f"{rf.path}: untrusted; it loosens {what}", fix)
    return Check("repo config", "warn", f"{rf.path}: untrusted; {what} will run only in sandboxed sessions", fix)


def check_daemon() -> Check:
    from workbench.daemon.client import Client
    from workbench.errors import WorkbenchError
    from workbench.protocol.session import STATUS, NoParams

    try:
        with Client("doctor", autostart=False, timeout=5) as c:
            st = c.request(STATUS, NoParams())
    except WorkbenchError:
        return Check("daemon", "ok", "not running (starts on first use)")
    except OSError as e:
        return Check("daemon", "fail", f"socket error: {e}", "run `workbench daemon stop` and retry")
    return Check("daemon", "ok", f"pid {st['pid']}, {st['sessions']} sessions, loop lag {st['loop_lag_ms']} ms")


PROBE_TIMEOUT_S = 3.0  # doctor waits this long for each endpoint, once (no retry)


def check_models() -> list[Check]:
    """One line per configured model provider: its endpoint reachable, the model listed."""
    from workbench import config
    from workbench.errors import WorkbenchError

    try:
        cfg = config.load()
        names = list(cfg.providers)
        default = cfg.choose_provider("default") if "default" not in names else None
    except WorkbenchError as e:
        return [Check("model endpoint", "fail", str(e))]
    out: list[Check] = []
    if default is not None:
        key = os.environ.get(default.settings.api_key_env)
        if default.settings.base_url or key:
            out.append(probe_provider("default", default.settings, default.sources))
        elif not names:
            out.append(Check(
                "model endpoint", "warn", f"not configured (${default.settings.api_key_env} unset, no base_url)",
                f"export {default.settings.api_key_env}=... or set [providers.default] base_url in config.toml "
                "(only needed for --agent builtin)"))
    for name in names:
        try:
            choice = cfg.choose_provider(name)
        except WorkbenchError as e:
            out.append(Check(f"provider {name}", "fail", str(e)))
            continue
        out.append(probe_provider(name, choice.settings, choice.sources))
    return out


def probe_provider(name: str, settings: ProviderSettings, sources: dict[str, str]) -> Check:
    """GET /models of one provider, once, with a short timeout: what a session would meet,
    said as the session says it (agent/provider_errors.py)."""
    import openai

    from workbench.agent.provider_errors import server_message, unknown_model_line, unreachable, unreachable_line

    what = f"provider {name}"
    key = os.environ.get(settings.api_key_env)
    base = (settings.base_url or "https://api.openai.com/v1").rstrip("/")
    if not settings.model:
        return Check(what, "fail", "no model set", f'set model = "..." in [providers.{name}] of config.toml')
    client = openai.OpenAI(base_url=base, api_key=key or "not-needed", timeout=PROBE_TIMEOUT_S, max_retries=0,
                           default_headers=settings.headers or None)
    try:
        models = [m.id for m in client.models.list().data]
    except openai.APITimeoutError:
        return Check(what, "fail", f"no answer from {base} within {PROBE_TIMEOUT_S:g}s",
                     "is the server running and reachable from here?")
    except openai.APIConnectionError as e:
        why = unreachable(e)
        if why is not None:
            return Check(what, "fail", unreachable_line(base, why, sources.get("base_url", "")))
        cause = e.__cause__ or e.__context__
        return Check(what, "fail", f"cannot connect to {base}: {cause or e}", "check base_url and the network")
    except openai.AuthenticationError:
        state = "rejected the API key" if key else f"needs an API key (${settings.api_key_env} is not set)"
        return Check(what, "fail", f"{base} {state}", f"set ${settings.api_key_env} in the daemon's environment")
    except openai.APIStatusError as e:
        msg = server_message(e.body) or e.message
        if e.status_code == 404:
            return Check(what, "warn", f"{base} answers but lists no models (GET /models: 404); "
                         f"model {settings.model!r} not checked")
        return Check(what, "fail", f"{base}: HTTP {e.status_code} for GET /models: {msg}")
    except openai.OpenAIError as e:
        return Check(what, "fail", f"{base}: {e}")
    finally:
        client.close()
    if settings.model in models or f"{settings.model}:latest" in models:
        return Check(what, "ok", f"{base} reachable; model {settings.model!r} listed")
    if not models:
        return Check(what, "warn", f"{base} reachable but lists no models; model {settings.model!r} not checked")
    shown = ", ".join(models[:8]) + (", ..." if len(models) > 8 else "")
    return Check(what, "fail", unknown_model_line(settings.model, base, "", sources.get("model", "")),
                 f"it serves: {shown}")


def check_agents() -> list[Check]:
    """One line per agent CLI profile: installed, version, credentials the sandbox can see."""
    from workbench import config, profiles
    from workbench.errors import WorkbenchError

    try:
        cfg = config.load()
        profs = profiles.all_profiles(cfg)
    except WorkbenchError as e:
        return [Check("agents", "fail", str(e), "fix [profiles.*] in config.toml")]
    out: list[Check] = []
    for prof in profs.values():
        if prof.name == "shell":
            continue
        rep = profiles.inspect_cli(prof, cfg)
        name = f"agent {prof.name}"
        if not rep.installed:
            # Optional: most people use one or two of these.
            hint = f" (install: {prof.install_hint})" if prof.install_hint else ""
            out.append(Check(name, "ok", f"`{rep.executable}` not installed{hint}"))
            continue
        creds = ", ".join(f"{what} {st}" for what, st in rep.credentials) or "no credentials found"
        detail = f"{rep.version or rep.path}; {creds}"
        bad = [st for _, st in rep.credentials if st not in ("visible", "missing")]
        visible = any(st == "visible" for _, st in rep.credentials)
        if rep.error or bad:
            out.append(Check(name, "warn", f"{detail}{'; ' + rep.error if rep.error else ''}",
                             "remove the credential from sandbox.hidden_paths" if bad else ""))
        elif not visible and (prof.credential_paths or prof.pass_env):
            keys = ", ".join(f"${v}" for v in prof.pass_env[:2])
            out.append(Check(name, "warn", f"{detail}; the sandbox will see no credentials",
                             f"log in with `{rep.executable}` (it stores {', '.join(prof.credential_paths)}) "
                             f"or export {keys}"))
        else:
            out.append(Check(name, "ok", detail))
    return out


def check_acp_agents() -> list[Check]:
    """One line per ACP agent profile (`--agent acp:NAME`): installed or how to install it."""
    from workbench.profiles import acp

    out: list[Check] = []
    for prof in acp.PROFILES.values():
        path = shutil.which(prof.argv[0])
        detail = (f"`{' '.join(prof.argv)}` at {path}" if path
                  else f"`{prof.argv[0]}` not installed (install: {prof.install_hint})")
        out.append(Check(f"acp agent {prof.name}", "ok", detail))
    return out


def run_checks() -> Iterator[Check]:
    for fn in (check_config, check_keymap, check_repo_trust, check_git, check_pty, check_emulator, check_sandbox,
               check_limits, check_daemon, check_models, check_agents, check_acp_agents):
        try:
            res = fn()
            yield from (res if isinstance(res, list) else [res])
        except Exception as e:  # a broken check is itself a finding, not a crash
            yield Check(fn.__name__.removeprefix("check_"), "fail", f"check crashed: {e}")
