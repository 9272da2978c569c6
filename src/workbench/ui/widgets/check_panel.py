"""The session's check result beside the diff: passed / failed, the command, the output's tail."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from textual.content import Content
from textual.widgets import Static

from workbench.core.escapes import one_line, strip_escapes
from workbench.ui.model import Session

TAIL_LINES = 12
# A test runner's separator (`-----`, `=====`): drawn as wide as the panel, not wrapped into
# several lines of dashes that push the output's last lines out of the tail.
_RULE = re.compile(r"([-=_~*#])\1{7,}")


def check_summary(session: Session, result: Mapping[str, Any] | None,
                  digest: str | None = None) -> tuple[str, str, str]:
    """(status, headline, tail) from the full result when there is one, else the description;
    `digest` is the shown diff's (a result of another diff says so)."""
    fix = session.get("check_fix")
    if session.get("check_running"):
        return "running", "check running…" + (f" (automatic fix rounds {fix})" if fix else ""), ""
    chk = result if isinstance(result, dict) and result.get("status") else None
    status = str(chk.get("status") if chk else session.get("check") or "none")
    if status in ("none", "", "None"):
        return "none", "no check yet · C runs the repo's [check] command", ""
    tail = str((chk or {}).get("tail") or session.get("check_tail") or "")
    code = (chk or {}).get("exit_code", session.get("check_exit_code"))
    command = one_line(str((chk or {}).get("command") or ""), 60)
    dur = (chk or {}).get("duration_s")
    bits = [b for b in (command, f"exit {code}" if code is not None else "",
                        f"{float(dur):.1f}s" if isinstance(dur, int | float) else "",
                        one_line(str((chk or {}).get("reason") or ""), 60)) if b]
    head = f"check {status}" + (f" ({', '.join(bits)})" if bits else "")
    ran_on = (chk or {}).get("digest")
    if digest and ran_on and ran_on != digest:
        head += " · ran on an earlier version of this diff"
    if fix:
        head += f" · sent to the agent, fixing ({fix})"
    return status, head, tail


def check_content(session: Session, result: Mapping[str, Any] | None, digest: str | None = None,
                  width: int | None = None) -> Content:
    status, head, tail = check_summary(session, result, digest)
    icon, style = {"passed": ("✔", "$success"), "failed": ("✖", "$error"), "running": ("◌", "$wb-running"),
                   "timeout": ("✖", "$error"), "error": ("✖", "$error")}.get(status, ("·", "$text-muted"))
    parts = [Content.assemble((f"{icon} {head}", f"bold {style}"))]
    if status not in ("passed", "none", "running"):
        parts.append(Content.assemble(("E sends the output to the agent · C runs it again", "dim")))
    elif status == "passed":
        parts.append(Content.assemble(("C runs it again", "dim")))
    lines = strip_escapes(tail).splitlines()[-TAIL_LINES:]
    if width:
        lines = [line.strip()[:width] if _RULE.fullmatch(line.strip()) else line for line in lines]
    parts += [Content(line) for line in lines]
    return Content("\n").join(parts)


class CheckPanel(Static):
    DEFAULT_CSS = """
    CheckPanel { height: auto; max-height: 50%; padding: 0 1; background: $surface;
                 border-top: hkey $panel-lighten-2; overflow-y: auto; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.status = "none"
        self._shown: tuple[Session, Mapping[str, Any] | None, str | None] | None = None

    def show(self, session: Session, result: Mapping[str, Any] | None, digest: str | None = None) -> None:
        self.status = check_summary(session, result, digest)[0]
        self._shown = (session, result, digest)
        self.update(check_content(session, result, digest, self._width()))

    def _width(self) -> int | None:
        return self.content_region.width or None  # None before the first layout

    def on_resize(self) -> None:
        if self._shown is not None:
            self.update(check_content(*self._shown, self._width()))
