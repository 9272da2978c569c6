"""The click CLI: every command, its help and its usage errors. Every command except
`daemon run` is a client of the daemon. `workbench.cli.main` sends the everyday ones
(`ls`, `screen`, `keys`, ...) to the click-free fast path (`cli_fast`) when their arguments
are valid; their click commands here call the same functions.

Errors are one line on stderr starting with `error:`; exit 2 for usage errors and
unknown sessions, 1 for other failures. Never a traceback for a user mistake.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

import click

from workbench import __version__, cli_fast
from workbench.cli_complete import SESSION
from workbench.cli_render import to_json
from workbench.core.escapes import one_line
from workbench.daemon.client import Client, stop_daemon
from workbench.errors import UsageError, WorkbenchError
from workbench.protocol import session as ps
from workbench.protocol import terminal as pt
from workbench.protocol.method import Method
from workbench.protocol.review import NEW_ATTEMPTS, NewAttemptsParams

P = TypeVar("P")
R = TypeVar("R")


def _client() -> Client:
    return Client("cli")


def _request(spec: Method[P, R], params: P) -> R:
    """One request on a connection of its own."""
    with _client() as c:
        return c.request(spec, params)


def _warn(msg: str) -> None:
    click.echo(f"warning: {one_line(msg, 500)}", err=True)


def _json(obj: Any) -> None:
    click.echo(to_json(obj))


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="workbench")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Supervise many AI coding agents, each in its own worktree, sandbox and terminal."""
    if ctx.invoked_subcommand is None:
        from workbench.ui.launch import run_ui

        run_ui(None)


# daemon


@cli.group()
def daemon() -> None:
    """Start, stop or inspect the session daemon."""


@daemon.command("start")
def daemon_start() -> None:
    """Start the daemon in the background (no-op if it runs)."""
    with _client() as c:
        click.echo(f"daemon running (pid {c.info.get('pid')})")


@daemon.command("stop")
def daemon_stop() -> None:
    """Stop the daemon; running sessions stop and can be restarted later."""
    if stop_daemon():
        click.echo("daemon stopped")
    else:
        click.echo("daemon was not running")


@daemon.command("status")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def daemon_status(as_json: bool) -> None:
    """Show the daemon's pid, socket, version and sessions."""
    cli_fast.status(as_json)


@daemon.command("run", hidden=True)
def daemon_run() -> None:
    """Run the daemon in the foreground (used by auto-start)."""
    from workbench.daemon.server import run_daemon

    code = run_daemon()
    if code == 3:
        raise UsageError("another daemon is already running for this runtime directory")
    sys.exit(code)


# sessions


def split_agents(values: tuple[str, ...]) -> list[str]:
    """`--agent builtin,codex` and repeated `--agent`: one agent each. A value with a space
    is one command line, never split at its commas."""
    out: list[str] = []
    for v in values:
        out += [a.strip() for a in v.split(",")] if " " not in v.strip() else [v]
    return out


@cli.command()
@click.option("--repo", default=".", show_default=True, help="git repository for the session")
@click.option("--agent", "agents", multiple=True,
              help="shell, builtin, a profile name, or a command line; several (--agent a,b or repeated) "
                   "start one attempt each")
@click.option("--name", default=None, help="session name (default: derived from the agent)")
@click.option("--base", default=None, help="ref to branch from (default: the repo's HEAD)")
@click.option("--sandbox", type=click.Choice(["workspace", "strict", "off"]), default=None)
@click.option("--network/--no-network", default=None, help="allow network access")
@click.option("--approval", type=click.Choice(["suggest", "auto-edit", "full-auto"]), default=None)
@click.option("--prompt", default=None, help="task for the agent")
@click.option("--prompt-file", type=click.Path(dir_okay=False), default=None, help="read the task from a file")
@click.option("--in-place", is_flag=True, default=None, help="run in the main checkout, no worktree")
@click.option("--size", default=None, help="terminal size COLSxROWS")
@click.option("--auto-answer", is_flag=True, default=False,
              help="let workbench answer an external agent's approval prompts (off by default)")
@click.option("--attempts", type=click.IntRange(1, 10), default=None,
              help="start N sessions on the same prompt (NAME-1..N) to compare [default: 1, or one per --agent]")
@click.option("--provider", default=None, help="built-in agent: a [providers.NAME] of config.toml")
@click.option("--model", default=None, help="built-in agent: the model, for this session only")
@click.option("--base-url", default=None, help="built-in agent: the endpoint, for this session only")
@click.option("--wire-api", type=click.Choice(["chat", "responses"]), default=None,
              help="built-in agent: the endpoint's API, for this session only")
