"""Pure helpers over session descriptions (dicts from the daemon): attention, grouping, labels."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from workbench.core.escapes import one_line
from workbench.core.models import ATTENTION_ORDER, SessionState
from workbench.protocol.session import SessionInfo

Session = SessionInfo

STATE_ICONS: dict[str, str] = {
    "starting": "◌",
    "running": "●",
    "waiting": "◆",
    "review": "✔",
    "error": "✖",
    "stopped": "■",
}
STATES = [str(s) for s in SessionState]


def state_of(s: Session) -> str:
    st = str(s.get("state", "stopped"))
    return st if st in STATE_ICONS else "stopped"


def needs_you(s: Session) -> bool:
    return bool(s.get("needs_attention")) or state_of(s) in {str(k) for k in ATTENTION_ORDER}


def attention_queue(sessions: list[Session]) -> list[Session]:
    """Who needs the human first: waiting, then error, then review; oldest first in each."""
    order = {str(k): v for k, v in ATTENTION_ORDER.items()}
    queue = [s for s in sessions if state_of(s) in order]
    return sorted(queue, key=lambda s: (order[state_of(s)], float(s.get("state_since") or 0), s["id"]))


def next_in_queue(sessions: list[Session], current: str | None) -> Session | None:
    """The head of the queue, or the one after `current` when it already is the head."""
    queue = attention_queue(sessions)
    if not queue:
        return None
    ids = [s["id"] for s in queue]
    if current in ids and ids.index(current) == 0 and len(queue) > 1:
        return queue[1]
    return queue[0]


def group_by_repo(sessions: list[Session]) -> list[tuple[str, list[Session]]]:
    groups: dict[str, list[Session]] = {}
    for s in sessions:
        groups.setdefault(str(s.get("repo", "")), []).append(s)
    return [
        (repo, sorted(items, key=lambda s: (float(s.get("created_at") or 0), s["id"])))
        for repo, items in sorted(groups.items(), key=lambda kv: (Path(kv[0]).name, kv[0]))
    ]


def ordered(sessions: list[Session]) -> list[Session]:
    """Sessions in the order the list shows them."""
    return [s for _repo, items in group_by_repo(sessions) for s in items]


def repo_label(repo: str) -> str:
    return one_line(Path(repo).name or repo, 40)


def elapsed(seconds: float) -> str:
    secs = max(0, int(seconds))
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m"
    if secs < 86400:
        return f"{secs // 3600}h{(secs % 3600) // 60:02d}"
    return f"{secs // 86400}d"


def session_elapsed(s: Session, now: float | None = None) -> str:
    return elapsed((now or time.time()) - float(s.get("created_at") or 0))


def tokens(n: int) -> str:
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"


def usage_label(s: Session) -> str:
    total = int(s.get("tokens_in") or 0) + int(s.get("tokens_out") or 0)
    cost = float(s.get("cost_usd") or 0)
    if not total and not cost:
        return ""
    return f"{tokens(total)} ${cost:.2f}" if cost else tokens(total)


def diff_counts(s: Session, cache: dict[str, tuple[int, int]] | None = None) -> tuple[int, int] | None:
    """Lines added/removed, from the description when the daemon sends them, else the cache."""
    added, removed = s.get("added"), s.get("removed")
    if isinstance(added, int) and isinstance(removed, int):
        return added, removed
    return (cache or {}).get(str(s.get("id")))


def name_of(s: Session) -> str:
    return one_line(str(s.get("name") or s.get("id") or "?"), 40)


def name_or_id(s: Session | None, sid: str) -> str:
    """The session's name, or its id when the list does not know it (yet or any more)."""
    return name_of(s) if s is not None else one_line(sid, 40)


def agent_of(s: Session) -> str:
    return one_line(str(s.get("agent") or "").split(" ")[0].rsplit("/", 1)[-1], 16)


def is_builtin(s: Session) -> bool:
    """Sessions run by the built-in agent (or an ACP agent, `transcript`) have a transcript
    rather than (only) a terminal."""
    return str(s.get("agent", "")).split(" ")[0] in {"builtin", "workbench", "agent"} or bool(s.get("transcript"))


def unsandboxed(s: Session) -> bool:
    """Sessions running without the sandbox are shown in red wherever they appear."""
    return str(s.get("sandbox", "")) == "off"


def accepts_keys(s: Session) -> bool:
    """Whether the session has a live process for keystrokes to go to."""
    if isinstance(s.get("alive"), bool):
        return bool(s["alive"]) and state_of(s) != "stopped"
    return state_of(s) not in ("stopped", "error", "starting")


def keys_refused(s: Session, detach: str) -> str:
    """The pane's notice when keys cannot be sent to the session."""
    state = state_of(s)
    if state == "starting":
        return "starting — keys are sent once it runs"
    return f"{STATE_ICONS[state]} {state}: keys are not sent — {detach} detaches, then r restarts it"


def check_label(s: Session) -> tuple[str, str] | None:
    """(label, style) of the session's last check for the list, or None."""
    if s.get("check_fix"):  # a failing check went back to the agent (daemon/check_fix_rounds.py)
        return f"✖ fixing {s.get('check_fix')}", "$warning"
    if s.get("check_running"):
        return "checking", "$wb-running"
    st = str(s.get("check") or "none")
    if st == "passed":
        return "✔ check", "$success"
    if st == "failed":
        return "✖ check", "bold $error"
    return None


def state_counts(sessions: list[Session]) -> dict[str, int]:
    counts = {st: 0 for st in STATES}
    for s in sessions:
        counts[state_of(s)] += 1
    return counts


def stat_totals(stat: Any) -> tuple[int, int] | None:
    """Added/removed totals from a `diff` result or a `diff` event's `stat` (any known shape)."""
    if isinstance(stat, dict):
        if isinstance(stat.get("added"), int):
            return int(stat["added"]), int(stat.get("removed") or 0)
        files = stat.get("files")
        if isinstance(files, list):
            return (
                sum(int(f.get("added") or 0) for f in files if isinstance(f, dict)),
                sum(int(f.get("removed") or 0) for f in files if isinstance(f, dict)),
            )
    return None
