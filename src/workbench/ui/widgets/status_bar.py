"""One line at the bottom: counts per state, daemon health, model, a hint."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from workbench.core.escapes import one_line
from workbench.ui import model
from workbench.ui.model import Session


def status_content(sessions: list[Session], daemon: str, healthy: bool, model_name: str,
                   hint: str = "? keys") -> Content:
    counts = model.state_counts(sessions)
    parts: list[tuple[str, str] | str] = [" "]
    for state, n in counts.items():
        if n or state in ("running", "waiting"):
            parts += [(f"{model.STATE_ICONS[state]} {n} {state}", f"$wb-{state}"), "  "]
    unsandboxed = sum(1 for s in sessions if model.unsandboxed(s))
    if unsandboxed:
        parts += [(f"⚠ {unsandboxed} sandbox off", "bold $error"), "  "]
    parts += [("daemon " + one_line(daemon, 60), "" if healthy else "bold $error"), "  "]
    if model_name:
        parts += [(one_line(model_name, 30), "$text-muted"), "  "]
    parts.append((hint, "dim"))
    return Content.assemble(*parts)


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { dock: bottom; height: 1; background: $panel; color: $foreground; }
    StatusBar.-down { background: $error 30%; }
    """

    def show(self, sessions: list[Session], daemon: str, healthy: bool, model_name: str,
             hint: str = "? keys") -> None:
        self.set_class(not healthy, "-down")
        self.update(status_content(sessions, daemon, healthy, model_name, hint))