@click.option("--host", default=None, help="create it on a remote host (`workbench host add`); --repo is a path there")
@click.option("--json", "as_json", is_flag=True, help="print the session as JSON")
def new(
    repo: str, agents: tuple[str, ...], name: str | None, base: str | None, sandbox: str | None,
    network: bool | None, approval: str | None, prompt: str | None, prompt_file: str | None,
    in_place: bool | None, size: str | None, auto_answer: bool, attempts: int | None, provider: str | None,
    model: str | None, base_url: str | None, wire_api: str | None, host: str | None, as_json: bool,
) -> None:
    """Create a session: branch wb/<name>, a worktree, and its agent in a PTY."""
    if prompt_file:
        try:
            prompt = Path(prompt_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read --prompt-file {prompt_file}: {e}") from None
    # Options left unset are left out: the daemon applies the config's defaults.
    params: ps.NewParams = {"repo": str(Path(repo).expanduser().absolute()), "prompt": prompt or ""}
    if host is not None:  # the repository is a path on that host, taken as given
        if not repo.startswith("/"):
            raise UsageError("with --host, --repo must be an absolute path on that host")
        params["repo"], params["host"] = repo, host
    agent_list = split_agents(agents)
    if len(agent_list) == 1:
        params["agent"] = agent_list[0]
    if name is not None:
        params["name"] = name
    if base is not None:
        params["base"] = base
    if sandbox is not None:
        params["sandbox"] = sandbox
    if network is not None:
        params["network"] = network
    if approval is not None:
        params["approval"] = approval
    if in_place is not None:
        params["in_place"] = in_place
    if auto_answer:
        params["auto_answer"] = True
    if provider is not None:
        params["provider"] = provider
    if model is not None:
        params["model"] = model
    if base_url is not None:
        params["base_url"] = base_url
    if wire_api is not None:  # click's Choice allows only these two
        params["wire_api"] = "responses" if wire_api == "responses" else "chat"
    if size:
        from workbench.daemon.methods import parse_size

        params["cols"], params["rows"] = parse_size(size)
    if attempts is None:
        attempts = max(1, len(agent_list))
    if attempts > 1 or len(agent_list) > 1:
        ap = NewAttemptsParams(**params, attempts=attempts)
        if len(agent_list) > 1:
            ap["agents"] = agent_list
        res = _request(NEW_ATTEMPTS, ap)
        for w in res["warnings"]:
            _warn(w)
        if as_json:
            _json(res)
        else:
            click.echo("\n".join(s["id"] for s in res["sessions"]))
        return
    s = _request(ps.NEW, params)
    for w in s["warnings"]:
        _warn(w)
    if as_json:
        _json({k: v for k, v in s.items() if k != "warnings"})
    else:
        click.echo(s["id"])


@cli.command("ls")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def ls_cmd(as_json: bool) -> None:
    """List every session."""
    cli_fast.ls(as_json)


@cli.command()
@click.argument("session_id", type=SESSION)
@click.argument("text", nargs=-1, required=True)
def keys(session_id: str, text: tuple[str, ...]) -> None:
    """Type TEXT into a session's terminal (C escapes like \\r, \\t, \\x03, \\e work; \\0 is ctrl+space)."""
    cli_fast.keys(session_id, " ".join(text))


@cli.command()
@click.argument("session_id", type=SESSION)
@click.option("--ansi", is_flag=True, help="keep colours and styles")
def screen(session_id: str, ansi: bool) -> None:
    """Print a session's current screen, one line per row."""
    cli_fast.screen(session_id, ansi)


@cli.command()
@click.argument("session_id", type=SESSION)
@click.argument("size")
def resize(session_id: str, size: str) -> None:
    """Resize a session's terminal to COLSxROWS."""
    res = _request(pt.RESIZE, pt.ResizeParams(id=session_id, size=size))
    click.echo(f"{res['cols']}x{res['rows']}")


@cli.command()
@click.argument("session_id", type=SESSION)
def stop(session_id: str) -> None:
    """Stop a session's process (its worktree and branch stay)."""
    s = _request(ps.STOP, ps.IdParams(id=session_id))
    click.echo(f"{s['id']} {s['state']}")


@cli.command()
@click.argument("session_id", type=SESSION)
def restart(session_id: str) -> None:
    """Start a stopped session again in the same worktree."""
    s = _request(ps.RESTART, ps.IdParams(id=session_id))
    click.echo(f"{s['id']} {s['state']}")


@cli.command()
@click.argument("session_id", type=SESSION)
@click.option("--keep-branch", is_flag=True, help="keep the session's branch")
def rm(session_id: str, keep_branch: bool) -> None:
    """Remove a session: stop it, delete its worktree (and branch unless kept)."""
    res = _request(ps.RM, ps.RmParams(id=session_id, keep_branch=keep_branch))
    click.echo(f"removed {res['id']}")


@cli.command()
def gc() -> None:
    """Delete worktrees whose sessions were removed."""
    res = _request(ps.GC, ps.NoParams())
    for p in res["removed"]:
        click.echo(f"removed {p}")
    if not res["removed"]:
        click.echo("nothing to clean")


@cli.command()
@click.argument("session_id", type=SESSION)
@click.option("--json", "as_json", is_flag=True)
def events(session_id: str, as_json: bool) -> None:
    """Print a session's event log (state changes, exits, notifications)."""
    evs = _request(ps.EVENTS, ps.EventsParams(id=session_id))
    if as_json:
        _json(evs)
        return
    for e in evs:
        ts = time.strftime("%H:%M:%S", time.localtime(e["ts"]))
        click.echo(f"{ts} {e['kind']:<10} {one_line(json.dumps(e['data']), 200)}")


@cli.command()
def doctor() -> None:
    """Check git, PTYs, the emulator, bubblewrap, the daemon and the model endpoint."""
    from workbench.doctor import run_checks

    failed = 0
    for check in run_checks():
        mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[check.status]
        click.echo(f"[{mark}] {check.name}: {one_line(check.detail, 300)}")
        if check.fix and check.status != "ok":
            click.echo(f"       fix: {one_line(check.fix, 300)}")
        failed += check.status == "fail"
    sys.exit(1 if failed else 0)


def _repo_root(repo: str) -> Path:
    """The top of the git checkout containing `repo` (or `repo` itself outside git)."""
    import subprocess

    path = Path(repo).expanduser().absolute()
    if not path.is_dir():
        raise UsageError(f"not a directory: {path}")
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"],
                          capture_output=True, text=True, check=False)
    top = proc.stdout.strip()
    return Path(top).resolve() if proc.returncode == 0 and top else path.resolve()


