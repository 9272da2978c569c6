"""CLI commands for reviewing a session's changes: diff, reject, comment, mark, undo,
revert, review, merge, discard, check, compare, pick. None of them opens an editor or
asks a question: everything comes from arguments and options."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from typing import Any, TypeVar

import click

from workbench.cli_complete import SESSION
from workbench.core.escapes import one_line, strip_escapes
from workbench.daemon.client import Client
from workbench.errors import UsageError
from workbench.protocol import review as rv
from workbench.protocol.method import Method
from workbench.protocol.session import IdParams

P = TypeVar("P")
R = TypeVar("R")

_HUNK_ID = re.compile(r"[0-9a-f]{12}")
_LOCATION = re.compile(r"^(?P<path>.+):(?P<line>\d+)(?:-(?P<end>\d+))?$")


def _request(spec: Method[P, R], params: P, timeout: float | None = 300) -> R:
    """One request on a connection of its own."""
    with Client("cli", timeout=timeout) as c:
        return c.request(spec, params)


def _json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


def parse_location(text: str) -> tuple[str, int, int | None]:
    """`FILE:LINE` or `FILE:START-END`."""
    m = _LOCATION.match(text)
    if not m:
        raise UsageError(f"bad location {text!r}: expected FILE:LINE or FILE:START-END, e.g. src/app.py:12")
    end = int(m["end"]) if m["end"] else None
    return m["path"], int(m["line"]), end


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.option("--stat", is_flag=True, help="files with lines added and removed")
    @click.option("--json", "as_json", is_flag=True, help="files and hunks (with ids) as JSON")
    def diff(session_id: str, stat: bool, as_json: bool) -> None:
        """Show a session's changes against its base (untracked files included)."""
        from workbench import cli_diff

        cli_diff.diff(session_id, stat, as_json, click.echo)

    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.argument("hunk_id")
    @click.option("--reason", default="", help="why; sent to the agent with `workbench review --send`")
    def reject(session_id: str, hunk_id: str, reason: str) -> None:
        """Reverse one hunk in the session's worktree (undo with `workbench undo`)."""
        res = _request(rv.REJECT, rv.RejectParams(id=session_id, hunk=hunk_id, reason=reason))
        r = res["rejection"]
        what = "whole file" if r["whole_file"] else f"hunk {hunk_id}"
        click.echo(f"rejected {what} in {one_line(r['path'], 300)}")

    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.argument("location")
    @click.argument("text", nargs=-1, required=True)
    def comment(session_id: str, location: str, text: tuple[str, ...]) -> None:
        """Comment on FILE:LINE (or FILE:START-END) of a session's changes."""
        path, line, end = parse_location(location)
        params = rv.CommentParams(id=session_id, path=path, line=line, text=" ".join(text))
        if end is not None:
            params["end_line"] = end
        res = _request(rv.COMMENT, params)
        c = res["comment"]
        where = f"{c['line']}" if c["end_line"] == c["line"] else f"{c['line']}-{c['end_line']}"
        click.echo(f"comment {c['id']} on {one_line(c['path'], 300)}:{where}")

    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.argument("target")
    @click.option("--unmark", is_flag=True, help="mark as not reviewed")
    def mark(session_id: str, target: str, unmark: bool) -> None:
        """Mark a hunk (by id) or a whole file (by path) reviewed."""
        params = rv.MarkParams(id=session_id, reviewed=not unmark)
        if _HUNK_ID.fullmatch(target):
            params["hunk"] = target
        else:
            params["path"] = target
        res = _request(rv.MARK_REVIEWED, params)
        state = "not reviewed" if unmark else "reviewed"
        click.echo(f"{len(res['changed'])} marked {state}")

    @cli.command()
    @click.argument("session_id", type=SESSION)
    def undo(session_id: str) -> None:
        """Undo the last review action (reject, revert, comment, mark) not yet sent."""
        res = _request(rv.UNDO, IdParams(id=session_id))
        extra = f" ({one_line(res['path'], 300)})" if res.get("path") else ""
        click.echo(f"undid {res['undone']}{extra}")

    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.argument("path")
    @click.option("--reason", default="", help="why; sent to the agent with the review")
    def revert(session_id: str, path: str, reason: str) -> None:
        """Put one file back as it is in the session's base."""
        res = _request(rv.REVERT_FILE, rv.RevertFileParams(id=session_id, path=path, reason=reason))
        click.echo(f"reverted {one_line(res['rejection']['path'], 300)}")

    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.option("--send", is_flag=True, help="send it to the agent")
    @click.option("--json", "as_json", is_flag=True)
    def review(session_id: str, send: bool, as_json: bool) -> None:
        """Show the review message (pending rejections and comments); --send sends it."""
        res = _request(rv.REVIEW, rv.ReviewParams(id=session_id, send=send))
        if as_json:
            _json(res)
            return
        if not res["message"]:
            click.echo("nothing to send: no pending comments or rejections")
            return
        click.echo(strip_escapes(res["message"]))
        if res.get("sent"):
            click.echo(f"-- sent to the agent ({res['rejections']} rejections, {res['comments']} comments)")

    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.option("--ff", "strategy", flag_value="ff", help="fast-forward only")
    @click.option("--squash", "strategy", flag_value="squash", help="one commit on the base branch")
    @click.option("--rebase", "strategy", flag_value="rebase", help="rebase the session's commits, then fast-forward")
    @click.option("-m", "--message", default=None, help="commit message (default: the agent's summary)")
    @click.option("--pr", is_flag=True, help="push the branch and open a pull request with gh instead")
    def merge(session_id: str, strategy: str | None, message: str | None, pr: bool) -> None:
        """Commit the session's worktree and bring it into the main checkout's branch."""
        params = rv.MergeParams(id=session_id, pr=pr)
        if strategy:
            params["strategy"] = strategy
        if message is not None:
            params["message"] = message
        res = _request(rv.MERGE, params)
        if pr:
            click.echo(f"opened {res.get('pr') or 'a pull request'} for {res['branch']}")
            return
        click.echo(f"merged into {res['base_branch']} ({res['strategy']}): {res['commit'][:12]}, "
                   f"{res['files_changed']} file(s)")
        if res.get("warning"):
            click.echo(f"warning: {one_line(res['warning'], 500)}", err=True)

    @cli.command()
    @click.argument("session_id", type=SESSION)
    def discard(session_id: str) -> None:
        """Drop all of a session's changes (worktree and branch back to its base)."""
        res = _request(rv.DISCARD, IdParams(id=session_id))
        click.echo(f"discarded {res['files']} file(s), +{res['added']} -{res['removed']}")

    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.option("--json", "as_json", is_flag=True)
    @click.option("--send", is_flag=True, help="send the last failing result to the agent instead of running")
    def check(session_id: str, as_json: bool, send: bool) -> None:
        """Run the repo's check command in the session's sandbox (exit 1 if it fails)."""
        if send:
            sent = _request(rv.SEND_CHECK, IdParams(id=session_id))
            click.echo(f"sent the failing check output to the agent ({sent['via']})")
            return
        res = _request(rv.CHECK, IdParams(id=session_id), timeout=None)
        if as_json:
            _json(res)
        else:
            if res.get("tail"):
                click.echo(res["tail"])
            code = f"exit {res['exit_code']}" if res.get("exit_code") is not None else res.get("reason", "")
            click.echo(f"check {res['status']} ({code}, {res['duration_s']:.1f} s): {one_line(res['command'], 200)}")
        if res["status"] != "passed":
            sys.exit(1)

    @cli.command()
    @click.argument("session_id", type=SESSION)
    @click.option("--json", "as_json", is_flag=True)
    def compare(session_id: str, as_json: bool) -> None:
        """Compare the attempts a session belongs to: files, +/- and check results."""
        res = _request(rv.COMPARE, rv.GroupParams(id=session_id))
        if as_json:
            _json(res)
            return
        for s in res["sessions"]:
            st: Mapping[str, object] = s.get("stat") or {}
            click.echo(f"{s['id']}  {one_line(s['name'], 30):<30} {s['state']:<8} "
                       f"{st.get('files', '?')} files +{st.get('added', '?')} -{st.get('removed', '?')}  "
                       f"check: {s['check']}")

    @cli.command()
    @click.argument("session_id", type=SESSION)
    def pick(session_id: str) -> None:
        """Keep this attempt; remove the other attempts of its group."""
        res = _request(rv.PICK, IdParams(id=session_id))
        names = ", ".join(one_line(x["name"], 40) for x in res["removed"]) or "none"
        click.echo(f"picked {res['winner']}; removed {names}")
