"""The review message: the pending rejections and comments as one text for the agent.

It is typed into an agent's terminal (or queued as the built-in agent's next message), so
every piece of user or session text in it is stripped of terminal escapes.
"""

from __future__ import annotations

from workbench.core.escapes import strip_escapes
from workbench.core.review_state import Comment, Rejection, ReviewState


def build_message(state: ReviewState) -> str:
    """The pending rejections and comments as one message to the agent ("" if none)."""
    rej, com = state.pending()
    if not rej and not com:
        return ""
    counts = []
    if rej:
        counts.append(f"{len(rej)} rejected change{'s' if len(rej) != 1 else ''}")
    if com:
        counts.append(f"{len(com)} comment{'s' if len(com) != 1 else ''}")
    out = [f"Review of your changes: {' and '.join(counts)}."]
    if rej:
        out.append("Rejected changes have already been reverted in the worktree; do not re-apply them as they were.")
    items: list[tuple[str, int, int, Rejection | Comment]] = [
        (r.path, r.new_start, r.id, r) for r in rej
    ] + [(c.path, c.line, c.id, c) for c in com]
    items.sort(key=lambda t: (t[0], t[1], t[2]))
    for n, (_, _, _, item) in enumerate(items, 1):
        out.append("")
        if isinstance(item, Rejection):
            out.extend(_rejection_text(n, item))
        else:
            out.extend(_comment_text(n, item))
    out.append("")
    out.append("Please address each point above.")
    return "\n".join(out)


def _rejection_text(n: int, r: Rejection) -> list[str]:
    path = _safe(r.path)
    if r.whole_file:
        what = {
            "added": "the new file was deleted",
            "deleted": "the deleted file was restored",
            "renamed": f"the rename from {_safe(r.old_path or '')} was undone",
        }.get(r.status, "the whole file was put back as it was")
        lines = [f"{n}. {path}: rejected, {what}."]
    else:
        lines = [f"{n}. {path}:{r.where or r.new_start}: rejected this change (it was reverted):"]
    if r.reason:
        lines.append("   Reason: " + _indent(r.reason, "   "))
    lines.extend("   | " + _safe(x) for x in r.excerpt)
    return lines


def _comment_text(n: int, c: Comment) -> list[str]:
    where = f"{c.line}" if c.end_line == c.line else f"{c.line}-{c.end_line}"
    lines = [f"{n}. {_safe(c.path)}:{where}: comment:"]
    lines.extend("   > " + _safe(x) for x in c.excerpt)
    lines.append("   " + _indent(c.text, "   "))
    return lines


def _safe(text: str) -> str:
    # Typed into an agent's terminal: no escape sequence may act as keys there.
    return strip_escapes(text, keep_newlines=False)


def _indent(text: str, pad: str) -> str:
    return ("\n" + pad).join(strip_escapes(text).splitlines())
