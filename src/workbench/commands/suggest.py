"""`workbench suggest`: the work workbench found in a repository, started or dismissed
with one command (docs/suggestions.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import click

from workbench.core.escapes import one_line
from workbench.daemon.client import Client
from workbench.protocol import suggest as ps
from workbench.protocol.method import Method

P = TypeVar("P")
R = TypeVar("R")

SCAN_TIMEOUT_S = 1800.0  # a scan with the check waits for the check's own timeout


def _request(spec: Method[P, R], params: P) -> R:
    with Client("cli", timeout=SCAN_TIMEOUT_S) as c:
        return c.request(spec, params)


def _json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


def render(reply: ps.SuggestReply) -> str:
    """The list as text: one line per suggestion, its first location under it."""
    items = reply["suggestions"]
    head = reply["head"][:8] or "no commits"
    lines = [f"{len(items)} suggestion{'' if len(items) == 1 else 's'} for {reply['repo']} ({head})"
             + (f", {reply['dismissed']} dismissed" if reply["dismissed"] else "")
             + (" (scanning...)" if reply["scanning"] else "")]
    for s in items:
        started = f"  [started: {', '.join(s['sessions'])}]" if s["sessions"] else ""
        lines.append(f"{s['id']}  {s['source']:<5}  {one_line(s['title'], 100)}{started}")
        if s["locations"]:
            lines.append(f"{'':10}  {'':5}  {one_line(s['locations'][0], 100)}")
    return "\n".join(lines)


def register(cli: click.Group) -> None:
    @cli.group(invoke_without_command=True)
    @click.option("--repo", default=".", show_default=True, help="the repository")
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    @click.option("--refresh", is_flag=True, help="scan again, running the repository's check too")
    @click.pass_context
    def suggest(ctx: click.Context, repo: str, as_json: bool, refresh: bool) -> None:
        """List the work workbench found: failing check, linters, TODOs, CI, issues, a log."""
        if ctx.invoked_subcommand is not None:
            return
        params = ps.SuggestParams(repo=str(Path(repo).expanduser().absolute()))
        if refresh:
            params["refresh"] = True
        reply = _request(ps.SUGGEST, params)
        if as_json:
            _json(reply)
            return
        click.echo(render(reply))
        for e in reply["errors"]:
            click.echo(f"note: {one_line(e, 300)}", err=True)

    @suggest.command("start")
    @click.argument("suggestion_id")
    @click.option("--agent", default=None, help="the agent (default: the repository's)")
    @click.option("--attempts", type=click.IntRange(1, 10), default=1, show_default=True,
                  help="N sessions on the same prompt")
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    def start(suggestion_id: str, agent: str | None, attempts: int, as_json: bool) -> None:
        """Start a session on a suggestion's prompt; print its id (one per attempt)."""
        params = ps.SuggestStartParams(id=suggestion_id)
        if agent:
            params["agent"] = agent
        if attempts > 1:
            params["attempts"] = attempts
        res = _request(ps.SUGGEST_START, params)
        for w in res["warnings"]:
            click.echo(f"warning: {one_line(w, 500)}", err=True)
        if as_json:
            _json(res)
        else:
            click.echo("\n".join(s["id"] for s in res["sessions"]))

    @suggest.command("dismiss")
    @click.argument("suggestion_id")
    def dismiss(suggestion_id: str) -> None:
        """Hide a suggestion for good."""
        res = _request(ps.SUGGEST_DISMISS, ps.SuggestIdParams(id=suggestion_id))
        click.echo(f"dismissed {res['dismissed']}")
