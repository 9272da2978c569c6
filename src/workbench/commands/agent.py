"""CLI commands for talking to agents: send, approve, deny, log, interrupt, compact."""

from __future__ import annotations

from typing import TypeVar

import click

from workbench import cli_fast
from workbench.cli_complete import SESSION
from workbench.daemon.client import Client
from workbench.protocol import agent as pa
from workbench.protocol.method import Method
from workbench.protocol.session import IdParams

P = TypeVar("P")
R = TypeVar("R")


def _request(spec: Method[P, R], params: P) -> R:
    """One request on a connection of its own."""
    with Client("cli") as c:
        return c.request(spec, params)


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.argument("text", nargs=-1, required=True)
    def send(session_id: str, text: tuple[str, ...]) -> None:
        """Send TEXT to a session's agent as a user message (running or finished)."""
        cli_fast.send(session_id, " ".join(text))

    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.option("--always", is_flag=True, help="also approve this command (or all edits) from now on")
    def approve(session_id: str, always: bool) -> None:
        """Approve a session's pending command or edit."""
        cli_fast.approve(session_id, always)

    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.option("--reason", default="", help="why; the agent reads it")
    def deny(session_id: str, reason: str) -> None:
        """Deny a session's pending command or edit; the reason goes to the agent."""
        cli_fast.deny(session_id, reason)

    @cli.command("log")
    @click.argument("session_id", type=SESSION)
    @click.option("--follow", "-f", is_flag=True, help="keep printing new entries (Ctrl-C stops)")
    @click.option("--json", "as_json", is_flag=True, help="JSON (one object a line with --follow)")
    @click.option("--full", is_flag=True, help="do not shorten tool output")
    def log_cmd(session_id: str, follow: bool, as_json: bool, full: bool) -> None:
        """Print a session's transcript: messages, tool calls and output, approvals, errors."""
        cli_fast.log(session_id, follow, as_json, full)

    @cli.command()
    @click.argument("session_id", type=SESSION)
    def interrupt(session_id: str) -> None:
        """Stop the built-in (or ACP) agent's current turn; the session stays, ready for `send`."""
        res = _request(pa.INTERRUPT, IdParams(id=session_id))
        click.echo(f"{res['id']} interrupted" if res.get("interrupted") else f"{res['id']}: nothing to interrupt")

    @cli.command()
    @click.argument("session_id", type=SESSION)
    def compact(session_id: str) -> None:
        """Summarise a built-in agent's conversation now to free its context window."""
        res = _request(pa.COMPACT, IdParams(id=session_id))
        if res.get("scheduled"):
            click.echo(f"{res['id']}: compaction scheduled before the agent's next model request")
        else:
            click.echo(f"{res['id']}: context compacted: {res.get('before')} -> {res.get('after')} tokens")

