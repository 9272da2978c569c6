"""One line at the bottom: counts per state, daemon health, model, a hint."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual.content import Content
from textual.widgets import Static

from workbench.core.escapes import one_line
from workbench.ui import model
from workbench.ui.model import Session
from workbench.ui.widgets.same_content import looks_the_same

LINK_STYLES = {"up": "$success", "connecting": "$warning", "down": "bold $error"}


def status_content(sessions: list[Session], daemon: str, healthy: bool, model_name: str,
                   hint: str = "? keys", width: int = 0, suggestions: int = 0,
                   hosts: Sequence[Mapping[str, Any]] = ()) -> Content:
    """The line; when `width` is given and it would not fit, the hint's tail, the model and the
    daemon's details go first, so the counts and `? keys` are not cut in the middle."""
    counts = model.state_counts(sessions)
    head: list[tuple[str, str] | str] = [" "]
    for state, n in counts.items():
        if n or state in ("running", "waiting"):
            head += [(f"{model.STATE_ICONS[state]} {n} {state}", f"$wb-{state}"), "  "]
    unsandboxed = sum(1 for s in sessions if model.unsandboxed(s))
    if unsandboxed:
        head += [(f"⚠ {unsandboxed} sandbox off", "bold $error"), "  "]
    if suggestions:
        head += [(f"! {suggestions} suggestion{'s' if suggestions > 1 else ''}", "$accent"), "  "]
    for h in hosts:  # each remote host's link (docs/remote.md)
        state = str(h.get("state", "down"))
        head += [(f"⇄ {one_line(str(h.get('name', '?')), 20)} {state}", LINK_STYLES.get(state, "")), "  "]
    daemon_style = "" if healthy else "bold $error"
    full_daemon = "daemon " + one_line(daemon, 60)
    short_daemon = full_daemon.split(" · ")[0]
    model_part: list[tuple[str, str] | str] = [(one_line(model_name, 30), "$text-muted"), "  "] if model_name else []
    short_hint = hint.split(" · ")[0]
    tries: list[list[tuple[str, str] | str]] = [
        [*head, (full_daemon, daemon_style), "  ", *model_part, (hint, "dim")],
        [*head, (full_daemon, daemon_style), "  ", *model_part, (short_hint, "dim")],
        [*head, (full_daemon, daemon_style), "  ", (short_hint, "dim")],
        [*head, (short_daemon, daemon_style), "  ", (short_hint, "dim")],
    ]
    line = Content.assemble(*tries[0])
    for parts in tries:
        line = Content.assemble(*parts)
        if not width or line.cell_length <= width:
            break
    return line


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { dock: bottom; height: 1; background: $panel; color: $foreground; }
    StatusBar.-down { background: $error 30%; }
    """

    _last: tuple[list[Session], str, bool, str, str, Sequence[Mapping[str, Any]]] | None = None
    suggestions = 0  # the inbox's count (`!`), set by the app

    def show(self, sessions: list[Session], daemon: str, healthy: bool, model_name: str,
             hint: str = "? keys", hosts: Sequence[Mapping[str, Any]] = ()) -> None:
        self._last = (sessions, daemon, healthy, model_name, hint, hosts)
        self.set_class(not healthy, "-down")
        line = status_content(sessions, daemon, healthy, model_name, hint, self.size.width, self.suggestions, hosts)
        if looks_the_same(self.content, line):
            return
        # One docked row whatever it says: no layout pass (a whole-screen one cost 3-6 ms).
        self.update(line, layout=False)

    def on_resize(self) -> None:
        if self._last is not None:
            self.show(*self._last)