@cli.command()
@click.argument("repo", required=False, default=".")
@click.option("--revoke", is_flag=True, help="forget the trust record of REPO")
@click.option("--list", "list_", is_flag=True, help="list every trusted repository and its state")
def trust(repo: str, revoke: bool, list_: bool) -> None:
    """Trust REPO's .workbench.toml as it is now, so it may loosen your settings.

    A repository's own file may only tighten the sandbox unless you trust that exact
    file; any change to it needs trusting again. Review the file first.
    """
    from workbench import config
    from workbench.core import trust as trust_mod

    if list_:
        records = trust_mod.load_records()
        if not records:
            click.echo("no trusted repositories")
        for key, rec in sorted(records.items()):
            try:
                st_text: str = trust_mod.state(key)[0]
            except WorkbenchError as e:
                st_text = f"unreadable: {e}"
            st_text = {"missing": "no file"}.get(st_text, st_text)
            click.echo(f"{one_line(st_text, 60):<8} {one_line(key, 300)}  sha256:{rec.sha256[:16]}")
        return
    given = Path(repo).expanduser()
    # A repository that is gone can still be forgotten.
    root = given.absolute() if revoke and not given.is_dir() else _repo_root(repo)
    if revoke:
        if trust_mod.revoke(root):
            click.echo(f"revoked trust in {root / trust_mod.FILE_NAME}")
        else:
            click.echo(f"{root} was not trusted")
        return
    # Refuse to trust a file that does not even load; show what trusting it allows.
    rf = config.repo_file(root)
    if rf is None:
        raise UsageError(f"{root / trust_mod.FILE_NAME}: no such file; there is nothing to trust")
    rec = trust_mod.trust(root, expect_sha256=rf.sha256)
    click.echo(f"trusted {rf.path} (sha256 {rec.sha256[:16]})")
    for f in rf.findings:
        click.echo(f"  loosens {one_line(f.describe(), 300)}")
    for key in rf.commands:
        click.echo(f"  allows {key} to run in sessions without a sandbox")
    if not rf.needs_trust:
        click.echo("  (it only tightens your settings: it did not need trust)")


@cli.command()
@click.argument("session_id", type=SESSION, required=False)
def attach(session_id: str | None) -> None:
    """Open the UI focused on a session with its terminal in view."""
    from workbench.ui.launch import require_terminal, run_ui

    if session_id:
        with _client() as c:  # an unknown session is an error here, not an empty UI
            session_id = c.request(ps.GET, ps.IdParams(id=session_id))["id"]
    require_terminal()
    run_ui(session_id)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: eval "$(workbench completion bash)" in ~/.bashrc
    (zsh: ~/.zshrc; fish: workbench completion fish > ~/.config/fish/completions/workbench.fish)."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None  # click ships all three
    click.echo(cls(cli, {}, "workbench", "_WORKBENCH_COMPLETE").source())


def _register_commands() -> None:
    from workbench.commands import agent, agents, demo, hosts, review

    for mod in (agent, review, demo, agents, hosts):
        mod.register(cli)
    from workbench.commands import suggest as suggest_commands  # one line per feature: merges stay clean

    suggest_commands.register(cli)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="workbench", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(1)
    except click.ClickException as e:
        click.echo(f"error: {one_line(e.format_message(), 500)}", err=True)
        sys.exit(2 if isinstance(e, click.UsageError) else 1)
    except WorkbenchError as e:
        click.echo(f"error: {one_line(str(e), 1000)}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        os._exit(0)


if __name__ == "__main__":
    main()
