"""CLI commands for external agent CLIs (`agents`, `notify`, `auto-answer`, `why`) and
`rename`."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path
from typing import TypeVar

import click

from workbench.cli_complete import SESSION
from workbench.errors import DaemonError, UsageError
from workbench.protocol import session as ps
from workbench.protocol.method import Method

P = TypeVar("P")
R = TypeVar("R")


def _request(spec: Method[P, R], params: P, autostart: bool = True) -> R:
    """One request on a connection of its own."""
    from workbench.daemon.client import Client

    with Client("cli", autostart=autostart) as c:
        return c.request(spec, params)


def write_channel(path: str, line: str) -> None:
    """Write one event line to a session's notify FIFO without ever blocking."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as e:
        if e.errno == errno.ENXIO:
            raise DaemonError(f"nobody reads the notify channel {path}: the workbench daemon is not running") from None
        raise DaemonError(f"cannot open the notify channel {path}: {e.strerror}") from None
    try:
        os.write(fd, line.encode("utf-8", "replace")[:4000] + b"\n")
    finally:
        os.close(fd)


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("session", type=SESSION)
    @click.argument("name", nargs=-1, required=True)
    def rename(session: str, name: tuple[str, ...]) -> None:
        """Give SESSION a new name (words may be given unquoted); its branch keeps its name."""
        s = _request(ps.RENAME, ps.RenameParams(id=session, name=" ".join(name)), autostart=False)
        click.echo(f"{s['id']}  {s['name']}")

    @cli.command()
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    @click.option("--repo", default=None, type=click.Path(file_okay=False), help="include the repo's .workbench.toml")
    def agents(as_json: bool, repo: str | None) -> None:
        """List agent profiles: command, whether the CLI is installed, its version, credentials."""
        from workbench import config, profiles

        cfg = config.load(Path(repo) if repo else None)
        rows = []
        for prof in profiles.all_profiles(cfg).values():
            rep = profiles.inspect_cli(prof, cfg)
            rows.append({**prof.summary(), **rep.to_dict()})
        if as_json:
            click.echo(json.dumps(rows, indent=2, sort_keys=True))
            return
        for r in rows:
            status = f"{r['version'] or 'installed'}" if r["installed"] else "not installed"
            cmd = " ".join(r["command"]) or "$SHELL"
            click.echo(f"{r['name']:<10} {status:<28} {cmd}")
            for c in r["credentials"]:
                click.echo(f"{'':<10} credential {c['what']}: {c['status']}")

    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.argument("event")
    @click.argument("detail", nargs=-1)
    def notify(session_id: str, event: str, detail: tuple[str, ...]) -> None:
        """Tell the workbench what an agent is doing (for CLI hooks and scripts).

        EVENT is one of: approval, waiting, input, running, turn-complete, done, idle.
        Inside a session's sandbox this writes to the session's notify channel.
        """
        from workbench.daemon.attention_screen import normalize_event

        try:
            e = normalize_event(event)
        except ValueError as err:
            raise UsageError(str(err)) from None
        text = " ".join(detail)
        channel = os.environ.get("WORKBENCH_NOTIFY")
        mine = os.environ.get("WORKBENCH_SESSION"), os.environ.get("WORKBENCH_SESSION_NAME")
        if channel and session_id in mine:
            write_channel(channel, f"{e} {text}".strip())
            return
        res = _request(ps.NOTIFY, ps.NotifyParams(id=session_id, event=e, detail=text), autostart=False)
        click.echo(res["state"])

    @cli.command("auto-answer")
    @click.argument("session_id", type=SESSION)
    @click.argument("setting", type=click.Choice(["on", "off"]))
    def auto_answer(session_id: str, setting: str) -> None:
        """Let workbench approve this session's approval prompts by itself (off by default)."""
        res = _request(ps.AUTO_ANSWER, ps.AutoAnswerParams(id=session_id, enabled=setting == "on"))
        click.echo(f"auto-answer {'on' if res['auto_answer'] else 'off'}")

    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.option("--json", "as_json", is_flag=True)
    def why(session_id: str, as_json: bool) -> None:
        """Why a terminal agent is running / waiting / in review: detector state and recent signals."""
        diag = _request(ps.ATTENTION, ps.IdParams(id=session_id))
        evs = _request(ps.EVENTS, ps.EventsParams(id=session_id))
        detects = [e for e in evs if e["kind"] in ("detect", "auto_answer", "notify_rejected")][-10:]
        if as_json:
            click.echo(json.dumps({**diag, "recent": detects}, indent=2, sort_keys=True))
            return
        scr = diag["screen"]
        click.echo(f"{diag['state']} (profile {diag['profile']}, last signal {diag['signal'] or '-'})")
        click.echo(f"screen: {scr['kind']} {scr['signal'] or ''}; quiet {diag['quiet_ms']} ms "
                   f"(idle after {diag['silence_ms']} ms); hooks seen: {diag['hooks_seen']}; "
                   f"auto-answer {'on' if diag['auto_answer'] else 'off'}")
        for e in detects:
            d = e["data"]
            with contextlib.suppress(KeyError, TypeError):
                click.echo(f"  {e['kind']}: {d.get('from', '')} -> {d.get('to', '')} by {d.get('signal', '')}")
