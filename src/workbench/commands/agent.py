"""CLI commands for talking to agents: send, approve, deny, log, interrupt, compact."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import click

from workbench.core.escapes import one_line, strip_escapes
from workbench.daemon.client import Client
from workbench.protocol import agent as pa
from workbench.protocol.method import Method
from workbench.protocol.session import GET, EventsParams, IdParams
from workbench.protocol.terminal import SUBSCRIBE, SubscribeParams

OUTPUT_LINES = 12  # tool output lines shown by `log` without --full
_LABELS = {"tool_call": "call", "tool_output": "output", "approval_request": "approval?",
           "compaction": "compacted", "interrupted": "interrupt"}

P = TypeVar("P")
R = TypeVar("R")


def _request(spec: Method[P, R], params: P) -> R:
    """One request on a connection of its own."""
    with Client("cli") as c:
        return c.request(spec, params)


def _indent(text: str, max_lines: int | None) -> list[str]:
    lines = strip_escapes(text).rstrip("\n").splitlines() or [""]
    if max_lines is not None and len(lines) > max_lines:
        head = max_lines // 2
        tail = max_lines - head
        lines = [*lines[:head], f"[... {len(lines) - max_lines} more lines; --full shows them ...]",
                 *lines[-tail:]]
    return ["    " + ln for ln in lines]


def format_entry(e: Mapping[str, Any], full: bool = False, session: str = "ID") -> list[str] | None:
    """Human lines for one transcript entry; None for kinds that are not part of one."""
    kind = str(e.get("kind", ""))
    d = e.get("data") or {}
    ts = time.strftime("%H:%M:%S", time.localtime(float(e.get("ts") or 0)))
    limit = None if full else OUTPUT_LINES

    label = _LABELS.get(kind, kind)

    def head(text: str) -> str:
        return f"{ts} {label:<10} {text}"

    def body(text: str) -> list[str]:
        clean = strip_escapes(text).strip("\n")
        if "\n" not in clean and len(clean) <= 100:
            return [head(clean)]
        return [head(""), *_indent(text, None)]

    if kind == "agent":
        return [head(one_line(
            f"model {d.get('model')} ({d.get('wire_api')} at {d.get('endpoint')}), "
            f"approval {d.get('approval')}, sandbox {d.get('sandbox')}", 300))]
    if kind in ("user", "send"):
        return body(str(d.get("text", "")))
    if kind == "assistant":
        note = "\n(interrupted)" if d.get("interrupted") else ""
        return body(str(d.get("text", "")) + note)
    if kind == "tool_call":
        lines = strip_escapes(str(d.get("describe", ""))).splitlines() or [""]
        prefix = "$ " if d.get("name") in ("shell", "container.exec", "local_shell") else ""
        return [head(f"{prefix}{lines[0]}"), *("    " + ln for ln in lines[1:])]
    if kind == "tool_output":
        mark = "error" if d.get("is_error") else "ok"
        return [head(mark), *_indent(str(d.get("output", "")), limit)]
    if kind == "plan":
        marks = {"completed": "[x]", "in_progress": "[>]", "pending": "[ ]"}
        steps = d.get("steps") or []
        return [head(one_line(str(d.get("explanation") or ""), 200)),
                *(f"    {marks.get(s.get('status'), '[?]')} {one_line(str(s.get('step')), 200)}" for s in steps)]
    if kind == "approval_request":
        what = "command" if d.get("kind") == "command" else "patch"
        lines = strip_escapes(str(d.get("describe", ""))).splitlines() or [""]
        out = [head(f"waiting for approval of a {what}: {lines[0]}"), *("    " + ln for ln in lines[1:])]
        if d.get("patch") and full:
            out += _indent(str(d["patch"]), None)
        out.append(f"    answer: workbench approve {session} [--always] | workbench deny {session} --reason TEXT")
        return out
    if kind == "approval":
        dec = {"approve": "approved", "approve_always": "approved (always)", "deny": "denied"}.get(
            str(d.get("decision")), str(d.get("decision")))
        reason = one_line(str(d.get("reason") or ""), 300)
        return [head(f"{dec}: {reason}" if reason else dec)]
    if kind == "error":
        return [head(one_line(str(d.get("message", "")), 1000))]
    if kind == "usage":
        return [head(
            f"{d.get('tokens_in', 0)} in / {d.get('tokens_out', 0)} out tokens, "
            f"${float(d.get('cost_usd') or 0):.4f}; context {d.get('context_tokens', '?')}"
            f"/{d.get('context_window', '?')}")]
    if kind == "compaction":
        return [head(f"context compacted: {d.get('before')} -> {d.get('after')} tokens"
                     + (f" ({one_line(str(d['reason']), 100)})" if d.get("reason") else ""))]
    if kind == "retry":
        busy = "the endpoint is saturated or slow; " if d.get("saturated") else ""
        return [head(f"{busy}retry {d.get('attempt')} in {float(d.get('delay_s') or 0):.1f}s: "
                     f"{one_line(str(d.get('reason', '')), 300)}")]
    if kind == "notice":
        return [head(one_line(str(d.get("message", "")), 1000))]
    if kind == "interrupted":
        return [head(one_line(str(d.get("reason", "")), 300))]
    # ACP sessions (daemon/acp_transcript.py)
    if kind == "thought":
        return body(str(d.get("text", "")))
    if kind == "stop":
        return [head(f"turn ended: {d.get('stop_reason')}")]
    if kind == "mode":
        return [head(f"mode {d.get('mode')}")]
    if kind == "resumed":
        return [head(f"the agent loaded its session {d.get('acp_session_id')}")]
    return None


def register(cli: click.Group) -> None:
    @cli.command()
    @click.argument("session_id")
    @click.argument("text", nargs=-1, required=True)
    def send(session_id: str, text: tuple[str, ...]) -> None:
        """Send TEXT to a session's agent as a user message (running or finished)."""
        res = _request(pa.SEND, pa.SendParams(id=session_id, text=" ".join(text)))
        if res.get("queued"):
            click.echo(f"{res['id']} queued: the agent gets it at its next step")
        else:
            click.echo(f"{res['id']} sent")

    @cli.command()
    @click.argument("session_id")
    @click.option("--always", is_flag=True, help="also approve this command (or all edits) from now on")
    def approve(session_id: str, always: bool) -> None:
        """Approve a session's pending command or edit."""
        res = _request(pa.APPROVE, pa.ApproveParams(id=session_id, always=always))
        what = one_line(str(res.get("describe", "")).split("\n")[0], 200)
        click.echo(f"{res['id']} approved{' (always)' if always else ''}{': ' + what if what else ''}")

    @cli.command()
    @click.argument("session_id")
    @click.option("--reason", default="", help="why; the agent reads it")
    def deny(session_id: str, reason: str) -> None:
        """Deny a session's pending command or edit; the reason goes to the agent."""
        res = _request(pa.DENY, pa.DenyParams(id=session_id, reason=reason))
        what = one_line(str(res.get("describe", "")).split("\n")[0], 200)
        click.echo(f"{res['id']} denied{': ' + what if what else ''}")

    @cli.command("log")
    @click.argument("session_id")
    @click.option("--follow", "-f", is_flag=True, help="keep printing new entries (Ctrl-C stops)")
    @click.option("--json", "as_json", is_flag=True, help="JSON (one object a line with --follow)")
    @click.option("--full", is_flag=True, help="do not shorten tool output")
    def log_cmd(session_id: str, follow: bool, as_json: bool, full: bool) -> None:
        """Print a session's transcript: messages, tool calls and output, approvals, errors."""
        with Client("cli", timeout=None if follow else 300) as c:
            sid = c.request(GET, IdParams(id=session_id))["id"]
            if follow:
                c.request(SUBSCRIBE, SubscribeParams(ids=[sid]))
            entries = c.request(pa.LOG, EventsParams(id=sid))
            if as_json and not follow:
                click.echo(json.dumps(entries, indent=2, sort_keys=True))
                return
            last = 0
            for e in entries:
                last = max(last, int(e["seq"]))
                _emit(e, as_json, full, sid)
            if not follow:
                return
            state = None
            while True:
                ev = c.next_event()
                if ev is None:
                    continue
                data = ev.get("data") or {}
                if ev.get("event") == "log" and data.get("session") == sid and int(data.get("seq", 0)) > last:
                    last = int(data["seq"])
                    _emit(data, as_json, full, sid)
                elif ev.get("event") == "session" and data.get("id") == sid and data.get("state") != state:
                    state = data.get("state")
                    if not as_json:
                        reason = one_line(str(data.get("reason") or ""), 200)
                        click.echo(f"-- {state}{': ' + reason if reason else ''}")
                elif ev.get("event") == "removed" and data.get("id") == sid:
                    return

    @cli.command()
    @click.argument("session_id")
    def interrupt(session_id: str) -> None:
        """Stop the built-in (or ACP) agent's current turn; the session stays, ready for `send`."""
        res = _request(pa.INTERRUPT, IdParams(id=session_id))
        click.echo(f"{res['id']} interrupted" if res.get("interrupted") else f"{res['id']}: nothing to interrupt")

    @cli.command()
    @click.argument("session_id")
    def compact(session_id: str) -> None:
        """Summarise a built-in agent's conversation now to free its context window."""
        res = _request(pa.COMPACT, IdParams(id=session_id))
        if res.get("scheduled"):
            click.echo(f"{res['id']}: compaction scheduled before the agent's next model request")
        else:
            click.echo(f"{res['id']}: context compacted: {res.get('before')} -> {res.get('after')} tokens")


def _emit(e: Mapping[str, Any], as_json: bool, full: bool, sid: str) -> None:
    lines = format_entry(e, full, sid)
    if lines is None:  # an event-log entry that is not part of a transcript
        return
    if as_json:
        click.echo(json.dumps({k: e.get(k) for k in ("seq", "ts", "kind", "data")}, sort_keys=True))
    else:
        click.echo("\n".join(lines))
