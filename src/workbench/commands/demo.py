"""`workbench demo`: a sample repo, three built-in sessions driven by a scripted model and two
attempts on one task (the built-in agent, and a scripted CLI in a terminal)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from workbench.core.escapes import one_line
from workbench.daemon.client import Client
from workbench.errors import UsageError
from workbench.protocol.session import DEMO, DemoParams


def register(cli: click.Group) -> None:
    @cli.command()
    @click.option("--no-ui", is_flag=True, help="print the sessions and what to run instead of opening the UI")
    @click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
                  help="where to create the sample repo (default: a new temporary directory)")
    def demo(no_ui: bool, directory: str | None) -> None:
        """Try workbench offline: a sample repo with a bug and a check (its tests), three
        built-in agent sessions run by a scripted demo model (one fixes the bug, one waits
        for your approval, one fails) and two attempts at one task to compare (the built-in
        agent, whose check fails, and a scripted CLI in a terminal that asks before it edits).
        Needs no API key and no network; your config is not changed."""
        import sys

        from workbench.demo.sample import create_repo

        if not no_ui and not (sys.stdin.isatty() and sys.stdout.isatty()):
            click.echo("no terminal here: not opening the UI (as with --no-ui)", err=True)
            no_ui = True
        if directory:
            path = Path(directory).expanduser().absolute()
            if path.exists() and any(path.iterdir()):
                raise UsageError(f"{path} is not empty; give a new or empty directory to --dir")
        else:
            path = Path(tempfile.mkdtemp(prefix="workbench-demo-"))
        create_repo(path)
        with Client("cli") as c:
            res = c.request(DEMO, DemoParams(repo=str(path)))
        if res["sandbox"] == "off":
            # Unsandboxed, a repo's check command runs only from a trusted file: this one we
            # just wrote (the first check runs after a few scripted turns, well after this).
            from workbench.core import trust
            from workbench.demo.sample import FILES

            trust.trust(path, expect_sha256=trust.digest(FILES[trust.FILE_NAME].encode()))
        if res.get("notice"):
            click.echo(f"warning: {one_line(res['notice'], 500)}", err=True)
        click.echo(f"demo repo   {path}")
        click.echo(f"model       {res['model']} (served inside the daemon, offline)")
        click.echo(f"sandbox     {res['sandbox']}")
        approval_id = None
        attempts: list[str] = []
        for s in res["sessions"]:
            click.echo(f"  {s['id']}  {s['name']:<16} {s['role']}")
            if s["approval"] == "suggest":
                approval_id = s["id"]
            if s["extra"].get("attempt_group"):
                attempts.append(s["id"])
        if no_ui:
            first = res["sessions"][0]["id"]
            click.echo("")
            click.echo("what to run:")
            click.echo("  workbench                      # the UI: every session, approvals, diffs")
            click.echo("  workbench ls                   # the sessions and their states")
            click.echo(f"  workbench log {first} --follow  # watch one agent work")
            if approval_id:
                click.echo(f"  workbench approve {approval_id}      # answer the waiting one")
            if len(attempts) == 2:
                click.echo(f"  workbench check {attempts[0]} --send  # send attempt 1's failing check back")
                click.echo(f"  workbench attach {attempts[1]}       # the CLI in a terminal: answer y")
                click.echo(f"  workbench compare {attempts[0]}      # the two attempts side by side")
            return
        from workbench.ui.launch import run_ui

        run_ui(None)
