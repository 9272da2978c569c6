"""CLI commands for remote hosts: `host add|ls|rm` and `daemon connect` (docs/remote.md)."""

from __future__ import annotations

import sys
import time

import click

from workbench import hosts_config
from workbench.cli_render import to_json
from workbench.core.escapes import one_line
from workbench.errors import DaemonNotRunning
from workbench.protocol import hosts as ph


def _links(autostart: bool) -> list[ph.HostLink] | None:
    """The daemon's links, after it re-read the hosts file; None when no daemon runs."""
    from workbench.daemon.client import Client

    try:
        with Client("cli", autostart=autostart, timeout=60) as c:
            return c.request(ph.HOSTS, ph.HostsParams())
    except DaemonNotRunning:
        return None


def link_line(h: ph.HostLink) -> str:
    """`NAME  STATE  URL  (n sessions, error)`: one host's link, for `host ls` and `ls`."""
    age = max(0, int(time.time() - h["since"]))
    note = [f"{h['sessions']} session(s)", f"{h['state']} for {age} s"]
    if h["version"]:
        note.append(f"workbench {h['version']}")
    if h["state"] != "up" and h["error"]:
        note.append(one_line(h["error"], 200))
    return f"{h['name']}  {h['state']}  {h['url']}  ({'; '.join(note)})"


@click.group("host")
def host() -> None:
    """Remote hosts whose sessions `workbench ls` and the UI show with this machine's."""


@host.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--ssh-config", default=None, help="ssh config file for this host (ssh -F FILE)")
@click.option("--workbench", "workbench_path", default=None,
              help="path of workbench on that host when it is not on the login PATH")
@click.option("--replace", is_flag=True, help="replace a host of that name")
def host_add(name: str, url: str, ssh_config: str | None, workbench_path: str | None, replace: bool) -> None:
    """Add host NAME at ssh://[user@]host[:port]; the daemon connects to it at once."""
    h = hosts_config.make_host(name, url, ssh_config, workbench_path)
    hosts_config.add(h, replace=replace)
    _links(autostart=True)  # the daemon links to it now (and starts, as for any command)
    click.echo(f"added host {name} ({url}); its sessions are listed as {name}:ID")


@host.command("ls")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def host_ls(as_json: bool) -> None:
    """List the hosts and the state of each link (when the daemon runs)."""
    configured = hosts_config.load()
    links = {h["name"]: h for h in (_links(autostart=False) or [])}
    if as_json:
        click.echo(to_json([
            links.get(n) or {"name": n, "url": h.url, "state": "down", "error": "the daemon is not running",
                             "since": 0.0, "attempts": 0, "version": "", "sessions": 0, "pid": None}
            for n, h in configured.items()
        ]))
        return
    if not configured:
        click.echo("no hosts; add one with `workbench host add NAME ssh://[user@]host[:port]`")
    for n, h in configured.items():
        click.echo(link_line(links[n]) if n in links else f"{n}  -  {h.url}  (the daemon is not running)")


@host.command("rm")
@click.argument("name")
def host_rm(name: str) -> None:
    """Forget host NAME; its sessions keep running there."""
    hosts_config.remove(name)
    _links(autostart=False)
    click.echo(f"removed host {name}")


@click.command("connect")
def daemon_connect() -> None:
    """Bridge stdin/stdout to the daemon (`ssh HOST workbench daemon connect`)."""
    from workbench.daemon.bridge import run_bridge

    sys.exit(run_bridge())


def register(cli: click.Group) -> None:
    cli.add_command(host)
    daemon = cli.commands.get("daemon")
    if isinstance(daemon, click.Group):
        daemon.add_command(daemon_connect)
