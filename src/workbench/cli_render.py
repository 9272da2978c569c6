"""The text the CLI prints for the commands of its fast path: `ls`, `screen`, `send`,
`approve`, `deny`, `log`, `daemon status`. One definition, used by both the click commands
(`cli_full`, `commands/agent.py`) and the click-free fast path (`cli_fast`), so the two
print the same bytes.

Imports only the standard library's cheapest modules at start (no typing, no click).
"""

from __future__ import annotations

import time

from workbench.core.escapes import one_line, strip_escapes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from workbench.protocol.agent import AnswerResult, SendResult
    from workbench.protocol.hosts import HostLink
    from workbench.protocol.session import SessionInfo, StatusResult
    from workbench.protocol.terminal import ScreenResult

RED = "\x1b[31m"
RESET = "\x1b[0m"
OUTPUT_LINES = 12  # tool output lines shown by `log` without --full
_LABELS = {"tool_call": "call", "tool_output": "output", "approval_request": "approval?",
           "compaction": "compacted", "interrupted": "interrupt"}


def to_json(obj: object) -> str:
    import json  # not at the top: `keys` and `screen` never need it (re, enum: 10 ms of CPU)

    return json.dumps(obj, indent=2, sort_keys=True)


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}T"


def human_age(ts: float) -> str:
    secs = max(0, int(time.time() - ts))
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m"
    if secs < 86400:
        return f"{secs // 3600}h{(secs % 3600) // 60:02d}m"
    return f"{secs // 86400}d"


def ls_lines(sessions: list[SessionInfo], color: bool) -> list[str]:
    """`workbench ls`: a table, the sandbox column red when it is off (on a terminal)."""
    if not sessions:
        return ["no sessions; create one with `workbench new --repo PATH`"]
    rows = [("ID", "NAME", "STATE", "AGENT", "SANDBOX", "BRANCH", "CHANGES", "CHECK", "DISK", "AGE", "REPO")]
    for s in sessions:
        changes = f"+{s.get('added', 0)} -{s.get('removed', 0)}" if "added" in s else "-"
        rows.append((
            s["id"], one_line(s["name"], 30), one_line(s["state"], 10), one_line(s["agent"], 20),
            s["sandbox"], one_line(s["branch"], 40), changes, check_cell(s),
            human_bytes(s.get("disk_bytes")), human_age(s["created_at"]), one_line(s["repo"], 60),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=True)]
        if color and r[4] == "off":
            cells[4] = f"{RED}{cells[4]}{RESET}"
        out.append("  ".join(cells).rstrip())
    return out


def check_cell(s: SessionInfo) -> str:
    """`ls`'s CHECK: the last result, or the automatic fix round under way ("fix 1/2")."""
    fix = s.get("check_fix")
    return f"fix {one_line(fix, 7)}" if fix else one_line(str(s.get("check", "none")), 8)


def check_line(chk: Mapping[str, Any], digest: str) -> str:
    """The check beside `diff --stat`: its result, and whether it checked this diff."""
    code = chk.get("exit_code")
    why = f"exit {code}" if code is not None else one_line(str(chk.get("reason") or ""), 80)
    line = f"check {chk.get('status')} ({why}): {one_line(str(chk.get('command') or ''), 100)}"
    if chk.get("digest") and chk.get("digest") != digest:
        line += " [ran on an earlier version of this diff]"
    return line


def link_lines(links: list[HostLink]) -> list[str]:
    """Under `ls`: each remote host's link, so a host that is down says so (and why)."""
    out = []
    for h in links:
        why = f" ({one_line(h['error'], 200)})" if h["state"] != "up" and h["error"] else ""
        out.append(f"host {h['name']}: {h['state']}, {h['sessions']} session(s){why}")
    return out


def _by_state(states: Mapping[str, int]) -> str:
    """` (4 review, 2 waiting)`, most first; "" for none."""
    parts = [f"{n} {state}" for state, n in sorted(states.items(), key=lambda kv: (-kv[1], kv[0])) if n]
    return f" ({', '.join(parts)})" if parts else ""


def status_lines(st: StatusResult) -> list[str]:
    """`workbench daemon status`."""
    sb: Mapping[str, Any] = st.get("sandbox") or {}
    return [
        f"pid      {st['pid']}",
        f"version  {st['version']}",
        f"socket   {st['socket']}",
        f"uptime   {st['uptime_s']} s",
        f"sessions {st['sessions']}{_by_state(st.get('states') or {})}",
        f"sandbox  {'ok' if sb.get('ok') else 'UNAVAILABLE: ' + str(sb.get('reason'))}",
        f"log      {st['log']}",
    ]


def screen_text(res: ScreenResult, ansi: bool) -> str:
    """`workbench screen`: one line per row; trailing blank rows dropped unless --ansi."""
    lines = list(res["lines"])
    if not ansi:
        while lines and not lines[-1]:
            lines.pop()
    return "\n".join(lines)


def send_text(res: SendResult) -> str:
    if res.get("queued"):
        return f"{res['id']} queued: the agent gets it at its next step"
    return f"{res['id']} sent"


def _first_line(res: AnswerResult) -> str:
    return one_line(str(res.get("describe", "")).split("\n")[0], 200)


def approve_text(res: AnswerResult, always: bool) -> str:
    what = _first_line(res)
    return f"{res['id']} approved{' (always)' if always else ''}{': ' + what if what else ''}"


def deny_text(res: AnswerResult) -> str:
    what = _first_line(res)
    return f"{res['id']} denied{': ' + what if what else ''}"


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


def entry_text(e: Mapping[str, Any], as_json: bool, full: bool, sid: str) -> str | None:
    """One `log` entry as printed (a JSON line with --json); None if it is not shown."""
    lines = format_entry(e, full, sid)
    if lines is None:  # an event-log entry that is not part of a transcript
        return None
    if as_json:
        import json

        return json.dumps({k: e.get(k) for k in ("seq", "ts", "kind", "data")}, sort_keys=True)
    return "\n".join(lines)


def state_text(data: Mapping[str, Any]) -> str:
    """`log --follow`: a line when the session's state changes."""
    reason = one_line(str(data.get("reason") or ""), 200)
    return f"-- {data.get('state')}{': ' + reason if reason else ''}"
