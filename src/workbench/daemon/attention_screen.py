"""What a PTY agent's screen and hook words mean, for the attention observer.

Pure functions of a profile and a screen (its rows and title): no daemon state, so they are
tested directly and used by `workbench notify` to check an event before sending it.
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.profiles import Profile

# Notify-channel vocabulary -> what it means.
WAITING_EVENTS = {"approval", "approval-requested", "waiting", "input", "needs-input", "question"}
RUNNING_EVENTS = {"running", "busy", "start", "working"}
DONE_EVENTS = {"turn-complete", "agent-turn-complete", "done", "idle", "stop", "finished"}
EVENTS = WAITING_EVENTS | RUNNING_EVENTS | DONE_EVENTS
APPROVAL_HINTS = ("approval", "permission", "allow", "action-required")



@dataclass(frozen=True)
class Verdict:
    """What the screen says: blocked | waiting | busy | idle | unknown, and which signal says so.

    `blocked`: the CLI cannot work until the human acts outside a prompt (login, no network)."""

    kind: str
    signal: str = ""
    pattern: str = ""


def classify(profile: Profile, lines: list[str], title: str, *, stale: bool = False,
             stale_title: bool = False) -> Verdict:
    """`stale`: the prompt text on screen was answered already; `stale_title` likewise."""
    text = "\n".join(line.rstrip() for line in lines)
    if not text.strip() and not title:
        # Nothing drawn yet: a CLI that is still starting is neither idle nor waiting.
        return Verdict("unknown")
    for p in profile.blocked_patterns:
        if p.search(text):
            return Verdict("blocked", f"pattern:{p.name}", p.name)
    if not stale:
        for p in profile.waiting_patterns:
            if p.search(text):
                return Verdict("waiting", f"pattern:{p.name}", p.name)
    if not stale_title:
        for p in profile.title_waiting:
            if p.search(title):
                return Verdict("waiting", "title", p.name)
    for p in profile.busy_patterns:
        if p.search(text):
            return Verdict("busy", f"pattern:{p.name}", p.name)
    for p in profile.title_busy:
        if p.search(title):
            return Verdict("busy", "title", p.name)
    for p in profile.idle_patterns:
        if p.search(text):
            return Verdict("idle", f"pattern:{p.name}", p.name)
    if not profile.idle_patterns and profile.detect_silence:
        return Verdict("idle", "silence")
    return Verdict("unknown")


def prompt_matches(profile: Profile, lines: list[str]) -> int:
    """How many approval-prompt matches the screen holds (the identity of "this prompt")."""
    text = "\n".join(line.rstrip() for line in lines)
    return sum(1 for p in profile.waiting_patterns for _ in p.regex.finditer(text))


def normalize_event(event: str) -> str:
    e = event.strip().lower().replace("_", "-")
    if e not in EVENTS:
        raise ValueError(f"unknown event {event!r}; one of: {', '.join(sorted(EVENTS))}")
    return e
